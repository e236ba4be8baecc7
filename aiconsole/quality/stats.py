"""Quality statistics, pure functions (no database): Wilson intervals, reviewer agreement (Cohen's kappa,
percent agreement), reliability diagrams with the expected calibration error, and the accept threshold that
reaches a target precision with its interval and the review load it causes.

Analytics aggregate in SQL and hand these functions counts or sums (`wilson_interval`, `reliability_from_sums`);
the sequence forms exist for small inputs and for the known-answer tests against statsmodels and scikit-learn.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

from aiconsole.platform.errors import ValidationFailed

DEFAULT_BINS = 10


@dataclass(frozen=True)
class Interval:
    """A proportion's point estimate and its confidence interval, all in 0..1."""

    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """Half the interval's width: the "+-" a person reads (Wilson intervals are not symmetric)."""
        return (self.high - self.low) / 2


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValidationFailed(f"The confidence level {level} is outside 0..1 (exclusive).",
                               hint="Use e.g. 0.95 for a 95% interval.")
    return float(norm.ppf(1 - (1 - level) / 2))


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> Interval | None:
    """The Wilson score interval of successes/n at `level`; None when there is nothing to estimate (n = 0).

    Unlike the normal approximation it stays inside 0..1 and is not zero-width at 0/n or n/n.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValidationFailed(f"{successes} successes out of {n} is not a proportion.",
                               hint="Successes must be between 0 and the number of trials.")
    if n == 0:
        return None
    z = _check_level(level)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    spread = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    # At 0/n and n/n one end is exactly 0 or 1; rounding would otherwise put it a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - spread)
    high = 1.0 if successes == n else min(1.0, centre + spread)
    return Interval(estimate=p, low=low, high=high)


@dataclass(frozen=True)
class Agreement:
    """How two raters' answers on the same items agree: observed, expected by chance, and Cohen's kappa.

    `kappa` is None when chance agreement is already perfect (both raters gave one and the same answer to
    everything): kappa is undefined there, whatever the observed agreement.
    """

    n: int
    observed: float
    expected: float
    kappa: float | None


def agreement(first: Sequence[Hashable], second: Sequence[Hashable]) -> Agreement | None:
    """Percent agreement and Cohen's (unweighted) kappa of two raters' paired answers; None for no items."""
    if len(first) != len(second):
        raise ValidationFailed(f"The raters answered {len(first)} and {len(second)} items; kappa needs pairs.",
                               hint="Pass the two raters' answers for the same items in the same order.")
    n = len(first)
    if n == 0:
        return None
    observed = sum(1 for a, b in zip(first, second, strict=True) if a == b) / n
    counts_a, counts_b = Counter(first), Counter(second)
    expected = sum(counts_a[k] * counts_b.get(k, 0) for k in counts_a) / (n * n)
    kappa = None if math.isclose(expected, 1.0) else (observed - expected) / (1 - expected)
    return Agreement(n=n, observed=observed, expected=expected, kappa=kappa)


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram: [low, high) (the last bin includes 1.0)."""

    index: int
    low: float
    high: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def bin_index(confidence: float, n_bins: int = DEFAULT_BINS) -> int:
    """The bin a confidence falls in: floor(confidence x n_bins), with 1.0 in the top bin.

    The same rule as `floor(confidence * n)` in SQL, and the same side as the tag rule (a confidence equal
    to a bin's lower edge belongs to that bin, as a confidence equal to the accept threshold is accepted).
    """
    return min(int(confidence * n_bins), n_bins - 1)


def _check_bins(n_bins: int) -> None:
    if not 1 <= n_bins <= 1000:
        raise ValidationFailed(f"{n_bins} bins is not a usable reliability diagram.",
                               hint="Use between 1 and 1000 bins; 10 is usual.")


def reliability_from_sums(counts: Sequence[int], confidence_sums: Sequence[float],
                          correct_sums: Sequence[float]) -> list[ReliabilityBin]:
    """The reliability bins from per-bin counts, sums of confidence and counts of correct tags (as SQL
    aggregates them, bin i holding `bin_index(c) == i`)."""
    n_bins = len(counts)
    _check_bins(n_bins)
    if not len(confidence_sums) == len(correct_sums) == n_bins:
        raise ValidationFailed("The reliability sums do not have one value per bin.",
                               hint="Pass counts, confidence sums and correct counts of the same bins.")
    out = []
    for i, (count, conf, correct) in enumerate(zip(counts, confidence_sums, correct_sums, strict=True)):
        count = int(count)
        out.append(ReliabilityBin(index=i, low=i / n_bins, high=(i + 1) / n_bins, count=count,
                                  mean_confidence=float(conf) / count if count else None,
                                  accuracy=float(correct) / count if count else None))
    return out


def _scored(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Confidences (checked to lie in 0..1) and their right/wrong answers as arrays of one length."""
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise ValidationFailed("Every confidence needs one right/wrong answer.",
                               hint="Pass two sequences of the same length.")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0 or conf.max() > 1):
        raise ValidationFailed("A confidence is outside 0..1.", hint="Confidences run from 0 to 1.")
    return conf, ok


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool],
                     n_bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """A reliability diagram of tags' confidences against whether each was right, in `n_bins` equal bins."""
    _check_bins(n_bins)
    conf, ok = _scored(confidences, correct)
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return reliability_from_sums(np.bincount(idx, minlength=n_bins).tolist(),
                                 np.bincount(idx, weights=conf, minlength=n_bins).tolist(),
                                 np.bincount(idx, weights=ok.astype(float), minlength=n_bins).tolist())


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float | None:
    """ECE: the count-weighted mean of |accuracy - mean confidence| over the bins; None when they are empty."""
    total = sum(b.count for b in bins)
    if total == 0:
        return None
    return sum(b.count * abs(b.accuracy - b.mean_confidence) for b in bins
               if b.count and b.accuracy is not None and b.mean_confidence is not None) / total


def review_share(confidences: Sequence[float] | np.ndarray, *, accept: float, reject: float) -> float | None:
    """The share of tags the rules send to review: reject <= confidence < accept (None for no tags)."""
    conf = np.asarray(confidences, dtype=float)
    if conf.size == 0:
        return None
    return float(np.count_nonzero((conf >= reject) & (conf < accept)) / conf.size)


@dataclass(frozen=True)
class ThresholdProposal:
    """An accept threshold that reaches a target precision, and what it would do to the review load.

    `precision` is measured on the reviewed tags at or above `threshold` (`support` of them): unbiased only
    when those tags were a uniform random sample. `review_share_now` / `_after` are the shares of all tags
    the rules send to review with the current and the proposed accept threshold; `review_load_change` is
    the relative change (-0.31: a third fewer tags to review). `below_reject` says the threshold is under
    the reject threshold, which the rules refuse unless that is lowered too.
    """

    target: float
    threshold: float
    precision: Interval
    support: int
    review_share_now: float | None
    review_share_after: float | None
    review_load_change: float | None
    below_reject: bool


def threshold_for_precision(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    target: float,
    current_accept: float,
    reject: float,
    population: Sequence[float] | None = None,
    by: Literal["estimate", "lower_bound"] = "estimate",
    min_support: int = 20,
    level: float = 0.95,
) -> ThresholdProposal | None:
    """The lowest accept threshold whose reviewed tags at or above it reach `target` precision; None if none.

    Candidates are the reviewed confidences themselves. `by` = "estimate" compares the measured precision
    with the target, "lower_bound" the Wilson interval's lower end (stricter). A threshold needs at least
    `min_support` reviewed tags at or above it. The review load is computed over `population` (the
    confidences of every tag the threshold would apply to; default: the reviewed ones).
    """
    if not 0.0 < target <= 1.0:
        raise ValidationFailed(f"The target precision {target} is outside 0..1.",
                               hint="Use e.g. 0.95 for 95% precision.")
    if min_support < 1:
        raise ValidationFailed(f"min_support is {min_support}; it must be at least 1.")
    _check_level(level)
    conf, ok = _scored(confidences, correct)
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    chosen: tuple[float, Interval, int] | None = None
    # Walk the distinct confidences from the top down: the last one that qualifies is the lowest.
    for i in range(len(conf)):
        if i + 1 < len(conf) and conf[i + 1] == conf[i]:
            continue  # ties: a threshold takes every tag at its confidence
        n = i + 1
        if n < min_support:
            continue
        interval = wilson_interval(int(hits[i]), n, level=level)
        assert interval is not None
        measured = interval.estimate if by == "estimate" else interval.low
        if measured >= target:
            chosen = (float(conf[i]), interval, n)
    if chosen is None:
        return None
    threshold, interval, support = chosen
    pool = conf if population is None else np.asarray(population, dtype=float)
    now = review_share(pool, accept=current_accept, reject=reject)
    after = review_share(pool, accept=max(threshold, reject), reject=reject)
    change = None if not now or after is None else (after - now) / now
    return ThresholdProposal(target=target, threshold=threshold, precision=interval, support=support,
                             review_share_now=now, review_share_after=after, review_load_change=change,
                             below_reject=threshold < reject)
