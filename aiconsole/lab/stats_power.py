"""Power calculator: units (photos) per variant to detect a minimum detectable effect, and days to reach them.

Fixed-horizon two-sided z approximation with equal allocation:

    n per variant = (z_{1-alpha/2} + z_{power})**2 (var_a + var_b') / delta**2

where delta is the absolute effect (a relative MDE times the control mean) and var_b' the treatment's
per-unit variance at the lifted mean (p(1-p) for a proportion; the control's variance for a mean).
Days = variants x n / photos per day arriving into the experiment, rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy import special

from aiconsole.platform.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class PowerPlan:
    """Photos per variant, in total, and days to reach them at the arrival rate (None when no rate given)."""

    per_variant: int
    total: int
    days: int | None


def _check(mde: float, alpha: float, power: float) -> None:
    if mde == 0:
        raise ValidationFailed("The minimum detectable effect must not be 0.")
    if not 0 < alpha < 1:
        raise ValidationFailed("alpha must be between 0 and 1 (e.g. 0.05).")
    if not 0 < power < 1:
        raise ValidationFailed("power must be between 0 and 1 (e.g. 0.8).")


def sample_size(*, metric_type: Literal["proportion", "mean"], baseline_mean: float, mde: float,
                difference: Literal["relative", "absolute"] = "relative", baseline_variance: float | None = None,
                alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant for the two-sided test to find `mde` with probability `power`."""
    _check(mde, alpha, power)
    delta = mde * baseline_mean if difference == "relative" else mde
    if delta == 0:
        raise ValidationFailed("A relative effect of a zero baseline mean is 0; give the effect as absolute.")
    lifted = baseline_mean + delta
    if metric_type == "proportion":
        if not 0 < baseline_mean < 1 or not 0 < lifted < 1:
            raise ValidationFailed("A proportion's baseline and lifted rate must lie between 0 and 1.")
        var_a, var_b = baseline_mean * (1 - baseline_mean), lifted * (1 - lifted)
    else:
        if baseline_variance is None or baseline_variance <= 0:
            raise ValidationFailed("A mean metric needs its per-photo variance (baseline_variance > 0).")
        var_a = var_b = baseline_variance
    z = float(special.ndtri(1 - alpha / 2)) + float(special.ndtri(power))
    return math.ceil(z * z * (var_a + var_b) / (delta * delta))


def days_to_reach(*, per_variant: int, variants: int, photos_per_day: float) -> int:
    """Whole days until every variant has `per_variant` photos at the experiment's arrival rate."""
    if photos_per_day <= 0:
        raise ValidationFailed("No photos are arriving (0 per day), so the experiment would never finish.")
    return max(1, math.ceil(per_variant * variants / photos_per_day))


def plan(*, metric_type: Literal["proportion", "mean"], baseline_mean: float, mde: float,
         difference: Literal["relative", "absolute"] = "relative", baseline_variance: float | None = None,
         alpha: float = 0.05, power: float = 0.8, variants: int = 2,
         photos_per_day: float | None = None) -> PowerPlan:
    """The power calculator: photos per variant and in total, and days at `photos_per_day`."""
    n = sample_size(metric_type=metric_type, baseline_mean=baseline_mean, mde=mde, difference=difference,
                    baseline_variance=baseline_variance, alpha=alpha, power=power)
    days = None if photos_per_day is None else days_to_reach(per_variant=n, variants=variants,
                                                             photos_per_day=photos_per_day)
    return PowerPlan(per_variant=n, total=n * variants, days=days)
