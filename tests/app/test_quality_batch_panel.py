"""The Batch corrections panel through AppTest on the seeded demo: an admin previews a rename (count and sample),
confirms it, sees it run and its result, then undoes it (confirmed) and every tag is back; a reviewer sees the
past batches read-only (no form, Undo disabled with the reason), on the Quality page's Batch corrections tab too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from panel_apps import app_test_module, demo_actor, panel_app, panel_texts  # tests/ is on sys.path
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import CorrectionBatch, PhotoTag
from aiconsole.platform.db.types import utcnow
from aiconsole.quality import batches
from aiconsole.quality.batch_select import BatchFilter
from aiconsole.ui.widgets import shown

PANEL = "aiconsole.ui.quality.batch_panel"


def _labels(org: int) -> dict[str, int]:
    with service_session() as s:
        return dict(s.execute(select(PhotoTag.label, func.count()).where(PhotoTag.organization_id == org)
                              .group_by(PhotoTag.label)).all())


def _click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception


def _undecided(org: int, label: str, *, what: object = None) -> int:
    """Undecided tags with `label` (or, given `what`, e.g. distinct photo ids, how many of those there are)."""
    with service_session() as s:
        return int(s.scalar(select(func.count(what) if what is not None else func.count()).where(
            PhotoTag.organization_id == org, PhotoTag.label == label, PhotoTag.review_state != "rejected",
            PhotoTag.reviewed_at.is_(None))) or 0)


def test_an_admin_runs_a_rename_batch_and_undoes_it(demo_env: dict[str, str], passwords: dict[str, str]) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    org, before = admin.organization_id, _labels(admin.organization_id)
    label = max(before, key=lambda name: before[name])
    expected = _undecided(org, label)
    # A photo two sources tagged with the label keeps one renamed tag; its other one is rejected as a duplicate.
    photos = _undecided(org, label, what=PhotoTag.photo_id.distinct())
    assert expected > 0
    at = panel_app(PANEL, admin)
    assert [s.value for s in at.subheader] == ["New batch", "Past batches"]
    at.selectbox(key="bt_label").set_value(label)
    at.selectbox(key="bt_template").set_value("rename")
    at.text_input(key="bt_to_label").input("Batch Renamed")
    at.run()
    _click(at, "bt_preview")
    assert f"{expected:,} tags on " in panel_texts(at) and "would change." in panel_texts(at)
    assert at.image or "No thumbnail" in panel_texts(at)
    _click(at, "bt_run")
    warning = shown(str(at.warning[0].value))
    assert warning.startswith(f"Rename '{label}' to 'batch renamed' on {expected:,} tags") and "undone" in warning
    _click(at, "bt_run_confirm")
    done = batches.list_batches(admin)[0]
    assert (done.status, done.changed, done.failed) == ("completed", expected, 0)
    assert f"Batch #{done.id} (rename '{label}' to 'batch renamed') completed: {expected:,} tags changed" in \
        shown(str(at.success[0].value))
    assert _labels(org).get("batch renamed") == photos
    _click(at, f"bt_undo_{done.id}")
    assert shown(str(at.warning[0].value)).startswith(f"Undo batch #{done.id} (rename '{label}' to 'batch renamed')?")
    _click(at, f"bt_undo_{done.id}_confirm")
    assert _labels(org) == before
    with service_session() as s:
        row = s.get(CorrectionBatch, done.id)
        # Every tag back, and each photo whose ground truth the batch rewrote (their items) too.
        assert row is not None and row.status == "undone" and row.restored > row.changed and row.kept == 0
    assert f"Undid batch #{done.id}" in panel_texts(at)
    assert at.button(key=f"bt_undo_{done.id}").disabled
    # No None, '(s)', raw moments or numbers without separators on the panel, as the page scan reads it.
    assert not list(app_test_module("test_text_hygiene").read_page(at))


def test_a_reviewer_sees_past_batches_read_only(demo_env: dict[str, str], passwords: dict[str, str]) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    made = batches.run_batch(admin, filters=BatchFilter(min_confidence=0.999), template="accept",
                             params={"at_least": 0.999})
    at = panel_app(PANEL, demo_actor(demo_env, passwords, "reviewer"))
    texts = panel_texts(at)
    assert "they are for admins (Your role (reviewer) cannot do this.)" in texts
    assert not [b for b in at.button if b.key == "bt_preview"]
    undo: Any = at.button(key=f"bt_undo_{made.id}")
    assert undo.disabled and "Your role (reviewer) cannot do this." in shown(undo.help)
    assert f"#{made.id}" in [str(v) for v in at.dataframe[0].value["batch"]]


def test_the_quality_page_has_the_tab_read_only_for_a_reviewer(app_as: Any) -> None:
    at = app_as("reviewer")
    at.switch_page("pages/quality.py").run()
    assert not at.exception, at.exception
    tab = next(t for t in at.tabs if t.label == "Batch corrections")
    shown_in_tab = "\n".join(shown(str(i.value)) for i in tab.info)
    assert "they are for admins (Your role (reviewer) cannot do this.)" in shown_in_tab
    assert [s.value for s in tab.subheader] == ["New batch", "Past batches"]
    assert "bt_preview" not in [b.key for b in tab.button]


def test_an_interrupted_batch_says_so_and_can_be_undone(demo_env: dict[str, str], passwords: dict[str, str]) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    made = batches.run_batch(admin, filters=BatchFilter(min_confidence=0.99), template="accept",
                             params={"at_least": 0.99})
    assert made.changed > 0
    with service_session() as s:  # its process died mid-way: still 'running', its last beat long ago
        s.execute(update(CorrectionBatch).where(CorrectionBatch.id == made.id)
                  .values(status="running", heartbeat_at=utcnow() - timedelta(hours=1)))
    at = panel_app(PANEL, admin)
    at.selectbox(key="bt_pick").set_value(made.id).run()
    warning = shown(str(at.warning[0].value))
    assert warning.startswith(f"Batch #{made.id} (accept tags at or above 0.99) was interrupted: ")
    assert "It made no progress for over 10 minutes" in warning
    assert not at.button(key=f"bt_undo_{made.id}").disabled and at.button(key=f"bt_rest_{made.id}")
    _click(at, f"bt_undo_{made.id}")
    _click(at, f"bt_undo_{made.id}_confirm")
    with service_session() as s:
        row = s.get(CorrectionBatch, made.id)
        assert row is not None and (row.status, row.kept) == ("undone", 0) and row.restored >= made.changed
    assert not list(app_test_module("test_text_hygiene").read_page(at))
