"""Live Status layout and panels through AppTest (issue 10 items 9 and 10): the quick actions and paused banner
come before the cards and read the same snapshot; the upload panel stays open with its result after Confirm,
and a photo it queued opens with its status, filename, size, priority and thumbnail."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

from PIL import Image
from sqlalchemy import select, update

from aiconsole.pipeline import config_row
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown


def _org(at) -> int:  # type: ignore[no-untyped-def]
    return at.session_state[ACTOR_KEY].organization_id


def _leaves(node: Any) -> Iterator[Any]:
    """Every element under `node` in page order (blocks' children are keyed by their position)."""
    children = getattr(node, "children", None)
    if children is None:
        yield node
        return
    for _, child in sorted(children.items()):
        yield from _leaves(child)


def _order(at) -> list[str]:  # type: ignore[no-untyped-def]
    """What the main area draws, in order: buttons by key, metrics by label, alerts by kind."""
    out = []
    for el in _leaves(at.main):
        if el.type == "button":
            out.append(f"button:{el.key}")
        elif el.type == "metric":
            out.append(f"metric:{el.label}")
        elif el.type in ("error", "warning"):
            out.append(f"{el.type}:{shown(el.value)[:40]}")
    return out


def test_quick_actions_come_first_with_the_paused_banner(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = _org(at)
    with service_session() as s:
        config_row.pause(config_row.lock_or_create(s, org), kind=config_row.MANUAL, reason="maintenance", by=None,
                         now=utcnow())
    invalidate_live(org)
    at.run()
    order = _order(at)
    banner = next(i for i, e in enumerate(order) if e.startswith("error:Processing is paused"))
    first_card = order.index("metric:Processed today")
    for key in ("resume", "retry_failed", "requeue_stuck", "health_check"):
        assert banner < order.index(f"button:{key}") < first_card, order
    with service_session() as s:
        config_row.resume(config_row.lock_or_create(s, org), by=None, now=utcnow())
    invalidate_live(org)


def _failed_card(at) -> str:  # type: ignore[no-untyped-def]
    return str(next(m.value for m in at.metric if m.label == "Failed"))


def _retry_label(at) -> str:  # type: ignore[no-untyped-def]
    return at.button(key="retry_failed").label.removeprefix("Retry failed (").removesuffix(")")


def test_failed_card_and_retry_count_agree_after_the_queue_changes(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("developer")
    org = _org(at)
    assert _failed_card(at) == _retry_label(at)
    with service_session() as s:
        ids = list(s.scalars(select(Photo.id).where(Photo.organization_id == org, Photo.status == "pending")
                            .limit(2)))
        s.execute(update(Photo).where(Photo.id.in_(ids)).values(status="failed", last_error="timeout: slow"))
    invalidate_live(org)
    at.run()
    assert _failed_card(at) == _retry_label(at)
    assert not at.button(key="retry_failed").disabled


def _fresh_jpeg() -> bytes:
    """A 64x48 JPEG no earlier upload or demo photo has (random pixels)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)).save(out, "JPEG")
    return out.getvalue()


def test_upload_panel_stays_open_with_its_result_and_opens_the_queued_photo(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("developer")
    at.session_state["upload_panel"] = True  # the person opened the panel
    at.run()
    photo = _fresh_jpeg()
    at.file_uploader(key="upload_files").set_value([("coffee.jpg", photo, "image/jpeg"),
                                                    ("notes.jpg", b"%PDF-1.4 not a photo" * 20, "image/jpeg")]).run()
    at.slider(key="upload_priority").set_value(7).run()
    assert at.button(key="upload").label.startswith("Queue 2 files (")
    at.button(key="upload").click().run()
    at.button(key="upload_confirm").click().run()
    assert not at.exception, at.exception
    assert any(shown(s.value) == "1 queued, 0 already known, 1 rejected" for s in at.success)

    panel = next(e for e in at.expander if e.label == "Upload photos to the queue")
    assert panel.proto.expanded, "the panel collapsed after Confirm, hiding its result"
    table = at.dataframe[0].value
    assert list(table["outcome"]) == ["queued", "rejected"]
    assert at.selectbox(key="upload_open_photo").value is not None
    with service_session() as s:
        queued = s.scalars(select(Photo).where(Photo.organization_id == _org(at), Photo.filename == "coffee.jpg")).one()
    assert at.selectbox(key="upload_open_photo").value == queued.id
    texts = [shown(m.value) for m in [*at.markdown, *at.caption]]
    assert "**coffee.jpg** — pending" in texts, texts
    facts = next(t for t in texts if t.startswith(f"photo #{queued.id:,} · "))
    assert f"{queued.width:,} × {queued.height:,} px" in facts and "image/jpeg" in facts
    assert any(t.startswith("priority 7 · attempts 0 · queued ") for t in texts), texts
    assert len(at.image) == 1 and len(at.image[0].value) == 1  # the thumbnail, from the stored bytes
