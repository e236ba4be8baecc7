"""Processing rules: each tag's verdict from its confidence, and the photo's status from its tags' verdicts.

confidence >= accept -> accepted; confidence < reject -> rejected; in between -> needs_review. A label
override replaces either threshold for that one label (labels compare stripped and lower-cased).

The rule is written once, as data (`TAG_RULE`): `RuleSet.verdict` applies it to a tag in Python (the
worker), `verdict_sql` builds the same rule as a SQL CASE over tag columns (the rules page's impact preview).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, SQLColumnExpression, case, literal
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.errors import ConfigError

Verdict = Literal["accepted", "needs_review", "rejected"]
PhotoStatus = Literal["completed", "needs_review"]

DEFAULT_ACCEPT = 0.8
DEFAULT_REJECT = 0.4
ACCEPT, REJECT = 0, 1  # positions in a (accept, reject) thresholds pair
# The tag rule: the first (verdict, test, threshold) whose test(confidence, threshold) holds decides; when
# none holds the tag needs review. The tests work on Python floats and SQL expressions alike.
TAG_RULE: tuple[tuple[Verdict, Callable[[Any, Any], Any], int], ...] = (
    ("accepted", operator.ge, ACCEPT),
    ("rejected", operator.lt, REJECT),
)
OTHERWISE: Verdict = "needs_review"


def normalize_label(label: str) -> str:
    """A label as tags store it: stripped, lower-case."""
    return label.strip().lower()


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """Shared labels over all labels of two label sets (Jaccard similarity); two empty sets are identical (1.0).
    The one definition for every comparison of two answers (the prompt test, provider disagreement)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def resolve_thresholds(accept: Any, reject: Any, override: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """(accept, reject) for one label: its override's where it sets one (not None), else the global ones."""
    o = override or {}
    return (accept if o.get("accept") is None else o["accept"], reject if o.get("reject") is None else o["reject"])


def _threshold(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"The {what} threshold {value!r} is not a number.",
                          hint="Use a confidence between 0 and 1, e.g. 0.8.") from None
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"The {what} threshold {number} is outside 0..1.",
                          hint="Confidences run from 0 to 1; use e.g. 0.8 to accept and 0.4 to reject.")
    return number


@dataclass(frozen=True)
class RuleSet:
    """Accept/reject thresholds with per-label overrides ({label: {"accept": x, "reject": y}})."""

    accept_threshold: float = DEFAULT_ACCEPT
    reject_threshold: float = DEFAULT_REJECT
    label_overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    _resolved: dict[str, tuple[float, float]] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        accept = _threshold(self.accept_threshold, "accept")
        reject = _threshold(self.reject_threshold, "reject")
        if reject > accept:
            raise ConfigError(f"The reject threshold {reject} is above the accept threshold {accept}.",
                              hint="Tags between the two go to review; the reject threshold must be the lower.")
        resolved: dict[str, tuple[float, float]] = {}
        for label, override in (self.label_overrides or {}).items():
            if not isinstance(override, Mapping):
                raise ConfigError(f"The override for label {label!r} is not a mapping.",
                                  hint='Write it as {"accept": 0.9, "reject": 0.5} (either key may be left out).')
            unknown = set(override) - {"accept", "reject"}
            if unknown:
                raise ConfigError(f"The override for label {label!r} has unknown keys {sorted(unknown)}.",
                                  hint='Only "accept" and "reject" can be overridden per label.')
            raw_a, raw_r = resolve_thresholds(accept, reject, override)
            a, r = _threshold(raw_a, f"accept ({label})"), _threshold(raw_r, f"reject ({label})")
            if r > a:
                raise ConfigError(f"For label {label!r} the reject threshold {r} is above the accept threshold {a}.",
                                  hint="Lower its reject threshold or raise its accept threshold.")
            resolved[normalize_label(label)] = (a, r)
        object.__setattr__(self, "accept_threshold", accept)
        object.__setattr__(self, "reject_threshold", reject)
        object.__setattr__(self, "_resolved", resolved)

    def thresholds(self, label: str) -> tuple[float, float]:
        """(accept, reject) that apply to `label`."""
        return self._resolved.get(normalize_label(label), (self.accept_threshold, self.reject_threshold))

    @property
    def overrides(self) -> Mapping[str, tuple[float, float]]:
        """Per label with an override (normalized), the (accept, reject) it resolves to."""
        return dict(self._resolved)

    def verdict(self, label: str, confidence: float) -> Verdict:
        """The tag's verdict by TAG_RULE: accepted, needs_review or rejected."""
        thresholds = self.thresholds(label)
        for verdict, test, which in TAG_RULE:
            if test(confidence, thresholds[which]):
                return verdict
        return OTHERWISE

    def photo_status(self, verdicts: Iterable[str]) -> PhotoStatus:
        """needs_review when any tag needs review, otherwise completed (also with no tags)."""
        return "needs_review" if any(v == "needs_review" for v in verdicts) else "completed"

    @classmethod
    def from_config(cls, config: PipelineConfig | None) -> RuleSet:
        """The rules of a pipeline_config row (defaults when the org has none yet)."""
        if config is None:
            return cls()
        return cls(accept_threshold=config.accept_threshold, reject_threshold=config.reject_threshold,
                   label_overrides=dict(config.label_overrides or {}))


def verdict_sql(rules: RuleSet, label: SQLColumnExpression[str],
                confidence: SQLColumnExpression[float]) -> ColumnElement[str]:
    """`rules.verdict` as a SQL CASE over a tag's label and confidence columns (labels as tags store them)."""

    def threshold(which: int) -> ColumnElement[Any]:
        default: ColumnElement[Any] = literal((rules.accept_threshold, rules.reject_threshold)[which])
        overrides = rules.overrides
        if not overrides:
            return default
        return case(*[(label == name, literal(pair[which])) for name, pair in overrides.items()], else_=default)

    return case(*[(test(confidence, threshold(which)), literal(verdict)) for verdict, test, which in TAG_RULE],
                else_=literal(OTHERWISE))


def load_rules(session: Session, organization_id: int) -> RuleSet:
    """The organization's current rules from pipeline_config."""
    return RuleSet.from_config(session.get(PipelineConfig, organization_id))
