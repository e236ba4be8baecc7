"""Experiment assignment: which variant of a running experiment a photo gets.

The choice is a pure function of (experiment id, photo id): the first 8 bytes of
sha256("<experiment>:<photo>") read as a number in [0, 1) and placed on the variants' cumulative
weights. So a photo keeps its variant when it is retried or processed by another worker, and each
variant gets its share of the traffic without any shared state.

A variant is a dict in `experiments.variants`: {"name", "weight", and any of "provider", "model",
"prompt_version_id", "variables"}; what a variant leaves out is taken from the pipeline config.
Weights are relative shares (50/50, 1/1 and 90/10 all work); a weight of 0 switches a variant off.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import PROVIDERS, Experiment
from aiconsole.platform.errors import ValidationFailed

log = logging.getLogger(__name__)

MAX_VARIANTS = 10
_SCALE = float(2**64)


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment and what it overrides."""

    name: str
    weight: float
    provider: str | None = None
    model: str | None = None
    prompt_version_id: int | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentPlan:
    """A running experiment's id, name and validated variants."""

    id: int
    name: str
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class Assignment:
    """The variant a photo got, with the overrides the worker applies."""

    experiment_id: int
    experiment_name: str
    variant: Variant
    bucket: float

    def trace(self) -> dict[str, Any]:
        """The assignment as a trace step."""
        return {"step": "experiment", "experiment_id": self.experiment_id, "experiment": self.experiment_name,
                "variant": self.variant.name, "bucket": round(self.bucket, 6),
                "overrides": {k: v for k, v in (("provider", self.variant.provider), ("model", self.variant.model),
                                                ("prompt_version_id", self.variant.prompt_version_id))
                              if v is not None}}


def bucket(experiment_id: int, photo_id: int) -> float:
    """A number in [0, 1) fixed by (experiment, photo) and spread evenly over photos."""
    digest = hashlib.sha256(f"{int(experiment_id)}:{int(photo_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def parse_variants(raw: Sequence[Mapping[str, Any]]) -> tuple[Variant, ...]:
    """Validated variants from an experiment's JSON; ValidationFailed says which one is wrong and how."""
    if not raw:
        raise ValidationFailed("The experiment has no variants.", hint="Add at least two variants, e.g. control "
                                                                      "and treatment.")
    if len(raw) > MAX_VARIANTS:
        raise ValidationFailed(f"The experiment has {len(raw)} variants; at most {MAX_VARIANTS} are allowed.")
    out: list[Variant] = []
    for i, item in enumerate(raw, start=1):
        name = str(item.get("name") or "").strip()
        if not name or len(name) > 64:
            raise ValidationFailed(f"Variant {i} needs a name of 1 to 64 characters.")
        try:
            weight = float(item.get("weight", 1))
        except (TypeError, ValueError):
            raise ValidationFailed(f"Variant {name!r} has a weight that is not a number.") from None
        if not 0 <= weight < float("inf"):
            raise ValidationFailed(f"Variant {name!r} has a negative or infinite weight ({weight}).",
                                   hint="Use 0 to switch it off, or a positive share such as 50.")
        provider = item.get("provider")
        if provider is not None and provider not in PROVIDERS:
            raise ValidationFailed(f"Variant {name!r} names an unknown provider {provider!r}.",
                                   hint=f"Use one of: {', '.join(PROVIDERS)}.")
        version = item.get("prompt_version_id")
        variables = item.get("variables") or {}
        if not isinstance(variables, Mapping):
            raise ValidationFailed(f"Variant {name!r} has variables that are not a mapping of name to value.")
        out.append(Variant(name=name, weight=weight, provider=provider,
                           model=str(item["model"]) if item.get("model") else None,
                           prompt_version_id=int(version) if version is not None else None,
                           variables=dict(variables)))
    if len({v.name for v in out}) != len(out):
        raise ValidationFailed("Two variants of the experiment share a name.", hint="Give every variant its own name.")
    if sum(v.weight for v in out) <= 0:
        raise ValidationFailed("Every variant of the experiment has weight 0, so no photo could be assigned.",
                               hint="Give at least one variant a positive weight.")
    return tuple(out)


def choose_variant(experiment_id: int, photo_id: int, variants: Sequence[Variant]) -> tuple[Variant, float]:
    """The variant whose cumulative-weight interval holds the photo's bucket, and that bucket."""
    b = bucket(experiment_id, photo_id)
    total = sum(v.weight for v in variants)
    point = b * total
    upto = 0.0
    chosen = None
    for v in variants:
        if v.weight <= 0:
            continue
        upto += v.weight
        chosen = v
        if point < upto:
            break
    if chosen is None:
        raise ValidationFailed("No variant has a positive weight.")
    return chosen, b


def assign(plan: ExperimentPlan, photo_id: int) -> Assignment:
    """The photo's variant in `plan`."""
    variant, b = choose_variant(plan.id, photo_id, plan.variants)
    return Assignment(experiment_id=plan.id, experiment_name=plan.name, variant=variant, bucket=b)


def running_experiment(session: Session, *, organization_id: int) -> ExperimentPlan | None:
    """The organization's running experiment (the earliest started when several run), or None.

    An experiment whose variants do not validate is skipped rather than failing every photo; the
    Testing Lab validates variants when an experiment is created or started.
    """
    rows = session.execute(
        select(Experiment.id, Experiment.name, Experiment.variants)
        .where(Experiment.organization_id == organization_id, Experiment.status == "running")
        .order_by(Experiment.started_at.is_(None), Experiment.started_at, Experiment.id)
    ).all()
    for exp_id, name, raw in rows:
        try:
            return ExperimentPlan(id=int(exp_id), name=name, variants=parse_variants(raw or []))
        except ValidationFailed as exc:
            log.warning("experiment %s of organization %s skipped: %s", exp_id, organization_id, exc)
    return None
