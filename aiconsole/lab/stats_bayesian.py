"""Bayesian effect test under a flat (improper) prior on the effect, as gbstats' EffectBayesianABTest.

With a flat prior the posterior of the effect is Normal(estimate, var(estimate)) from the delta method, so:
chance to win = P(effect > 0); the credible interval is the posterior's alpha/2 and 1 - alpha/2 quantiles;
risk = [expected loss of choosing control, of choosing treatment]
     = [P(effect > 0) E[effect | effect > 0], -P(effect < 0) E[effect | effect < 0]],
which in closed form (truncated-normal means) is [mu (1 - F(z)) + sigma phi(z), -mu F(z) + sigma phi(z)]
with z = -mu / sigma. Risk is in the effect's units (relative or absolute).
"""

from __future__ import annotations

import math

from scipy import special

from aiconsole.lab.stats_models import BayesianResult
from aiconsole.lab.stats_moments import Effect

_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def risk(mu: float, sigma: float) -> tuple[float, float]:
    """Expected loss [of choosing control, of choosing treatment] for a Normal(mu, sigma) effect."""
    z = -mu / sigma
    cdf = float(special.ndtr(z))
    pdf = math.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return (mu * (1 - cdf) + sigma * pdf, -mu * cdf + sigma * pdf)


def posterior(eff: Effect, *, alpha: float) -> BayesianResult:
    """Chance to win, credible interval and risk of the effect."""
    mu, sigma = eff.estimate, math.sqrt(eff.variance)
    chance = float(special.ndtr(mu / sigma))
    q = float(special.ndtri(1 - alpha / 2))
    return BayesianResult(chance_to_win=chance, ci=(mu - q * sigma, mu + q * sigma), risk=risk(mu, sigma))


def default() -> BayesianResult:
    """GrowthBook's uninformative output when the test cannot run."""
    return BayesianResult(chance_to_win=0.5, ci=(0.0, 0.0), risk=(0.0, 0.0))
