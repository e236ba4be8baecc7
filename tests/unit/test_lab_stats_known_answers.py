"""The statistics engine against known answers.

GrowthBook: tests/unit/data/lab_stats_gbstats_0_8_0.json was produced by gbstats 0.8.0 (PyPI) in a throwaway
Python 3.11 venv, because gbstats pins numpy<2 and pandas<2, which cannot coexist with ours; the script that
produced it is beside it (lab_stats_gbstats_0_8_0_gen.py.txt: TwoSidedTTest, SequentialTwoSidedTTest and
EffectBayesianABTest with the default flat prior, on Proportion/SampleMean/Ratio statistics). Every number
must match to 1e-6. scipy/statsmodels: Welch's t-test, chi-square and Holm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from aiconsole.lab import stats_engine as se

TABLE = json.loads((Path(__file__).parent / "data" / "lab_stats_gbstats_0_8_0.json").read_text())


def _flat(d: object, prefix: str = "") -> dict[str, float]:
    if isinstance(d, dict):
        return {k2: v2 for k, v in d.items() for k2, v2 in _flat(v, f"{prefix}{k}.").items()}
    if isinstance(d, list):
        return {k2: v2 for i, v in enumerate(d) for k2, v2 in _flat(v, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): float(d)}  # type: ignore[arg-type]


@pytest.mark.parametrize("row", TABLE, ids=lambda r: "{metric_type}-{difference}-{alpha}".format(**r["input"]))
def test_matches_gbstats(row: dict) -> None:
    got = _flat(se.analyze(se.comparison_from_json(row["input"])).to_json_dict())
    want = _flat(row["output"])
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6, rel=1e-6), key


def test_welch_matches_scipy() -> None:
    a = se.VariantSummary(n=500, sum=1250.0, sum_squares=4000.0)
    b = se.VariantSummary(n=520, sum=1235.0, sum_squares=3900.0)
    result = se.analyze(se.Comparison(metric_type="mean", difference="absolute", control=a, treatment=b))
    sd = [((v.sum_squares - v.sum**2 / v.n) / (v.n - 1)) ** 0.5 for v in (a, b)]  # type: ignore[operator]
    ref = stats.ttest_ind_from_stats(b.sum / b.n, sd[1], b.n, a.sum / a.n, sd[0], a.n, equal_var=False)
    assert result.frequentist.p_value == pytest.approx(ref.pvalue, abs=1e-9)


def test_srm_matches_scipy_and_flags_52_48() -> None:
    counts = [10400, 9600]  # 52/48 at n = 20,000
    check = se.srm(counts, [0.5, 0.5])
    assert check.p_value == pytest.approx(stats.chisquare(counts).pvalue, rel=1e-9)
    assert check.mismatch
    assert not se.srm([10050, 9950], [0.5, 0.5]).mismatch
    assert se.srm_p_value([3000, 1000], [3, 1]) == 1.0


def test_holm_matches_statsmodels() -> None:
    ps = [0.01, 0.04, 0.03, 0.005, 0.5]
    _, ref, _, _ = multipletests(ps, method="holm")
    assert se.holm(ps) == pytest.approx(list(ref), abs=1e-12)
    assert se.holm_rejects(ps) == list(multipletests(ps, method="holm")[0])


def test_power_matches_statsmodels() -> None:
    from statsmodels.stats.power import NormalIndPower

    p0, p1 = 0.40, 0.42
    n = se.sample_size(metric_type="proportion", baseline_mean=p0, mde=0.05)
    effect = (p1 - p0) / ((p0 * (1 - p0) + p1 * (1 - p1)) / 2) ** 0.5
    ref = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1.0)
    assert n == pytest.approx(ref, abs=1)
    plan = se.plan(metric_type="proportion", baseline_mean=p0, mde=0.05, photos_per_day=1000)
    assert plan.total == 2 * n and plan.days == -(-2 * n // 1000)


def test_unusable_comparison_says_why() -> None:
    r = se.analyze(se.comparison_from_json({"metric_type": "proportion", "control": {"n": 100, "sum": 0},
                                            "treatment": {"n": 100, "sum": 3}}))
    assert r.error and "control" in r.error and r.frequentist.p_value == 1.0


@pytest.mark.parametrize(("data", "field"), [
    ({"metric_type": "mean", "control": {"n": 10, "sum": 5}, "treatment": {"n": 10, "sum": 5, "sum_squares": 9}},
     "control.sum_squares"),
    ({"metric_type": "proportion", "control": {"n": 10, "sum": 11}, "treatment": {"n": 10, "sum": 5}}, "control.sum"),
    ({"metric_type": "median", "control": {"n": 10, "sum": 1}, "treatment": {"n": 10, "sum": 5}}, "metric_type"),
    ({"metric_type": "proportion", "control": {"n": -1, "sum": 0}, "treatment": {"n": 10, "sum": 5}}, "control.n"),
    ({"metric_type": "proportion", "control": {"n": 10, "sum": 1}}, "treatment"),
    ({"metric_type": "proportion", "alpha": 2, "control": {"n": 10, "sum": 1}, "treatment": {"n": 10, "sum": 5}},
     "alpha"),
])
def test_bad_input_names_the_field(data: dict, field: str) -> None:
    with pytest.raises(se.ValidationFailed) as exc:
        se.comparison_from_json(data)
    assert field in str(exc.value)
