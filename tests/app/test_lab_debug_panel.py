"""The Testing Lab's Debug a photo tab on the demo organization: deep link, viewer cannot re-run."""

from __future__ import annotations

from sqlalchemy import select

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown


def _demo_photo(org: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(AiProcessingResult.photo_id).where(AiProcessingResult.organization_id == org)
                            .order_by(AiProcessingResult.id).limit(1)))


def test_viewer_opens_a_deep_linked_photo_and_cannot_rerun(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    photo = _demo_photo(at.session_state[ACTOR_KEY].organization_id)
    at.query_params["photo"] = str(photo)
    at.switch_page("pages/testing_lab.py").run()
    assert not at.exception, at.exception
    assert any(f"Photo #{photo}" in s.value for s in at.subheader)
    assert at.dataframe  # the parsed tags with their rule and verdict
    assert not [b for b in at.button if b.key == "lab_debug_rerun"]
    assert any("cannot" in shown(c.value) for c in at.caption)


def test_developer_searches_and_sees_rerun(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("developer")
    at.switch_page("pages/testing_lab.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lab_debug_photo").value is not None  # the demo's newest photos, first one opened
    assert any(s.value.startswith("Photo #") for s in at.subheader)
    assert at.button(key="lab_debug_rerun") is not None
