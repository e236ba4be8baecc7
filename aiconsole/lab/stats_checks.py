"""Checks around an experiment's result: sample ratio mismatch (SRM) and Holm's adjustment across guardrails.

SRM is gbstats' check_srm: Pearson's chi-square of the observed units per variant against the planned
split (weights), df = variants - 1; GrowthBook warns when p < 0.001 (the assignment or the logging is
broken, and the result should not be trusted). Holm's step-down adjustment controls the family-wise error
across several guardrail metrics; adjusted p-values are monotone and capped at 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from aiconsole.platform.errors import ValidationFailed

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SrmCheck:
    """The chi-square p-value of the observed split and whether it is a mismatch (p < threshold)."""

    p_value: float
    mismatch: bool


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-square p-value of `counts` against the split `weights` (1.0 when nothing was observed)."""
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValidationFailed("SRM needs one planned weight per variant and at least two variants.")
    if any(c < 0 for c in counts) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValidationFailed("SRM counts and weights must be non-negative, with some weight.")
    total = sum(counts)
    if not total:
        return 1.0
    total_weight = sum(weights)
    x2 = 0.0
    for observed, weight in zip(counts, weights, strict=True):
        if weight <= 0:
            continue
        expected = weight / total_weight * total
        x2 += (observed - expected) ** 2 / expected
    return float(stats.chi2.sf(x2, len(counts) - 1))


def srm(counts: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD) -> SrmCheck:
    """The SRM check of the observed units per variant against the planned split."""
    p = srm_p_value(counts, weights)
    return SrmCheck(p_value=p, mismatch=p < threshold)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order (as statsmodels' multipletests(method='holm'))."""
    m = len(p_values)
    if any(not 0 <= p <= 1 for p in p_values):
        raise ValidationFailed("Holm's adjustment needs p-values between 0 and 1.")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def holm_rejects(p_values: Sequence[float], *, alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's procedure rejects at family-wise level `alpha`."""
    return [p <= alpha for p in holm(p_values)]
