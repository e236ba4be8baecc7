"""Processing rules: tag verdicts at and around the thresholds, label overrides, photo status, loading."""

from __future__ import annotations

import pytest

from aiconsole.admin import users
from aiconsole.pipeline.rules import RuleSet, load_rules
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.errors import ConfigError
from aiconsole.platform.settings import Settings


def test_verdicts_at_and_around_the_thresholds() -> None:
    rules = RuleSet(accept_threshold=0.8, reject_threshold=0.4)
    assert rules.verdict("cat", 0.95) == "accepted"
    assert rules.verdict("cat", 0.8) == "accepted"  # >= accept
    assert rules.verdict("cat", 0.7999) == "needs_review"
    assert rules.verdict("cat", 0.4) == "needs_review"  # not below reject
    assert rules.verdict("cat", 0.3999) == "rejected"
    assert rules.verdict("cat", 0.0) == "rejected"


def test_equal_thresholds_leave_no_review_band() -> None:
    rules = RuleSet(accept_threshold=0.6, reject_threshold=0.6)
    assert [rules.verdict("x", c) for c in (0.59, 0.6, 0.61)] == ["rejected", "accepted", "accepted"]


def test_label_overrides_apply_to_their_label_only_and_ignore_case() -> None:
    rules = RuleSet(accept_threshold=0.8, reject_threshold=0.4,
                    label_overrides={"Weapon": {"accept": 0.99}, " cat ": {"reject": 0.7}, "dog": {}})
    assert rules.verdict("weapon", 0.95) == "needs_review"   # stricter accept for this label
    assert rules.verdict("WEAPON", 0.995) == "accepted"
    assert rules.verdict("weapon", 0.3) == "rejected"         # reject threshold inherited (0.4)
    assert rules.verdict("cat", 0.65) == "rejected"           # raised reject threshold
    assert rules.verdict("cat", 0.75) == "needs_review"
    assert rules.verdict("dog", 0.65) == "needs_review"       # empty override: the defaults
    assert rules.verdict("sword", 0.95) == "accepted"         # other labels: the defaults
    assert rules.thresholds("Cat") == (0.8, 0.7)


def test_photo_status_follows_its_tags() -> None:
    rules = RuleSet()
    assert rules.photo_status(["accepted", "rejected"]) == "completed"
    assert rules.photo_status(["accepted", "needs_review", "rejected"]) == "needs_review"
    assert rules.photo_status([]) == "completed"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"accept_threshold": 0.3, "reject_threshold": 0.5}, "above the accept threshold"),
    ({"accept_threshold": 1.2}, "outside 0..1"),
    ({"reject_threshold": "high"}, "not a number"),
    ({"label_overrides": {"cat": {"accept": 0.5, "reject": 0.6}}}, "For label 'cat'"),
    ({"label_overrides": {"cat": {"review": 0.5}}}, "unknown keys"),
    ({"label_overrides": {"cat": 0.5}}, "not a mapping"),
])
def test_inconsistent_rules_are_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RuleSet(**kwargs)


def test_load_rules_reads_the_org_config_or_defaults(any_settings: Settings) -> None:
    org = users.create_organization(name="Rules Org").id
    bare = users.create_organization(name="No Config Org").id
    with service_session() as s:
        s.add(PipelineConfig(organization_id=org, accept_threshold=0.9, reject_threshold=0.2,
                             label_overrides={"Person": {"accept": 0.99}}))
    with service_session() as s:
        rules = load_rules(s, org)
        default = load_rules(s, bare)
    assert (rules.accept_threshold, rules.reject_threshold) == (0.9, 0.2)
    assert rules.verdict("person", 0.95) == "needs_review"
    assert rules.verdict("tree", 0.95) == "accepted"
    assert (default.accept_threshold, default.reject_threshold) == (0.8, 0.4)
