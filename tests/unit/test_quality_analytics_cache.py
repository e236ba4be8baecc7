"""The Analytics tab's cache (analytics.cached_view) on SQLite and PostgreSQL: a second read is served from it
(new photos show up after its TTL), a submitted review or a rules change is seen at once, and it still checks
quality.view."""

from __future__ import annotations

import pytest
from unit_helpers import load_unit_module

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import PermissionDenied
from aiconsole.platform.settings import Settings
from aiconsole.quality import analytics as qa
from aiconsole.quality import calibration as qc
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import TagDecision, submit_review

rqh = load_unit_module("test_review_queue")


def test_served_from_the_cache_until_a_review_changes_it(any_settings: Settings) -> None:
    team = rqh.make_team("Cached Org")
    rqh.add_photo(team.org, [("boat", 0.6, "needs_review")], key="boat")
    assert qa.cached_analytics(team.viewer, days=1).backlog.awaiting == 1
    rqh.add_photo(team.org, [("sea", 0.6, "needs_review")], key="sea")
    assert qa.cached_analytics(team.viewer, days=1).backlog.awaiting == 1  # a new photo waits for the TTL
    assert qa.analytics(team.viewer, days=1).backlog.awaiting == 2
    item = rq.claim_next(team.first, order="lowest_confidence")
    assert item is not None
    submit_review(team.first, token=item.token, decisions=[TagDecision(tag_id=t.tag_id, action="approve")
                                                          for t in item.tags])
    after = qa.cached_analytics(team.viewer, days=1)
    assert (after.backlog.awaiting, after.backlog.reviews_last_24h) == (1, 1)
    assert sum(n for _, n, _ in after.throughput.days) == 1


def test_calibration_is_cached_per_target_and_sees_a_rules_change(any_settings: Settings) -> None:
    team = rqh.make_team("Cached Calibration Org")
    a = qc.cached_calibration(team.viewer, days=7, target=0.95)
    assert qc.cached_calibration(team.viewer, days=7, target=0.95) == a
    assert qc.cached_calibration(team.viewer, days=7, target=0.9).target == 0.9
    qc.propose_threshold(Actor.system("test", team.org), label="boat", accept=0.85)
    assert qc.cached_calibration(team.viewer, days=7, target=0.95).rules_version != a.rules_version


def test_the_cache_checks_the_permission(any_settings: Settings) -> None:
    team = rqh.make_team("Cached Permission Org")
    outsider = Actor(user_id=None, email="nobody@example.com", role="nobody", organization_id=team.org)
    with pytest.raises(PermissionDenied):
        qa.cached_analytics(outsider, days=1)
