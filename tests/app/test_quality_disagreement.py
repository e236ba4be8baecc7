"""Disagreement in the Quality page on the seeded demo (AppTest): a reviewer picks the Disagreement order and
gets a photo whose two sources disagree, shown with both label sets and the Jaccard; a viewer sees the queue and
the Disagreement tab with every action disabled; the tab lists the most disagreeing photos; an admin saves a
threshold (audited); nothing internal leaks onto the screen."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from panel_apps import demo_actor, panel_app, panel_texts
from streamlit.testing.v1 import AppTest

from aiconsole.platform.audit import list_entries
from aiconsole.quality import disagreement_reads, disagreement_settings
from aiconsole.quality.review_queue import DISAGREEMENT_ORDER_NOTE, ReviewItem, release_all
from aiconsole.ui.quality import review_keys as keys
from aiconsole.ui.quality import review_state as state
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/quality.py"
PANEL = "aiconsole.ui.quality.disagreement_panel"
_spec = importlib.util.spec_from_file_location("hygiene_helpers", Path(__file__).parent / "test_text_hygiene.py")
assert _spec is not None and _spec.loader is not None
hygiene = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hygiene
_spec.loader.exec_module(hygiene)


def texts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def open_disagreement_order(app_as: Any, role: str) -> AppTest:
    at = app_as(role)
    release_all(at.session_state[ACTOR_KEY])
    at.switch_page(PAGE).run()
    at.radio(key="rv_order").set_value("disagreement").run()
    assert not at.exception, at.exception
    return at


def test_a_reviewer_gets_a_disagreeing_photo_with_both_sources(app_as: Any) -> None:
    at = open_disagreement_order(app_as, "reviewer")
    assert DISAGREEMENT_ORDER_NOTE in texts(at, "caption")
    left = int({m.label: m.value for m in at.metric}["Queue left"].replace(",", ""))
    assert left > 0, "the demo's second opinions leave disagreeing photos to review"
    at.button(key=keys.NEXT).click().run()
    assert not at.exception, at.exception
    item: ReviewItem = at.session_state[state.ITEM]
    assert item is not None and item.queue_order == "disagreement"
    pair = disagreement_reads.photo_pair(at.session_state[ACTOR_KEY], photo_id=item.photo_id)
    assert pair is not None and pair.jaccard < 0.5
    shown_text = " ".join(texts(at, "markdown") + texts(at, "caption"))
    assert f"Jaccard similarity {pair.jaccard:.2f}" in shown_text
    for side in (pair.a, pair.b):
        assert f"{side.provider} · {side.model}" in shown_text
        assert (", ".join(side.labels) if side.labels else "no labels") in shown_text
    # The lowest Jaccard in the queue comes first: nothing waiting disagrees more than this photo.
    report = disagreement_reads.disagreement_report(at.session_state[ACTOR_KEY], limit=1)
    assert report.rows and report.rows[0].pair.jaccard <= pair.jaccard
    assert sorted(set(hygiene.read_page(at))) == []


def test_a_viewer_sees_the_disagreement_order_but_cannot_act(app_as: Any) -> None:
    at = open_disagreement_order(app_as, "viewer")
    assert at.button(key=keys.NEXT).disabled
    assert any("Your role (viewer) sees the queue but cannot review" in i for i in texts(at, "info"))
    assert at.session_state[state.ITEM] is None if state.ITEM in at.session_state else True


def test_the_disagreement_tab_lists_photos_and_an_admin_saves_the_threshold(demo_env: dict[str, str],
                                                                             passwords: dict[str, str]) -> None:
    viewer = demo_actor(demo_env, passwords, "viewer")
    at = panel_app(PANEL, viewer)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Photos with two sources or more"].replace(",", "")) > 0
    below = int(metrics["Below the threshold"].replace(",", ""))
    assert below > 0
    table = at.dataframe[0].value
    assert {"photo", "jaccard", "source A", "labels A", "source B", "labels B"} <= set(table.columns)
    assert list(table["jaccard"]) == sorted(table["jaccard"])  # least alike first
    assert at.number_input(key="disagreement_threshold").disabled
    assert "Review tab with the Disagreement order" in panel_texts(at)

    admin = demo_actor(demo_env, passwords, "admin")
    at = panel_app(PANEL, admin)
    before = disagreement_settings.disagreement_threshold(admin)
    at.number_input(key="disagreement_threshold").set_value(0.3)
    at.button[0].click().run()
    assert not at.exception, at.exception
    after = disagreement_settings.disagreement_threshold(admin)
    assert (after.threshold, after.version) == (0.3, before.version + 1)
    entry = list_entries(admin, action="quality.settings")[0]
    assert entry.after == {"disagreement_threshold": 0.3, "version": after.version}
    at = panel_app(PANEL, viewer)
    assert int({m.label: m.value for m in at.metric}["Below the threshold"].replace(",", "")) <= below
    disagreement_settings.set_disagreement_threshold(admin, threshold=before.threshold,
                                                     expected_version=after.version)
