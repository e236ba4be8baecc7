"""Calibration from review decisions: how well the AI's confidences match how often its tags are right, per
provider/model and per label, and for each label the lowest accept threshold that reaches a target precision.

SQL sums the decisions per confidence bin (`review_sql.bin_sql`; a tag is right as `review_sql.CORRECT`
says); `stats` turns the sums into reliability bins, the expected calibration error, Wilson intervals and
the threshold. Thresholds are candidates every 1/FINE_BINS (the rules form's step): a threshold at a bin's
lower edge takes every reviewed tag of that bin and above. The review load a threshold causes is counted on
the label's AI tags of the window (by the AI's label): whole UTC days from the tag rollup (`tag_rollup`, the
tag rule's band as counts at or above its thresholds), the partial days with the tag rule itself in SQL
(`pipeline.rules.verdict_sql`).

By default only random-order reviews count: above the current accept threshold the other orders see almost
no tags, so their precision at a lower threshold would be measured on the uncertain tags alone.
`propose_threshold` applies a threshold as the label's override through the Pipeline rules' own save.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aiconsole.control import public as control
from aiconsole.pipeline.rules import RuleSet, load_rules, normalize_label, verdict_sql
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import decision_rollup, tag_rollup
from aiconsole.quality.analytics import cached_view
from aiconsole.quality.review_sql import (
    DEFAULT_DAYS,
    NO_RANDOM_REVIEWS,
    SAMPLE_NOTES,
    Scope,
    flag,
    read_session,
    scope,
)
from aiconsole.quality.stats import (
    DEFAULT_BINS,
    ReliabilityBin,
    ThresholdProposal,
    expected_calibration_error,
    reliability_from_sums,
    threshold_for_precision,
)

FINE_BINS = decision_rollup.FINE_BINS
DEFAULT_TARGET = 0.95
MIN_SUPPORT = 20
MAX_LABELS = 100
Sums = dict[int, tuple[int, float, int]]  # bin -> (count, sum of confidence, correct)


@dataclass(frozen=True)
class Calibration:
    """One group's decided AI tags: how many (and right), reliability bins and the ECE (None: no tags)."""

    decided: int
    correct: int
    bins: tuple[ReliabilityBin, ...]
    ece: float | None


@dataclass(frozen=True)
class ModelCalibration:
    provider: str | None
    model: str | None
    calibration: Calibration


@dataclass(frozen=True)
class LabelCalibration:
    """One label: its calibration, the thresholds in force, and the proposal for the target (or why none)."""

    label: str
    calibration: Calibration
    accept_now: float
    reject: float
    proposal: ThresholdProposal | None
    why_none: str | None

    @property
    def summary(self) -> str:
        """"label 'cat': accept at 0.83 -> precision 95.1% +- 1.2, review load -31%" (or why there is none)."""
        p = self.proposal
        if p is None:
            return f"label '{self.label}': {self.why_none}"
        load = "review load —" if p.review_load_change is None else f"review load {p.review_load_change:+.0%}"
        text = (f"label '{self.label}': accept at {p.threshold:.2f} -> precision {fmt.pct(p.precision.estimate)} "
                f"+- {p.precision.half_width * 100:.1f}, {load}")
        return text + (f" (below its reject threshold {self.reject:g})" if p.below_reject else "")


@dataclass(frozen=True)
class CalibrationReport:
    days: int
    since: datetime
    until: datetime
    sample: str
    note: str
    target: float
    n_bins: int
    provider: str | None
    model: str | None
    rules_version: int  # the settings version the proposals were computed on (a proposal saves only onto it)
    models: tuple[ModelCalibration, ...]
    labels: tuple[LabelCalibration, ...]


def _check_bins(n_bins: int) -> int:
    if n_bins < 1 or FINE_BINS % n_bins:
        raise ValidationFailed(f"{n_bins} bins do not divide the {FINE_BINS} bins decisions are summed in.",
                               hint="Use 5, 10 or 20 bins (any divisor of 100).")
    return n_bins


def _calibration(sums: Sums, n_bins: int) -> Calibration:
    """Reliability in `n_bins` bins from sums in FINE_BINS bins: the same edges, since k/100 and j/10 of one
    rational are one float."""
    coarse = np.zeros((3, n_bins))
    for b, (n, conf, ok) in sums.items():
        coarse[:, b * n_bins // FINE_BINS] += (n, conf, ok)
    bins = reliability_from_sums([int(c) for c in coarse[0]], coarse[1].tolist(), coarse[2].tolist())
    return Calibration(int(coarse[0].sum()), int(coarse[2].sum()), tuple(bins), expected_calibration_error(bins))


def _sums(s: Session, sc: Scope, *, sample: str, group: list[str], provider: str | None = None,
          model: str | None = None) -> dict[tuple[Any, ...], Sums]:
    """Decided AI tags per group and FINE_BINS bin: count, sum of confidence, right ones (the decision rollup)."""
    out: dict[tuple[Any, ...], Sums] = defaultdict(dict)
    for (*key, b), v in decision_rollup.decision_sums(s, sc, group=[*group, "conf_bin"], sample=sample,
                                                      provider=provider, model=model).items():
        out[tuple(key)][b] = (v.n, v.conf_sum, v.correct)
    return dict(out)


def _threshold(sums: Sums, *, target: float, accept: float, reject: float,
               by: Literal["estimate", "lower_bound"], min_support: int) -> ThresholdProposal | None:
    """stats' rule on the bins: each bin's tags stand at its lower edge, the threshold that takes them all."""
    order = sorted(sums)
    counts = np.array([sums[b][0] for b in order])
    confidences = np.repeat([b / FINE_BINS for b in order], counts)
    correct = [i < sums[b][2] for b, n in zip(order, counts, strict=True) for i in range(n)]
    return threshold_for_precision(confidences.tolist(), correct, target=target,
                                   current_accept=accept, reject=reject, by=by, min_support=min_support)


def _why_none(cal: Calibration, *, sample: str, target: float, min_support: int) -> str:
    if cal.decided == 0:
        return NO_RANDOM_REVIEWS if sample == "random" else "no reviewed tags yet."
    if cal.decided < min_support:
        which = "random-sample decision" if sample == "random" else "decision"
        return f"only {fmt.plural(cal.decided, which)}; a threshold needs at least {min_support}."
    return f"no threshold reaches {fmt.pct(target)} precision ({fmt.plural(cal.decided, 'decision')})."


def _review_load(s: Session, sc: Scope, rules: RuleSet, proposals: dict[str, ThresholdProposal],
                 ) -> dict[str, ThresholdProposal]:
    """The proposals with the review shares of every AI tag of their label in the window, now and after: whole
    UTC days from the tag rollup, the partial days at either end from the tags."""
    if not proposals:
        return {}
    overrides: dict[str, dict[str, float]] = {k: dict(v) for k, v in rules.label_overrides.items()}
    for name, p in proposals.items():
        reject = rules.thresholds(name)[1]
        overrides[normalize_label(name)] = {"accept": max(p.threshold, reject), "reject": reject}
    after = RuleSet(rules.accept_threshold, rules.reject_threshold, overrides)
    # A tag needs review when not accept <= confidence and not confidence < reject: of those >= reject, the
    # ones below max(accept, reject).
    bands = {name: (rules.thresholds(name)[1], max(rules.thresholds(name))) for name in proposals}
    bands_after = {name: (after.thresholds(name)[1], max(after.thresholds(name))) for name in proposals}
    totals = {name: [0, 0, 0] for name in proposals}  # tags, in review now, in review after
    window = tag_rollup.split(sc.since, sc.now)
    if window.whole is not None:
        counted = tag_rollup.at_least(s, organization_id=sc.organization_id, days=window.whole, thresholds={
            name: (*bands[name], *bands_after[name]) for name in proposals})
        for name, c in counted.items():
            (lo, hi), (lo2, hi2) = bands[name], bands_after[name]
            totals[name] = [c.total, c.at_least[lo] - c.at_least[hi], c.at_least[lo2] - c.at_least[hi2]]
    if window.raw:
        t = tag_rollup.AI_TAGS.c
        label, conf = t.ai_label, t.confidence
        rows = s.execute(select(label, func.count(), func.sum(flag(verdict_sql(rules, label, conf) == "needs_review")),
                                func.sum(flag(verdict_sql(after, label, conf) == "needs_review")))
                         .where(t.organization_id == sc.organization_id, t.ai_label.in_(list(proposals)),
                                tag_rollup.in_pieces(t.created_at, window.raw))
                         .group_by(label))
        for name, n, now_n, after_n in rows:
            for i, v in enumerate((n, now_n, after_n)):
                totals[name][i] += int(v or 0)
    # A label with no AI tags in the window (only older ones reviewed) has no review load to change.
    out = {}
    for name, p in proposals.items():
        n, now_n, after_n = totals[name]
        if not n:
            out[name] = replace(p, review_share_now=None, review_share_after=None, review_load_change=None)
            continue
        now, later = now_n / n, after_n / n
        out[name] = replace(p, review_share_now=now, review_share_after=later,
                            review_load_change=(later - now) / now if now else None)
    return out


def calibration(actor: Actor, *, days: int = DEFAULT_DAYS, target: float = DEFAULT_TARGET, sample: str = "random",
                n_bins: int = DEFAULT_BINS, provider: str | None = None, model: str | None = None,
                by: Literal["estimate", "lower_bound"] = "estimate", min_support: int = MIN_SUPPORT,
                max_labels: int = MAX_LABELS, now: datetime | None = None,
                settings: Settings | None = None) -> CalibrationReport:
    """Calibration per provider/model and per label (the labels' decisions from `provider` / `model` only, when
    given) with each label's threshold proposal for `target` precision (quality.view)."""
    actor.require("quality.view")
    _check_bins(n_bins)
    if not 0.0 < target <= 1.0:
        raise ValidationFailed(f"The target precision {target} is outside 0..1.", hint="Use e.g. 0.95.")
    org = actor.organization_id
    with read_session(org, settings=settings) as s:
        sc = scope(s, organization_id=org, days=days, now=now)
        rules = load_rules(s, org)
        cfg = s.get(PipelineConfig, org)
        models = _sums(s, sc, sample=sample, group=["ai_provider", "model"])
        every = {k[0]: v for k, v in _sums(s, sc, sample=sample, group=["label"], provider=provider,
                                            model=model).items()}
        # The most decided labels, as many as the report shows.
        top = sorted(every, key=lambda label: (-sum(n for n, _, _ in every[label].values()), label))[:max_labels]
        labels = {label: every[label] for label in top}
        proposals: dict[str, ThresholdProposal] = {}
        for label, sums in labels.items():
            accept, reject = rules.thresholds(label)
            found = _threshold(sums, target=target, accept=accept, reject=reject, by=by, min_support=min_support)
            if found is not None:
                proposals[label] = found
        proposals = _review_load(s, sc, rules, proposals)
    by_model = tuple(ModelCalibration(p or None, m or None, _calibration(sums, n_bins))
                     for (p, m), sums in sorted(models.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))))
    by_label = []
    for label, sums in labels.items():
        cal = _calibration(sums, n_bins)
        accept, reject = rules.thresholds(label)
        proposal = proposals.get(label)
        by_label.append(LabelCalibration(label, cal, accept, reject, proposal, None if proposal else _why_none(
            cal, sample=sample, target=target, min_support=min_support)))
    by_label.sort(key=lambda c: (-c.calibration.decided, c.label))
    return CalibrationReport(days, sc.since, sc.now, sample, SAMPLE_NOTES[sample], target, n_bins, provider, model,
                             0 if cfg is None else cfg.version, by_model, tuple(by_label))


def cached_calibration(actor: Actor, *, days: int = DEFAULT_DAYS, target: float = DEFAULT_TARGET,
                       provider: str | None = None, model: str | None = None,
                       settings: Settings | None = None) -> CalibrationReport:
    """`calibration` (random sample) through the Analytics tab's cache."""
    return cached_view(actor, "calibration", (days, target, provider, model), lambda: calibration(
        actor, days=days, target=target, provider=provider, model=model, settings=settings), settings=settings)


@dataclass(frozen=True)
class ProposalOutcome:
    """What `propose_threshold` saved: the message people read and the settings version it made."""

    message: str
    label: str
    accept: float
    version: int


def propose_threshold(actor: Actor, *, label: str, accept: float,
                      expected_version: int | None = None) -> ProposalOutcome:
    """Make `accept` the label's accept threshold as a per-label override, through the Pipeline rules' save
    (pipeline.configure; validated, version-checked against `expected_version`, audited, revertible)."""
    actor.require("pipeline.configure")
    name = normalize_label(label)
    version = control.set_label_accept(actor, label=name, accept=accept, expected_version=expected_version)
    if expected_version is not None and version == expected_version:
        return ProposalOutcome(f"Label '{name}' already accepts at {accept:.2f}; nothing changed.", name, accept,
                               version)
    return ProposalOutcome(f"Label '{name}' now accepts at {accept:.2f} (settings version {version}). Undo it "
                           "with Revert in the audit log.", name, accept, version)
