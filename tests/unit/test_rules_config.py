"""Processing rules: validation messages, audited saving with version checks, and the impact preview's counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pipeline_data import add_result, as_role, make_org
from sqlalchemy import select

from aiconsole.control.rules_config import RulesConfig, overrides_from_rows, parse_rules, save_rules
from aiconsole.control.rules_preview import CONFIDENCE_BUCKETS, impact_preview
from aiconsole.pipeline.rules import RuleSet
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings

VALID: dict[str, Any] = {"accept_threshold": 0.8, "reject_threshold": 0.4, "max_retries": 3, "worker_concurrency": 8}


def _refused(**changes: Any) -> str:
    with pytest.raises(ValidationFailed) as err:
        parse_rules({**VALID, **changes})
    return str(err.value)


def test_accept_below_reject_is_refused_with_the_reason() -> None:
    msg = _refused(accept_threshold=0.3, reject_threshold=0.5)
    assert "accept threshold 0.3 is below the reject threshold 0.5" in msg
    assert "can't be both accepted and rejected" in msg


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("accept_threshold", 1.2, "The accept threshold 1.2 is outside 0..1"),
    ("reject_threshold", -0.1, "The reject threshold -0.1 is outside 0..1"),
    ("daily_budget_usd", "-5", "The daily budget $-5 is negative"),
    ("monthly_budget_usd", "-0.01", "The monthly budget $-0.01 is negative"),
    ("max_cost_per_photo_usd", "0", "The max cost per photo $0 is outside"),
    ("max_cost_per_photo_usd", "50", "is surely a typo"),
    ("max_retries", 0, "Max retries 0 is outside 1..10"),
    ("max_retries", 11, "Max retries 11 is outside 1..10"),
    ("worker_concurrency", 0, "Parallel calls per worker 0 is outside 1..64"),
    ("worker_concurrency", 65, "Parallel calls per worker 65 is outside 1..64"),
    ("accept_threshold", "high", "accept_threshold: Input should be a valid number"),
])
def test_out_of_range_values_say_the_allowed_range(field: str, value: Any, expected: str) -> None:
    assert expected in _refused(**{field: value})


def test_every_problem_is_reported_at_once() -> None:
    msg = _refused(max_retries=0, worker_concurrency=100, daily_budget_usd="-1")
    assert "Max retries 0" in msg and "Parallel calls per worker 100" in msg and "daily budget $-1" in msg


def test_label_overrides_are_normalized_and_checked() -> None:
    rules = parse_rules({**VALID, "label_overrides": {"  Golden Retriever ": {"accept": 0.95}}})
    assert rules.thresholds("golden retriever") == (0.95, 0.4)
    assert rules.thresholds("cat") == (0.8, 0.4)
    assert "For label 'dog' the accept threshold 0.3 is below the reject threshold 0.4" in _refused(
        label_overrides={"dog": {"accept": 0.3}})
    assert "sets neither threshold" in _refused(label_overrides={"dog": {}})
    assert "has two overrides" in _refused(label_overrides={"Dog": {"accept": 0.9}, "dog ": {"accept": 0.7}})
    assert "empty label" in _refused(label_overrides={"  ": {"accept": 0.9}})
    assert "The label's accept threshold 2 is outside 0..1" in _refused(label_overrides={"dog": {"accept": 2}})


def test_daily_budget_above_monthly_is_refused() -> None:
    assert "daily budget $50 is above the monthly budget $20" in _refused(daily_budget_usd="50",
                                                                           monthly_budget_usd="20")


def test_columns_round_trip_in_micros_and_match_the_workers_rules() -> None:
    rules = parse_rules({**VALID, "max_cost_per_photo_usd": "0.0125", "daily_budget_usd": "25",
                         "monthly_budget_usd": "600.50", "label_overrides": {"Dog": {"reject": 0.6}}})
    cols = rules.to_columns()
    assert cols["max_cost_per_photo_micros"] == 12_500
    assert cols["daily_budget_micros"] == 25_000_000 and cols["monthly_budget_micros"] == 600_500_000
    assert cols["label_overrides"] == {"dog": {"reject": 0.6}}
    assert RulesConfig.from_columns(cols) == rules
    worker = RuleSet(accept_threshold=cols["accept_threshold"], reject_threshold=cols["reject_threshold"],
                     label_overrides=cols["label_overrides"])
    for label in ("dog", "cat"):
        assert worker.thresholds(label) == rules.thresholds(label)


def test_save_rules_audits_only_what_changed(settings: Settings) -> None:
    org, admin = make_org()
    rules = parse_rules({**VALID, "accept_threshold": 0.85, "daily_budget_usd": "10"})
    version = save_rules(admin, rules=rules, expected_version=1)
    assert version == 2
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None and cfg.accept_threshold == 0.85 and cfg.daily_budget_micros == 10_000_000
        assert cfg.updated_by == admin.user_id
        entry = s.scalars(select(AuditLog).where(AuditLog.organization_id == org,
                                                 AuditLog.action == "rules.update")).one()
        assert entry.before == {"accept_threshold": 0.8, "daily_budget_micros": None}
        assert entry.after == {"accept_threshold": 0.85, "daily_budget_micros": 10_000_000}
        assert entry.reversible and entry.entity_type == "pipeline_config" and entry.user_id == admin.user_id
    assert save_rules(admin, rules=rules, expected_version=2) == 2  # nothing changed: no new version or entry


def test_stale_version_and_read_only_roles_save_nothing(settings: Settings) -> None:
    org, admin = make_org()
    save_rules(admin, rules=parse_rules({**VALID, "max_retries": 5}), expected_version=1)
    with pytest.raises(ConflictError) as err:
        save_rules(admin, rules=parse_rules({**VALID, "max_retries": 7}), expected_version=1)
    assert admin.email in str(err.value) and "Reload the page" in str(err.value)
    for role in ("developer", "analyst", "reviewer", "viewer"):
        with pytest.raises(PermissionDenied):
            save_rules(as_role(admin, role), rules=parse_rules(VALID), expected_version=2)
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None and cfg.max_retries == 5 and cfg.version == 2


def _hand_built(org: int) -> None:
    now = utcnow()
    add_result(org, tags=[("cat", 0.9), ("dog", 0.5), ("car", 0.2)])
    add_result(org, tags=[("cat", 0.85), ("tree", 0.81)], human_tags=[("person", 0.3)])
    add_result(org, tags=[])
    add_result(org, tags=[("sky", 0.45)], status="needs_review")
    add_result(org, tags=[], status="failed")
    add_result(org, tags=[("old", 0.5)], created_at=now - timedelta(days=10))
    other, _ = make_org()
    add_result(other, tags=[("cat", 0.6)])


NEW = {"accept_threshold": 0.7, "reject_threshold": 0.5,
       "label_overrides": {"tree": {"accept": 0.9}, "Sky": {"accept": 0.4, "reject": 0.3}, "dog": {"accept": 0.5}}}


def test_impact_preview_known_answer(any_settings: Settings) -> None:
    org, admin = make_org()
    _hand_built(org)
    preview = impact_preview(as_role(admin, "viewer"), rules=parse_rules({**VALID, **NEW}), days=7)
    assert (preview.photos, preview.tags) == (4, 6)
    # Current 0.8/0.4: cat .9 acc, dog .5 review, car .2 rej | cat .85 acc, tree .81 acc | (none) | sky .45 review.
    cur = preview.current
    assert (cur.tags_accepted, cur.tags_review, cur.tags_rejected) == (3, 2, 1)
    assert (cur.photos_completed, cur.photos_review) == (2, 2)
    # New 0.7/0.5: dog .5 accepted at its own 0.5 (>=), tree .81 below its 0.9 -> review, sky .45 accepted at 0.4.
    new = preview.proposed
    assert (new.tags_accepted, new.tags_review, new.tags_rejected) == (4, 1, 1)
    assert (new.photos_completed, new.photos_review) == (3, 1)
    hist = preview.histogram
    assert len(hist) == CONFIDENCE_BUCKETS and sum(hist) == 6
    assert {i: c for i, c in enumerate(hist) if c} == {10: 1, 22: 1, 25: 1, 40: 1, 42: 1, 45: 1}
    assert impact_preview(admin, rules=parse_rules(VALID), days=30).tags == 7  # the 10-day-old tag joins


def test_impact_preview_agrees_with_the_worker_rules(settings: Settings) -> None:
    org, admin = make_org()
    confidences = [i / 20 for i in range(21)] + [0.58, 0.999, 1.0]
    labels = ["dog", "cat", "tree"]
    tags = [(labels[i % 3], c) for i, c in enumerate(confidences)]
    for tag in tags:
        add_result(org, tags=[tag])
    rules = parse_rules({**VALID, **NEW})
    preview = impact_preview(admin, rules=rules, days=1)
    cols = rules.to_columns()
    worker = RuleSet(accept_threshold=cols["accept_threshold"], reject_threshold=cols["reject_threshold"],
                     label_overrides=cols["label_overrides"])
    verdicts = [worker.verdict(label, c) for label, c in tags]
    new = preview.proposed
    assert (new.tags_accepted, new.tags_review, new.tags_rejected) == (
        verdicts.count("accepted"), verdicts.count("needs_review"), verdicts.count("rejected"))
    assert new.photos_review == verdicts.count("needs_review")
    assert preview.histogram[28:31] == (0, 1, 1)  # 0.58 in [0.58, 0.60) although 0.58 * 50 = 28.999...; 0.6 next
    assert preview.histogram[49] == 3  # 0.999 and both 1.0s share the top bucket


def test_impact_preview_window_is_bounded(settings: Settings) -> None:
    _, admin = make_org()
    with pytest.raises(ValidationFailed, match=r"outside 1\.\.90"):
        impact_preview(admin, rules=parse_rules(VALID), days=365)
    empty = impact_preview(admin, rules=RulesConfig(max_cost_per_photo_usd=Decimal("0.01")), days=7)
    assert (empty.photos, empty.tags, sum(empty.histogram)) == (0, 0, 0)


def test_override_rows_from_the_editor() -> None:
    rows: list[dict[str, Any]] = [{"label": "Dog", "accept": 0.9, "reject": float("nan")},
                                  {"label": None, "accept": None, "reject": None},
                                  {"label": "", "accept": 0.5, "reject": None}]
    overrides = overrides_from_rows(rows)
    assert overrides == {"Dog": {"accept": 0.9, "reject": None}, "": {"accept": 0.5, "reject": None}}
    assert "empty label" in _refused(label_overrides=overrides)
    with pytest.raises(ValidationFailed, match="two override rows"):
        overrides_from_rows([{"label": "cat", "accept": 0.9}, {"label": "cat", "reject": 0.1}])


def test_an_override_the_audit_log_redacts_is_recorded_irreversible(settings: Settings) -> None:
    org, admin = make_org()
    save_rules(admin, rules=parse_rules({**VALID, "label_overrides": {"access token": {"accept": 0.9}}}),
               expected_version=1)
    with service_session() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.organization_id == org,
                                                 AuditLog.action == "rules.update")).one()
        assert entry.after == {"label_overrides": {"access token": "[redacted]"}} and not entry.reversible
