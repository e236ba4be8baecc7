"""Sequential testing by asymptotic confidence sequences (Waudby-Smith et al. 2023), as gbstats computes it.

With N = n_a + n_b units, s2 = var(estimate) N and rho from the tuning parameter (the expected N at which
the sequence is tightest, GrowthBook's default 5000; eq. 161):

    rho = sqrt((-2 ln alpha + ln(-2 ln alpha + 1)) / tuning)
    half-width = sqrt(s2) sqrt(2 (N rho**2 + 1) ln(sqrt(N rho**2 + 1) / alpha) / (N rho)**2)      (eq. 9)
    p = min(1, 1 / e),  e = exp(rho**2 S / (2 (N rho**2 + 1))) / sqrt(N rho**2 + 1),
    S = estimate**2 N / var(estimate)                                                            (eq. 155)

The interval and p-value stay valid however often they are looked at (any-time valid), so experiment
results can be read every day.
"""

from __future__ import annotations

import math

from aiconsole.lab.stats_models import SequentialResult
from aiconsole.lab.stats_moments import Effect


def rho(alpha: float, tuning: float) -> float:
    """The mixture's spread for a sequence tightest at `tuning` total units (eq. 161)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def half_width(variance: float, n_total: float, *, alpha: float, tuning: float) -> float:
    """Half-width of the confidence sequence at `n_total` units for an estimate of `variance`."""
    r = rho(alpha, tuning)
    nr2 = n_total * r * r + 1
    s2 = variance * n_total
    return math.sqrt(s2) * math.sqrt(2 * nr2 * math.log(math.sqrt(nr2) / alpha) / (n_total * r) ** 2)


def confidence_sequence(eff: Effect, *, alpha: float, tuning: float) -> SequentialResult:
    """The any-time-valid interval and p-value of the effect."""
    n_total = eff.control.n + eff.treatment.n
    width = half_width(eff.variance, n_total, alpha=alpha, tuning=tuning)
    r = rho(alpha, tuning)
    st2 = eff.estimate**2 * n_total / eff.variance
    tr2p1 = n_total * r * r + 1
    exponent = r * r * st2 / (2 * tr2p1)
    # 1/e computed in logs: exp() of a large exponent would overflow where the p-value is simply ~0
    p_value = min(1.0, math.exp(-exponent + 0.5 * math.log(tr2p1)))
    return SequentialResult(ci=(eff.estimate - width, eff.estimate + width), p_value=p_value)


def default() -> SequentialResult:
    """GrowthBook's uninformative output when the test cannot run."""
    return SequentialResult(ci=(0.0, 0.0), p_value=1.0)
