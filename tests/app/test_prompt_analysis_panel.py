"""The prompt editor's analysis panel through AppTest: a developer types and sees the warnings change; a viewer
reads the analysis of the base version."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from aiconsole.prompts import versions as prompts
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/prompts.py"


def _open(app_as: Callable[[str], AppTest], role: str) -> AppTest:
    at = app_as(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _warnings(at: AppTest) -> list[str]:
    return [shown(w.value) for w in at.warning]


def _metric_labels(at: AppTest) -> list[str]:
    return [shown(m.label) for m in at.metric]


def test_developer_sees_the_analysis_follow_the_draft(app_as) -> None:  # type: ignore[no-untyped-def]
    at = _open(app_as, "developer")
    actor = at.session_state[ACTOR_KEY]
    row = next(r for r in prompts.list_prompts(actor) if r.name == "photo-tagger")
    latest = prompts.list_versions(actor, prompt_id=row.id)[0]
    labels = _metric_labels(at)
    assert any(label.startswith("Tokens (") for label in labels), labels
    assert "Cost per 1,000 photos" in labels and "Output format" in labels
    at.session_state[f"prompt_editor_{row.id}_{latest.version}"] = (
        "Return at most 5 tags and at least 10 tags, comma-separated.")
    at.run()
    assert not at.exception, at.exception
    text = " ".join(_warnings(at))
    assert "At most 5 and at least 10 tags conflict." in text
    assert any(shown(m.value) == "comma-separated" for m in at.metric)


def test_viewer_reads_the_analysis_of_the_base_version(app_as) -> None:  # type: ignore[no-untyped-def]
    at = _open(app_as, "viewer")
    assert any(label.startswith("Tokens (") for label in _metric_labels(at))
    assert not at.exception
