"""Live Status's failed photos by reason (issue 10 item 3): groups newest first, Retry one group, roles."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from sqlalchemy import select, update

from aiconsole.pipeline import failures
from aiconsole.pipeline.health_report import DISABLED_REASON
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown


def _texts(at, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [shown(e.value) for e in getattr(at, kind)]


def _status(org: int, ids: list[int]) -> set[str]:
    with service_session() as s:
        return set(s.scalars(select(Photo.status).where(Photo.organization_id == org, Photo.id.in_(ids))))


def test_failed_photos_are_grouped_by_reason_newest_first(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    org = at.session_state[ACTOR_KEY].organization_id
    groups = failures.failed_groups(organization_id=org)
    assert len(groups) >= 2, "the demo seeds photos that failed for more than one reason"
    assert "Failed photos by reason" in [s.value for s in at.subheader]
    rows = [t for t in _texts(at, "markdown") if any(t.endswith(f"· {g.reason}") for g in groups)]
    assert rows == [f"**{g.count:,} photo{'s' if g.count != 1 else ''}** · {g.reason}" for g in groups]
    assert [g.newest_at for g in groups] == sorted((g.newest_at for g in groups), reverse=True)
    for g in groups:  # a viewer sees them but cannot retry
        assert at.button(key=f"retry_group_{g.reason_kind}").disabled


def test_retry_one_group_moves_only_its_photos_and_is_audited(app_as) -> None:  # type: ignore[no-untyped-def]
    st.cache_data.clear()
    at = app_as("developer")
    org = at.session_state[ACTOR_KEY].organization_id
    first, *others = failures.failed_groups(organization_id=org)
    ids = failures.failed_photo_ids(organization_id=org, reason_kind=first.reason_kind)
    rest = [i for g in others for i in failures.failed_photo_ids(organization_id=org, reason_kind=g.reason_kind)]
    key = f"retry_group_{first.reason_kind}"
    assert not at.button(key=key).disabled
    at.button(key=key).click().run()
    assert any("back in the queue with fresh attempts" in w for w in _texts(at, "warning"))
    at.button(key=f"{key}_confirm").click().run()
    assert not at.exception
    photos = f"{first.count:,} failed photo" + ("s" if first.count != 1 else "")
    assert any(s.startswith(f"Requeued {photos}. They had failed because") for s in _texts(at, "success")), \
        _texts(at, "success")
    assert _status(org, ids) == {"pending"}
    assert _status(org, rest) == {"failed"}
    admin = Actor(user_id=None, email="admin@example.com", role="admin", organization_id=org)
    entry = audit.list_entries(admin, entity_type="photos")[0]
    assert entry.action == "queue.retry_failed" and entry.reversible
    assert entry.before is not None and entry.before["reason_kind"] == first.reason_kind
    assert key not in [b.key for b in at.button]  # the retried group is gone from the page


def test_provider_cards_say_disabled_and_why(app_as) -> None:  # type: ignore[no-untyped-def]
    """Item 2 on screen: a disabled provider's card says 'disabled' with its icon and reason, never 'healthy'."""
    from aiconsole.platform.cache import invalidate_live
    from aiconsole.platform.db.models import ProviderConfig

    at = app_as("viewer")
    org = at.session_state[ACTOR_KEY].organization_id
    with service_session() as s:
        pc = s.scalars(select(ProviderConfig).where(ProviderConfig.organization_id == org,
                                                    ProviderConfig.provider == "gemini")).one()
        pc.enabled = False
        # No gemini call in the last 15 minutes: a disabled provider without traffic is still shown (it
        # vanished from the cards before, whenever the demo's traffic had not reached gemini lately).
        recent = utcnow() - timedelta(minutes=16)
        s.execute(update(AiProcessingResult).where(AiProcessingResult.organization_id == org,
                                                   AiProcessingResult.ai_provider == "gemini",
                                                   AiProcessingResult.created_at > recent)
                  .values(created_at=recent - timedelta(minutes=1)))
    invalidate_live(org)
    st.cache_data.clear()
    at.run()
    cards = [t for t in _texts(at, "markdown") if "**gemini**" in t]
    assert cards == [":material/block: **gemini** — disabled"], cards
    assert DISABLED_REASON in _texts(at, "caption")
