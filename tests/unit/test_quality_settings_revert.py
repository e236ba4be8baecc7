"""The second-review share is revertible from the audit log (admin.reverts -> quality.public): a share change
reverted sets the previous share again (audited, itself revertible), refused when the settings changed since
(nothing changed) or for a role without quality.configure; the disagreement threshold, the row's other setting,
reverts the same way; an entry that changes no one setting is refused with why; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from unit_helpers import load_unit_module

from aiconsole.admin import reverts
from aiconsole.platform import audit
from aiconsole.platform.audit import entry_detail, list_entries
from aiconsole.platform.db import org_session
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import disagreement_settings, double_review, public

h = load_unit_module("test_review_queue")


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Share Org")


def _share(actor: Any, value: float) -> int:
    version = double_review.quality_settings(actor).version
    double_review.set_double_review_share(actor, share=value, expected_version=version)
    return list_entries(actor, action="quality.settings", limit=1)[0].id


def test_a_share_change_is_reverted_from_the_audit_log(team: Any) -> None:
    admin = team.admin
    assert reverts.owner("quality_settings", "quality.settings") is public.REVERT_OWNERS["quality_settings"]
    _share(admin, 0.10)
    change = _share(admin, 0.25)
    done = reverts.revert(admin, audit_id=change)
    view = double_review.quality_settings(admin)
    assert (view.double_review_share, view.version, view.updated_by) == (pytest.approx(0.10), 3, admin.email)
    entry = entry_detail(admin, audit_id=done.revert_id).entry
    assert (entry.action, entry.entity_type, entry.reversible) == ("revert", "quality_settings", True)
    assert entry.before == {"double_review_share": 0.25, "version": 2}
    assert entry.after == {"double_review_share": 0.10, "version": 3}
    assert entry.summary == f"Reverted #{change}: second-review share 25.00% -> 10.00%"
    assert entry_detail(admin, audit_id=change).entry.reverted_by_id == done.revert_id
    # The revert is itself revertible: the share is 25 % again.
    reverts.revert(admin, audit_id=done.revert_id)
    assert double_review.quality_settings(admin).double_review_share == pytest.approx(0.25)


def test_a_revert_is_refused_when_the_share_changed_since(team: Any) -> None:
    admin = team.admin
    first = _share(admin, 0.10)
    _share(admin, 0.30)
    with pytest.raises(ConflictError, match=rf"changed since entry #{first} \(it left version 1, now version 2, by "
                                            rf"{team.admin.email}\); nothing was reverted"):
        reverts.revert(admin, audit_id=first)
    view = double_review.quality_settings(admin)
    assert (view.double_review_share, view.version) == (pytest.approx(0.30), 2)
    assert entry_detail(admin, audit_id=first).entry.reverted_by_id is None
    with pytest.raises(PermissionDenied):
        reverts.revert(team.first, audit_id=first)


def test_a_disagreement_threshold_change_is_reverted_too(team: Any) -> None:
    admin = team.admin
    disagreement_settings.set_disagreement_threshold(admin, threshold=0.3, expected_version=0)
    change = list_entries(admin, action="quality.settings", limit=1)[0]
    assert (change.before, change.reversible) == ({"disagreement_threshold": 0.5, "version": 0}, True)
    done = reverts.revert(admin, audit_id=change.id)
    view = disagreement_settings.disagreement_threshold(admin)
    assert (view.threshold, view.version) == (pytest.approx(0.5), 2)
    entry = entry_detail(admin, audit_id=done.revert_id).entry
    assert entry.summary == f"Reverted #{change.id}: disagreement threshold 0.30 -> 0.50"
    assert double_review.quality_settings(admin).double_review_share == pytest.approx(0.05)  # the share untouched


def test_an_entry_that_changes_no_one_setting_is_refused_with_why(team: Any) -> None:
    admin = team.admin
    with org_session(admin.organization_id) as s:
        other = audit.record(s, actor=admin, action="quality.settings", entity_type="quality_settings",
                             entity_id=admin.organization_id,
                             before={"disagreement_threshold": 0.5, "double_review_share": 0.05, "version": 0},
                             after={"disagreement_threshold": 0.4, "double_review_share": 0.1, "version": 1},
                             summary="", reversible=True)
    with pytest.raises(ValidationFailed, match="does not change one quality setting"):
        reverts.revert(admin, audit_id=other)
