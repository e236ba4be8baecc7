"""Experiment assignment: deterministic by (experiment, photo), split by weight, overrides validated."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from aiconsole.admin import users
from aiconsole.pipeline.experiments import (
    ExperimentPlan,
    Variant,
    assign,
    bucket,
    choose_variant,
    parse_variants,
    running_experiment,
)
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Experiment
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

AB = [{"name": "control", "weight": 50, "provider": "gemini", "model": "gemini-2.5-flash", "prompt_version_id": 3},
      {"name": "treatment", "weight": 50, "provider": "gemini", "model": "gemini-2.5-flash", "prompt_version_id": 4}]


def test_bucket_known_answer() -> None:
    # sha256("7:42") starts 6fb44d7d504d375b; / 2**64:
    assert bucket(7, 42) == pytest.approx(0x6FB44D7D504D375B / 2**64)
    assert bucket(7, 42) == pytest.approx(0.4363449507657621)


def test_same_photo_same_variant_every_time_and_per_experiment() -> None:
    variants = parse_variants(AB)
    first = [choose_variant(1, p, variants)[0].name for p in range(200)]
    assert first == [choose_variant(1, p, variants)[0].name for p in range(200)]
    other = [choose_variant(2, p, variants)[0].name for p in range(200)]
    assert first != other  # a new experiment reshuffles photos


def test_cumulative_weights_place_the_bucket() -> None:
    variants = (Variant("a", 1), Variant("b", 3))
    # bucket(7, 42) = 0.436 -> point 1.745 of 4 -> beyond a's [0, 1) -> b
    assert choose_variant(7, 42, variants)[0].name == "b"
    assert choose_variant(7, 42, (Variant("a", 3), Variant("b", 1)))[0].name == "a"  # 1.745 < 3


@pytest.mark.parametrize(("weights", "expected"), [((50, 50), (0.5, 0.5)), ((90, 10), (0.9, 0.1)),
                                                   ((1, 1, 2), (0.25, 0.25, 0.5))])
def test_traffic_split_follows_the_weights(weights: tuple[int, ...], expected: tuple[float, ...]) -> None:
    variants = parse_variants([{"name": f"v{i}", "weight": w} for i, w in enumerate(weights)])
    n = 20_000
    counts = Counter(choose_variant(11, p, variants)[0].name for p in range(n))
    for i, share in enumerate(expected):
        # 4 standard deviations of a binomial share at n = 20,000 is under 0.015.
        assert counts[f"v{i}"] / n == pytest.approx(share, abs=0.015)


def test_zero_weight_variant_is_never_chosen() -> None:
    variants = parse_variants([{"name": "off", "weight": 0}, {"name": "on", "weight": 5}])
    assert {choose_variant(3, p, variants)[0].name for p in range(2000)} == {"on"}


@pytest.mark.parametrize(("raw", "message"), [
    ([], "no variants"),
    ([{"weight": 1}], "needs a name"),
    ([{"name": "a", "weight": "lots"}], "not a number"),
    ([{"name": "a", "weight": -1}], "negative"),
    ([{"name": "a", "provider": "openai"}], "unknown provider 'openai'"),
    ([{"name": "a"}, {"name": "a"}], "share a name"),
    ([{"name": "a", "weight": 0}], "weight 0"),
    ([{"name": "a", "variables": ["x"]}], "variables"),
])
def test_bad_variants_are_refused_with_the_reason(raw: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        parse_variants(raw)


def test_assignment_carries_the_overrides_into_the_trace() -> None:
    plan = ExperimentPlan(id=9, name="Prompt v4 vs v3", variants=parse_variants(AB))
    a = assign(plan, 1234)
    step = a.trace()
    assert step["step"] == "experiment" and step["experiment_id"] == 9
    assert step["variant"] == a.variant.name in ("control", "treatment")
    assert step["overrides"]["prompt_version_id"] == (3 if a.variant.name == "control" else 4)


def test_running_experiment_is_the_earliest_started_valid_one(any_settings: Settings) -> None:
    org = users.create_organization(name="Exp Org").id
    with service_session() as s:
        s.add(Experiment(organization_id=org, name="done", status="completed", variants=AB,
                         started_at=datetime(2025, 1, 1, tzinfo=UTC)))
        s.add(Experiment(organization_id=org, name="broken", status="running", variants=[{"name": "x", "weight": 0}],
                         started_at=datetime(2025, 1, 2, tzinfo=UTC)))
        s.add(Experiment(organization_id=org, name="later", status="running", variants=AB,
                         started_at=datetime(2025, 1, 5, tzinfo=UTC)))
        s.add(Experiment(organization_id=org, name="earlier", status="running", variants=AB,
                         started_at=datetime(2025, 1, 3, tzinfo=UTC)))
    with service_session() as s:
        plan = running_experiment(s, organization_id=org)
    assert plan is not None and plan.name == "earlier"
    assert [v.name for v in plan.variants] == ["control", "treatment"]
    other = users.create_organization(name="No Exp Org").id
    with service_session() as s:
        assert running_experiment(s, organization_id=other) is None
