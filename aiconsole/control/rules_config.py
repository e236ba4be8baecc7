"""Processing rules as the console edits them: validation and saving (audited, versioned).

`RulesConfig` holds what the rules form shows (money in dollars); `to_columns` / `from_columns` convert to and
from the pipeline_config columns (money in micro-dollars), `rule_set` to the worker's `RuleSet`. A tag's
verdict is `aiconsole.pipeline.rules`'s tag rule; a photo needs review when any of its tags does.

What the rules would change is `aiconsole.control.rules_preview`'s.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiconsole.pipeline import config_row
from aiconsole.pipeline.rules import DEFAULT_ACCEPT, DEFAULT_REJECT, RuleSet, normalize_label, resolve_thresholds
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import DEFAULT_PARALLEL_CALLS, MAX_PARALLEL_CALLS, PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.money import micros_to_usd, usd_to_micros
from aiconsole.platform.strict_numbers import NOT_BOOL, Float, Int

MAX_RETRIES_RANGE = (1, 10)
CONCURRENCY_RANGE = (1, MAX_PARALLEL_CALLS)
MAX_COST_PER_PHOTO_USD = Decimal("10")
MAX_BUDGET_USD = Decimal("10000000")
SMALLEST_USD = micros_to_usd(1)  # $0.000001: money is stored in whole micro-dollars
MAX_OVERRIDES = 500
MAX_LABEL_CHARS = 200
# The pipeline_config columns a rules change writes (and a revert of it restores).
RULE_COLUMNS = ("accept_threshold", "reject_threshold", "label_overrides", "max_cost_per_photo_micros",
                "daily_budget_micros", "monthly_budget_micros", "max_retries", "worker_concurrency")


def _threshold(value: float, what: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} {value:g} is outside 0..1: confidences run from 0 (no idea) to 1 (certain).")
    return value


# field -> (name in messages, allowed range, why that range).
_COUNTS = {
    "max_retries": ("Max retries", MAX_RETRIES_RANGE, f"it is the number of attempts a photo gets "
                    f"({MAX_RETRIES_RANGE[0]} = no retry), and beyond {MAX_RETRIES_RANGE[1]} a photo that keeps "
                    "failing only burns budget."),
    "worker_concurrency": ("Parallel calls per worker", CONCURRENCY_RANGE, "at least one call must run, and "
                           f"more than {CONCURRENCY_RANGE[1]} at once in one worker exceed every provider's rate "
                           "limits."),
}


def _at_least_a_micro(value: Decimal | None, what: str) -> None:
    # Money is stored in whole micro-dollars: a smaller positive amount would be stored as $0, which stops
    # every call (cost limit) or pauses processing (budget) though the form showed more than $0.
    if value is not None and 0 < value < SMALLEST_USD:
        raise ValueError(f"The {what} ${value:f} is below the smallest amount (${SMALLEST_USD}, one micro-dollar) "
                         f"and would be stored as $0: enter at least ${SMALLEST_USD}.")


class LabelOverride(BaseModel):
    """One label's own thresholds; a missing one falls back to the global threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accept: Annotated[float | None, NOT_BOOL] = None
    reject: Annotated[float | None, NOT_BOOL] = None

    @field_validator("accept", "reject")
    @classmethod
    def _in_range(cls, value: float | None, info: Any) -> float | None:
        return None if value is None else _threshold(value, f"The label's {info.field_name} threshold")


class RulesConfig(BaseModel):
    """The processing rules of an organization, validated with messages that say the allowed range and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accept_threshold: Float = DEFAULT_ACCEPT
    reject_threshold: Float = DEFAULT_REJECT
    label_overrides: dict[str, LabelOverride] = Field(default_factory=dict)
    max_cost_per_photo_usd: Annotated[Decimal | None, NOT_BOOL] = None
    daily_budget_usd: Annotated[Decimal | None, NOT_BOOL] = None
    monthly_budget_usd: Annotated[Decimal | None, NOT_BOOL] = None
    max_retries: Int = 3
    worker_concurrency: Int = DEFAULT_PARALLEL_CALLS

    @field_validator("accept_threshold", "reject_threshold")
    @classmethod
    def _threshold_range(cls, value: float, info: Any) -> float:
        return _threshold(value, f"The {info.field_name.split('_')[0]} threshold")

    @field_validator("max_cost_per_photo_usd")
    @classmethod
    def _cost_range(cls, value: Decimal | None) -> Decimal | None:
        _at_least_a_micro(value, "max cost per photo")
        if value is not None and not Decimal(0) < value <= MAX_COST_PER_PHOTO_USD:
            raise ValueError(f"The max cost per photo ${value} is outside $0..${MAX_COST_PER_PHOTO_USD} (above 0): "
                             "a photo costs a fraction of a cent, so 0 would stop every call and more than "
                             f"${MAX_COST_PER_PHOTO_USD} is surely a typo. Leave it empty for no limit.")
        return value

    @field_validator("daily_budget_usd", "monthly_budget_usd")
    @classmethod
    def _budget_range(cls, value: Decimal | None, info: Any) -> Decimal | None:
        what = info.field_name.split("_")[0]
        _at_least_a_micro(value, f"{what} budget")
        if value is not None and value < 0:
            raise ValueError(f"The {what} budget ${value} is negative: a budget is what may be spent, at least $0 "
                             "($0 pauses processing). Leave it empty for no budget.")
        if value is not None and value > MAX_BUDGET_USD:
            raise ValueError(f"The {what} budget ${value} is above ${MAX_BUDGET_USD:,}: surely a typo. "
                             "Leave it empty for no budget.")
        return value

    @field_validator("max_retries", "worker_concurrency")
    @classmethod
    def _count_range(cls, value: int, info: Any) -> int:
        name, (lo, hi), why = _COUNTS[info.field_name]
        if not lo <= value <= hi:
            raise ValueError(f"{name} {value} is outside {lo}..{hi}: {why}")
        return value

    @field_validator("label_overrides", mode="before")
    @classmethod
    def _normalize_labels(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        if len(value) > MAX_OVERRIDES:
            raise ValueError(f"{len(value)} label overrides is more than {MAX_OVERRIDES}: each one is checked for "
                             "every tag; set the global thresholds instead.")
        out: dict[str, Any] = {}
        for raw, override in value.items():
            label = normalize_label(str(raw))
            if not label:
                raise ValueError("A label override has an empty label: name the label it applies to.")
            if len(label) > MAX_LABEL_CHARS:
                raise ValueError(f"The override label '{label[:40]}...' is longer than {MAX_LABEL_CHARS} "
                                 "characters, the longest label a tag can have.")
            if label in out:
                raise ValueError(f"The label '{label}' has two overrides (labels compare lower-case): keep one.")
            out[label] = override
        return out

    @model_validator(mode="after")
    def _consistent(self) -> RulesConfig:
        if self.reject_threshold > self.accept_threshold:
            raise ValueError(f"The accept threshold {self.accept_threshold:g} is below the reject threshold "
                             f"{self.reject_threshold:g}: a tag can't be both accepted and rejected. Tags between "
                             "the two go to review, so the accept threshold must be the higher one.")
        for label, o in self.label_overrides.items():
            if o.accept is None and o.reject is None:
                raise ValueError(f"The override for '{label}' sets neither threshold: set accept, reject or both, "
                                 "or remove the row.")
            a, r = self.thresholds(label)
            if r > a:
                raise ValueError(f"For label '{label}' the accept threshold {a:g} is below the reject threshold "
                                 f"{r:g}: a tag can't be both accepted and rejected.")
        if (self.daily_budget_usd is not None and self.monthly_budget_usd is not None
                and self.daily_budget_usd > self.monthly_budget_usd):
            raise ValueError(f"The daily budget ${self.daily_budget_usd} is above the monthly budget "
                             f"${self.monthly_budget_usd}: the monthly one would always stop processing first. "
                             "Lower the daily budget or raise the monthly one.")
        return self

    def thresholds(self, label: str) -> tuple[float, float]:
        """(accept, reject) that apply to `label`."""
        o = self.label_overrides.get(normalize_label(label))
        accept, reject = resolve_thresholds(self.accept_threshold, self.reject_threshold,
                                            None if o is None else o.model_dump())
        return float(accept), float(reject)

    def rule_set(self) -> RuleSet:
        """The worker's rules for these settings (what a tag's verdict would be once saved)."""
        columns = self.to_columns()
        return RuleSet(accept_threshold=columns["accept_threshold"], reject_threshold=columns["reject_threshold"],
                       label_overrides=columns["label_overrides"])

    def to_columns(self) -> dict[str, Any]:
        """The pipeline_config column values (money in micro-dollars, overrides as rules.py reads them)."""

        def micros(usd: Decimal | None) -> int | None:
            return None if usd is None else usd_to_micros(usd)

        return {
            "accept_threshold": self.accept_threshold, "reject_threshold": self.reject_threshold,
            "label_overrides": {k: o.model_dump(exclude_none=True) for k, o in sorted(self.label_overrides.items())},
            "max_cost_per_photo_micros": micros(self.max_cost_per_photo_usd),
            "daily_budget_micros": micros(self.daily_budget_usd),
            "monthly_budget_micros": micros(self.monthly_budget_usd),
            "max_retries": self.max_retries, "worker_concurrency": self.worker_concurrency,
        }

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> RulesConfig:
        """The rules stored in pipeline_config column values (as `to_columns` writes them)."""

        def usd(micros: int | None) -> Decimal | None:
            return None if micros is None else micros_to_usd(micros).normalize()

        return cls(accept_threshold=columns["accept_threshold"], reject_threshold=columns["reject_threshold"],
                   label_overrides=dict(columns.get("label_overrides") or {}),
                   max_cost_per_photo_usd=usd(columns.get("max_cost_per_photo_micros")),
                   daily_budget_usd=usd(columns.get("daily_budget_micros")),
                   monthly_budget_usd=usd(columns.get("monthly_budget_micros")),
                   max_retries=columns["max_retries"], worker_concurrency=columns["worker_concurrency"])


def _validated(build: Any) -> RulesConfig:
    try:
        rules: RulesConfig = build()
        return rules
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            where = ".".join(str(p) for p in err.get("loc", ()))
            # Our own messages name the field; pydantic's type errors ("Input should be a valid number") don't.
            problems.append(msg if err.get("type") == "value_error" or not where else f"{where}: {msg}")
        raise ValidationFailed("The rules were not saved: " + " ".join(problems),
                               hint="Correct the values named above and save again.") from None


def parse_rules(data: Mapping[str, Any]) -> RulesConfig:
    """A RulesConfig from form values, or ValidationFailed listing every problem (nothing is saved)."""
    return _validated(lambda: RulesConfig.model_validate(dict(data)))


def rules_from_columns(columns: Mapping[str, Any]) -> RulesConfig:
    """A RulesConfig from pipeline_config column values, or ValidationFailed listing every problem."""
    return _validated(lambda: RulesConfig.from_columns(columns))


def overrides_from_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Label overrides from editor rows ({label, accept, reject}); blank rows are dropped, blanks (NaN) are None."""

    def number(value: Any) -> float | None:
        # Empty editor cells arrive as None, NaN or pandas' NA (whose truth value raises); only real numbers count.
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return None if math.isnan(value) else float(value)
        if isinstance(value, str) and value.strip():
            try:
                return float(value)
            except ValueError:
                raise ValidationFailed(f"The threshold '{value}' is not a number.",
                                       hint="Use a confidence between 0 and 1, e.g. 0.9.") from None
        return None

    out: dict[str, dict[str, float | None]] = {}
    for row in rows:
        raw = row.get("label")
        label = raw.strip() if isinstance(raw, str) else ""
        accept, reject = number(row.get("accept")), number(row.get("reject"))
        if not label and accept is None and reject is None:
            continue
        if label in out:
            raise ValidationFailed(f"The label '{label}' has two override rows.", hint="Keep one of them.")
        out[label] = {"accept": accept, "reject": reject}
    return out


def column_state(cfg: PipelineConfig) -> dict[str, Any]:
    """The rule columns of a pipeline_config row, as audit entries store them."""
    return {c: getattr(cfg, c) for c in RULE_COLUMNS}


def current_rules(cfg: PipelineConfig | None) -> RulesConfig:
    """The rules of a pipeline_config row (defaults when the org has none yet)."""
    return RulesConfig() if cfg is None else RulesConfig.from_columns(column_state(cfg))


def save_rules(actor: Actor, *, rules: RulesConfig, expected_version: int) -> int:
    """Save new rules (pipeline.configure) from the version the form showed; returns the config's new version."""
    actor.require("pipeline.configure")
    with org_session(actor.organization_id) as s:
        cfg = config_row.lock_at_version(s, actor.organization_id, expected_version=expected_version)
        before, after = column_state(cfg), rules.to_columns()
        changed = {k for k in RULE_COLUMNS if before[k] != after[k]}
        if not changed:
            return cfg.version
        for key in changed:
            setattr(cfg, key, after[key])
        config_row.stamp(cfg, by=actor.user_id, now=utcnow())
        # The audit log redacts keys that look like credentials, so an override for a label such as "token"
        # is not kept there and a revert could not restore it.
        labels = {*before["label_overrides"], *after["label_overrides"]} if "label_overrides" in changed else set()
        audit.record(s, actor=actor, action="rules.update", entity_type="pipeline_config",
                     entity_id=str(actor.organization_id), before={k: before[k] for k in sorted(changed)},
                     after={k: after[k] for k in sorted(changed)},
                     summary="Changed processing rules: " + ", ".join(sorted(changed)),
                     reversible=not any(audit.is_secret_key(label) for label in labels))
        return cfg.version
