"""Seeded simulations of the statistics engine over summary statistics (numpy draws the per-look counts;
each look goes through stats_engine.analyze as a real caller's would).

- A/A with 20 interim looks: the sequential test's false-positive rate (any look p < alpha) stays <= alpha
  within Monte Carlo error (3 standard errors at 2,000 runs), while the fixed-horizon t-test peeked at the
  same 20 looks exceeds alpha — the guard can fail: the peeked fixed test is the counter-example.
- A true lift is found at the power calculator's n with at least the planned power (within MC error).
"""

from __future__ import annotations

import math

import numpy as np

from aiconsole.lab import stats_engine as se

ALPHA = 0.05
RUNS = 2000
LOOKS = 20


def _comparison(a_n: int, a_sum: int, b_n: int, b_sum: int) -> se.Comparison:
    return se.Comparison(metric_type="proportion", difference="relative", alpha=ALPHA, sequential_tuning=5000,
                         control=se.VariantSummary(n=a_n, sum=a_sum), treatment=se.VariantSummary(n=b_n, sum=b_sum))


def test_aa_sequential_keeps_alpha_while_peeking_fixed_does_not() -> None:
    rng = np.random.default_rng(20261204)
    per_look = 250  # 5,000 per variant at the last look: N = 10,000
    a = rng.binomial(per_look, 0.3, size=(RUNS, LOOKS)).cumsum(axis=1)
    b = rng.binomial(per_look, 0.3, size=(RUNS, LOOKS)).cumsum(axis=1)
    seq_fp = fixed_fp = 0
    for run in range(RUNS):
        seq_hit = fixed_hit = False
        for look in range(LOOKS):
            n = per_look * (look + 1)
            r = se.analyze(_comparison(n, int(a[run, look]), n, int(b[run, look])))
            seq_hit = seq_hit or r.sequential.p_value < ALPHA
            fixed_hit = fixed_hit or r.frequentist.p_value < ALPHA
        seq_fp += seq_hit
        fixed_fp += fixed_hit
    mc_error = 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)
    assert seq_fp / RUNS <= ALPHA + mc_error, seq_fp / RUNS
    assert fixed_fp / RUNS > ALPHA + mc_error, fixed_fp / RUNS


def test_true_lift_found_at_the_calculators_n_with_planned_power() -> None:
    rng = np.random.default_rng(7)
    p0, lift, power = 0.40, 0.05, 0.8
    n = se.sample_size(metric_type="proportion", baseline_mean=p0, mde=lift, alpha=ALPHA, power=power)
    a = rng.binomial(n, p0, size=RUNS)
    b = rng.binomial(n, p0 * (1 + lift), size=RUNS)
    found = sum(se.analyze(_comparison(n, int(x), n, int(y))).frequentist.p_value < ALPHA for x, y in zip(a, b))
    assert found / RUNS >= power - 3 * math.sqrt(power * (1 - power) / RUNS), found / RUNS
