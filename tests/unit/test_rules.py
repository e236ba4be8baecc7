"""Processing rules: tag verdicts at and around the thresholds, label overrides, photo status, loading, and the
rule's SQL form agreeing with it row by row on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from pipeline_data import add_result, make_org
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.pipeline.rules import RuleSet, load_rules, verdict_sql
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import PhotoTag, PipelineConfig
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


# The Python rule and its SQL form over the same stored tags: every threshold, a hair either side, overrides
# of either threshold, both, or to one value, and labels without one.
OVERRIDES = {"dog": {"accept": 0.5}, "cat": {"reject": 0.7}, "tree": {"accept": 0.9, "reject": 0.3},
             "sky": {"accept": 0.6, "reject": 0.6}}
EDGES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CONFIDENCES = sorted({*EDGES, *(e + d for e in EDGES for d in (-1e-9, 1e-9) if 0 <= e + d <= 1),
                      *(i / 20 for i in range(21)), 0.58, 0.999})


@pytest.mark.parametrize("rules", [
    RuleSet(accept_threshold=0.8, reject_threshold=0.4, label_overrides=OVERRIDES),
    RuleSet(accept_threshold=0.8, reject_threshold=0.4),
    RuleSet(accept_threshold=0.6, reject_threshold=0.6, label_overrides={"dog": {"reject": 0.1}}),
], ids=["overrides", "global-only", "no-review-band"])
def test_the_sql_form_of_the_rule_agrees_with_the_python_rule_on_every_row(any_settings: Settings,
                                                                           rules: RuleSet) -> None:
    org, _ = make_org()
    labels = [*OVERRIDES, "person"]
    for label in labels:
        add_result(org, tags=[(label, c) for c in CONFIDENCES])
    t = PhotoTag
    with service_session() as s:
        rows = s.execute(select(t.label, t.confidence, verdict_sql(rules, t.label, t.confidence))
                         .where(t.organization_id == org)).all()
    assert len(rows) == len(labels) * len(CONFIDENCES)
    disagree = [(label, c, sql) for label, c, sql in rows if sql != rules.verdict(label, c)]
    assert disagree == []
    assert {sql for *_, sql in rows} == {"accepted", "needs_review", "rejected"}


def test_the_rule_at_its_boundaries_in_both_forms(any_settings: Settings) -> None:
    rules = RuleSet(accept_threshold=0.8, reject_threshold=0.4, label_overrides=OVERRIDES)
    expected = {("person", 0.8): "accepted", ("person", 0.4): "needs_review", ("dog", 0.5): "accepted",
                ("dog", 0.4): "needs_review", ("cat", 0.7): "needs_review", ("cat", 0.7 - 1e-9): "rejected",
                ("tree", 0.3): "needs_review", ("tree", 0.9): "accepted", ("sky", 0.6): "accepted",
                ("sky", 0.6 - 1e-9): "rejected"}
    org, _ = make_org()
    for label, c in expected:
        add_result(org, tags=[(label, c)])
    t = PhotoTag
    with service_session() as s:
        rows = s.execute(select(t.label, t.confidence, verdict_sql(rules, t.label, t.confidence))
                         .where(t.organization_id == org)).all()
    assert {(label, c): sql for label, c, sql in rows} == expected
    assert {key: rules.verdict(*key) for key in expected} == expected
