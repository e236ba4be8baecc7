"""The Audit log page offers Revert for a second-review share change (admin.reverts -> quality.public), and
reverting it there sets the previous share again."""

from __future__ import annotations

from typing import Any

import pytest

from aiconsole.platform import audit
from aiconsole.quality import double_review
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/audit_log.py"


def test_an_admin_reverts_a_share_change_from_the_audit_log(app_as: Any) -> None:
    at = app_as("admin")
    actor = at.session_state[ACTOR_KEY]
    before = double_review.quality_settings(actor)
    double_review.set_double_review_share(actor, share=0.35, expected_version=before.version)
    change = audit.list_entries(actor, action="quality.settings", limit=1)[0]
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.selectbox(key="f_action").select("quality.settings").run()
    assert at.dataframe[0].value["entry"].iloc[0] == change.id
    assert at.dataframe[0].value["revert"].iloc[0] == "revertible"
    at.button(key=f"revert_{change.id}").click().run()
    at.button(key=f"revert_{change.id}_confirm").click().run()
    assert not at.exception, at.exception
    assert any(f"Reverted entry #{change.id}" in shown(s.value) for s in at.success)
    assert double_review.quality_settings(actor).double_review_share == pytest.approx(before.double_review_share)
