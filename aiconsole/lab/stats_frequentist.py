"""Fixed-horizon frequentist test: two-sided Welch t-test with Welch-Satterthwaite degrees of freedom.

Exactly gbstats' TwoSidedTTest: t = estimate / sqrt(var), df from the per-unit variances,
p = 2 (1 - F_t(|t|; df)), ci = estimate +- F_t^-1(1 - alpha/2; df) sqrt(var). scipy.special's stdtr and
stdtrit are the functions scipy.stats.t's cdf and ppf evaluate, called directly for speed.
"""

from __future__ import annotations

import math

from scipy import special

from aiconsole.lab.stats_models import FrequentistResult
from aiconsole.lab.stats_moments import Effect, Moments


def welch_df(a: Moments, b: Moments) -> float:
    """Welch-Satterthwaite degrees of freedom from the two variants' per-unit variances."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (va + vb) ** 2 / (vb**2 / (b.n - 1) + va**2 / (a.n - 1))


def t_test(eff: Effect, *, alpha: float) -> FrequentistResult:
    """The two-sided Welch t-test of the effect against 0."""
    df = welch_df(eff.control, eff.treatment)
    se = math.sqrt(eff.variance)
    t_stat = eff.estimate / se
    p_value = float(2 * (1 - special.stdtr(df, abs(t_stat))))
    width = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return FrequentistResult(estimate=eff.estimate, ci=(eff.estimate - width, eff.estimate + width), p_value=p_value)


def default() -> FrequentistResult:
    """GrowthBook's uninformative output when the test cannot run."""
    return FrequentistResult(estimate=0.0, ci=(0.0, 0.0), p_value=1.0)
