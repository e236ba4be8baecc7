"""Per-variant mean and unit variance from summary statistics, and the delta-method effect between variants.

As gbstats computes them: a proportion's variance is p(1-p); a mean's is the sample variance
(sum_squares - sum**2/n) / (n-1); a ratio M/D (e.g. cost per accepted tag) uses the delta method,
var(M)/mu_D**2 - 2 cov(M,D) mu_M/mu_D**3 + mu_M**2 var(D)/mu_D**4, with cov from the cross-product sum.
The effect's variance is var_b/n_b + var_a/n_a (absolute) or, relative, the delta method's
var_b/(mu_a**2 n_b) + var_a mu_b**2/(mu_a**4 n_a).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiconsole.lab.stats_models import Comparison, MetricType, VariantSummary


@dataclass(frozen=True, slots=True)
class Moments:
    """A variant's unit count, mean and per-unit variance."""

    n: int
    mean: float
    variance: float


@dataclass(frozen=True, slots=True)
class Effect:
    """The treatment-minus-control effect, its variance (of the estimate) and the moments it came from."""

    estimate: float
    variance: float
    control: Moments
    treatment: Moments


def _sample_variance(n: int, total: float, squares: float) -> float:
    return 0.0 if n <= 1 else (squares - total * total / n) / (n - 1)


def moments(v: VariantSummary, metric_type: MetricType) -> Moments:
    """The mean and per-unit variance of one variant."""
    n = v.n
    if metric_type == "proportion":
        p = v.sum / n if n else 0.0
        return Moments(n, p, p * (1 - p))
    assert v.sum_squares is not None
    if metric_type == "mean":
        return Moments(n, v.sum / n if n else 0.0, _sample_variance(n, v.sum, v.sum_squares))
    assert v.denominator_sum is not None and v.denominator_sum_squares is not None and v.sum_products is not None
    mean = v.sum / v.denominator_sum if v.denominator_sum else 0.0
    mu_m = v.sum / n if n else 0.0
    mu_d = v.denominator_sum / n if n else 0.0
    if mu_d == 0 or n <= 1:
        return Moments(n, mean, 0.0)
    var_m = _sample_variance(n, v.sum, v.sum_squares)
    var_d = _sample_variance(n, v.denominator_sum, v.denominator_sum_squares)
    cov = (v.sum_products - v.sum * v.denominator_sum / n) / (n - 1)
    variance = var_m / mu_d**2 - 2 * cov * mu_m / mu_d**3 + mu_m**2 * var_d / mu_d**4
    return Moments(n, mean, variance)


def effect_variance(a: Moments, b: Moments, *, relative: bool) -> float:
    """The variance of the effect estimate (delta method when relative)."""
    if relative:
        return b.variance / (a.mean**2 * b.n) + a.variance * b.mean**2 / (a.mean**4 * a.n)
    return b.variance / b.n + a.variance / a.n


def effect(comparison: Comparison) -> Effect:
    """The effect of `comparison` (no checks: see `unusable`)."""
    a = moments(comparison.control, comparison.metric_type)
    b = moments(comparison.treatment, comparison.metric_type)
    relative = comparison.difference == "relative"
    estimate = (b.mean - a.mean) / a.mean if relative else b.mean - a.mean
    return Effect(estimate, effect_variance(a, b, relative=relative), a, b)


def unusable(comparison: Comparison) -> str | None:
    """Why the comparison cannot be analysed yet (GrowthBook's guards), or None."""
    a = moments(comparison.control, comparison.metric_type)
    b = moments(comparison.treatment, comparison.metric_type)
    if a.n == 0 or b.n == 0:
        return "A variant has no units yet; wait until both have some."
    if comparison.difference == "relative" and a.mean == 0:
        return "The control's mean is 0, so a relative effect is undefined; use the absolute difference."
    if a.variance <= 0 or b.variance <= 0:
        return "A variant's metric has no variance yet (every unit has the same value); wait for more units."
    return None
