"""Calibration on SQLite and PostgreSQL against decisions whose answers are worked out by hand: per-label
reliability and ECE equal to stats' on the raw decisions, the lowest accept threshold reaching 95% (0.83 on
the 'cat' fixture) with its Wilson interval and the review load it causes, labels without a proposal and why,
random-sample vs all reviews, per provider/model; a proposal saved as the label's override through the rules'
own save (audited, revertible with the audit log's Revert, version-checked) and refused for a reviewer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit_helpers import load_unit_module

from aiconsole.admin import reverts
from aiconsole.control import pipeline_settings
from aiconsole.platform import audit
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import calibration as qc
from aiconsole.quality import stats

qah = load_unit_module("test_quality_analytics")
rqh = qah.rqh
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=2)
# 'cat', random sample: (confidence, tags, right). Top down: 0.95 has 10 (< 20, too few), 0.90 reaches 19/20 =
# 95.0%, 0.83 29/30 = 96.7%, 0.80 36/40 = 90% and 0.60 40/50 = 80% do not: the lowest that reaches 95% is 0.83.
CAT = [(0.95, 10, 10), (0.90, 10, 9), (0.83, 10, 10), (0.80, 10, 7), (0.60, 10, 4)]
DOG = [(0.7, 5, 3)]  # too few decisions for a threshold
TREE = [(0.7, 20, 10)]  # never reaches 95%
GEMINI = ("gemini", "gemini-2.5-flash")


def decide(org: int, reviewer: Any, label: str, rows: list[tuple[float, int, int]], *, order: str = "random",
           provider: tuple[str, str] = ("local", "local-analyzer-v1")) -> None:
    """One review per tag: `right` of each confidence's tags approved, the rest rejected."""
    for conf, n, right in rows:
        for i in range(n):
            verdict = "accepted" if conf >= 0.9 else "needs_review" if conf >= 0.5 else "rejected"
            qah.add_review(org, reviewer, order=order, at=AT, provider=provider[0], model=provider[1],
                           decisions=[(label, conf, verdict, "approve" if i < right else "reject", None)])


def raw(rows: list[tuple[float, int, int]]) -> tuple[list[float], list[bool]]:
    return ([c for c, n, _ in rows for _ in range(n)], [i < right for _, n, right in rows for i in range(n)])


@pytest.fixture
def team(any_settings: Settings) -> Any:
    team = rqh.make_team("Calibration Org")
    with service_session() as s:
        s.add(PipelineConfig(organization_id=team.org, accept_threshold=0.9, reject_threshold=0.5))
    decide(team.org, team.first, "cat", CAT)
    decide(team.org, team.first, "dog", DOG, provider=GEMINI)
    decide(team.org, team.first, "tree", TREE)
    # Low-confidence-order reviews: all wrong at 0.85. They count only when asked for all reviews.
    decide(team.org, team.second, "cat", [(0.85, 10, 0)], order="lowest_confidence")
    return team


def test_the_lowest_threshold_reaching_the_target_with_its_interval_and_review_load(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, now=NOW)
    cat = next(c for c in report.labels if c.label == "cat")
    p = cat.proposal
    assert p is not None and p.threshold == 0.83 and p.support == 30
    assert p.precision == stats.wilson_interval(29, 30)
    # The same answer as stats on the raw decisions.
    confidences, correct = raw(CAT)
    reference = stats.threshold_for_precision(confidences, correct, target=0.95, current_accept=0.9, reject=0.5)
    assert reference is not None and (reference.threshold, reference.precision) == (p.threshold, p.precision)
    # Its 50 AI tags and the 10 of the other order: in the band [0.5, 0.9) now 40 of 60; [0.5, 0.83) 20 of 60.
    assert (p.review_share_now, p.review_share_after) == (40 / 60, 20 / 60)
    assert p.review_load_change == pytest.approx(-0.5)
    assert (cat.accept_now, cat.reject) == (0.9, 0.5) and not p.below_reject
    half = stats.wilson_interval(29, 30).half_width * 100  # type: ignore[union-attr]
    assert cat.summary == f"label 'cat': accept at 0.83 -> precision 96.7% +- {half:.1f}, review load -50%"
    assert report.sample == "random" and "unbiased" in report.note and report.rules_version == 1


def test_reliability_and_ece_equal_stats_on_the_raw_decisions(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, now=NOW)
    cat = next(c for c in report.labels if c.label == "cat").calibration
    confidences, correct = raw(CAT)
    bins = stats.reliability_bins(confidences, correct)
    assert (cat.decided, cat.correct) == (50, 40)
    assert [(b.count, b.accuracy) for b in cat.bins] == [(b.count, b.accuracy) for b in bins]
    assert [b.mean_confidence for b in cat.bins] == pytest.approx([b.mean_confidence for b in bins])
    assert cat.ece == pytest.approx(stats.expected_calibration_error(bins))
    # By hand: bin 6 (0.60, 40% right), bin 8 (0.80 x 10 at 70%, 0.83 x 10 at 100%), bin 9 (0.90, 0.95: 95%).
    assert cat.ece == pytest.approx((10 * 0.2 + 20 * abs(0.85 - 0.815) + 20 * abs(0.95 - 0.925)) / 50)
    five = qc.calibration(team.viewer, days=3, n_bins=5, now=NOW)
    assert [b.count for b in next(c for c in five.labels if c.label == "cat").calibration.bins] == [0, 0, 0, 10, 40]
    with pytest.raises(ValidationFailed, match="do not divide"):
        qc.calibration(team.viewer, days=3, n_bins=7, now=NOW)


def test_labels_without_a_proposal_say_why(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, now=NOW)
    assert [c.label for c in report.labels] == ["cat", "tree", "dog"]  # most decisions first
    by = {c.label: c for c in report.labels}
    assert by["dog"].proposal is None
    assert by["dog"].summary == "label 'dog': only 5 random-sample decisions; a threshold needs at least 20."
    assert by["tree"].summary == "label 'tree': no threshold reaches 95.0% precision (20 decisions)."
    later = qc.calibration(team.viewer, days=1, now=NOW + timedelta(days=5))
    assert later.labels == () and later.models == ()


def test_all_reviews_take_in_the_other_orders(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, sample="all", now=NOW)
    cat = next(c for c in report.labels if c.label == "cat")
    # Ten wrong tags at 0.85 join: from 0.90 19/20 still qualifies, 0.83 29/40 no longer does.
    assert cat.calibration.decided == 60 and cat.proposal is not None and cat.proposal.threshold == 0.9
    assert "biased" in report.note


def test_per_provider_and_model_and_filtered_labels(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, now=NOW)
    models = {(m.provider, m.model): m.calibration for m in report.models}
    assert set(models) == {GEMINI, ("local", "local-analyzer-v1")}
    assert (models[GEMINI].decided, models[GEMINI].correct) == (5, 3)
    confidences, correct = raw(CAT + TREE)
    assert models[("local", "local-analyzer-v1")].ece == pytest.approx(
        stats.expected_calibration_error(stats.reliability_bins(confidences, correct)))
    only = qc.calibration(team.viewer, days=3, provider="gemini", now=NOW)
    assert [c.label for c in only.labels] == ["dog"]


def test_a_proposal_becomes_the_labels_override_audited_and_revertible(team: Any) -> None:
    report = qc.calibration(team.viewer, days=3, now=NOW)
    cat = next(c for c in report.labels if c.label == "cat")
    assert cat.proposal is not None
    with pytest.raises(PermissionDenied):
        qc.propose_threshold(team.first, label="cat", accept=cat.proposal.threshold,
                             expected_version=report.rules_version)
    outcome = qc.propose_threshold(team.admin, label="Cat", accept=cat.proposal.threshold,
                                   expected_version=report.rules_version)
    assert outcome.message.startswith("Label 'cat' now accepts at 0.83 (settings version 2).")
    rules = pipeline_settings.current_settings(team.admin).rules
    assert rules.thresholds("cat") == (0.83, 0.5) and rules.thresholds("dog") == (0.9, 0.5)
    entry = audit.list_entries(team.admin, entity_type="pipeline_config")[0]
    assert entry.action == "rules.update" and entry.reversible
    assert entry.after == {"label_overrides": {"cat": {"accept": 0.83}}}
    # The report now reads the override: 0.83 is what cat accepts at, so the load would not change.
    again = next(c for c in qc.calibration(team.viewer, days=3, now=NOW).labels if c.label == "cat")
    assert again.accept_now == 0.83 and again.proposal is not None and again.proposal.review_load_change == 0
    # A proposal computed on the settings before this change is refused, not saved over it.
    with pytest.raises(ConflictError, match="after you loaded them"):
        qc.propose_threshold(team.admin, label="tree", accept=0.95, expected_version=report.rules_version)
    reverts.revert(team.admin, audit_id=entry.id)
    assert pipeline_settings.current_settings(team.admin).rules.label_overrides == {}


def test_a_threshold_the_rules_refuse_is_not_saved(team: Any) -> None:
    with pytest.raises(ValidationFailed, match="below the reject threshold"):
        qc.propose_threshold(team.admin, label="cat", accept=0.3)
    with pytest.raises(ValidationFailed, match=r"outside 0\.\.1"):
        qc.propose_threshold(team.admin, label="cat", accept=1.5)
    assert pipeline_settings.current_settings(team.admin).rules.label_overrides == {}
    assert audit.list_entries(team.admin, entity_type="pipeline_config") == []
