"""Quality statistics against known answers: Wilson intervals vs statsmodels' proportion_confint, kappa and
percent agreement vs scikit-learn's cohen_kappa_score and a textbook table, reliability bins and ECE vs
scikit-learn's calibration_curve, and the threshold for a target precision on a dataset built by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from aiconsole.platform.errors import ValidationFailed
from aiconsole.quality import stats


@pytest.mark.parametrize(("successes", "n"), [(0, 1), (0, 20), (1, 20), (7, 10), (26, 27), (81, 263),
                                              (950, 1000), (1000, 1000), (3, 100_000)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_interval_equals_statsmodels(successes: int, n: int, level: float) -> None:
    low, high = proportion_confint(successes, n, alpha=1 - level, method="wilson")
    got = stats.wilson_interval(successes, n, level=level)
    assert got is not None
    assert got.estimate == successes / n
    assert got.low == pytest.approx(low, abs=1e-12)
    assert got.high == pytest.approx(high, abs=1e-12)
    assert 0.0 <= got.low <= got.estimate <= got.high <= 1.0


def test_wilson_interval_textbook_value_and_edges() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662 (method 3, Wilson).
    got = stats.wilson_interval(81, 263)
    assert got is not None
    assert (round(got.low, 4), round(got.high, 4)) == (0.2553, 0.3662)
    assert got.half_width == pytest.approx((got.high - got.low) / 2)
    assert stats.wilson_interval(0, 0) is None
    zero = stats.wilson_interval(0, 10)
    assert zero is not None and zero.low == 0.0 and zero.high > 0.0
    for bad in ((5, 4), (-1, 4), (0, -1)):
        with pytest.raises(ValidationFailed, match="not a proportion"):
            stats.wilson_interval(*bad)
    with pytest.raises(ValidationFailed, match="confidence level"):
        stats.wilson_interval(1, 2, level=1.0)


def test_kappa_textbook_table() -> None:
    # The 2 x 2 table of Cohen's kappa's usual worked example (50 items): yes/yes 20, yes/no 5, no/yes 10,
    # no/no 15 -> observed 0.70, expected 0.50, kappa 0.40.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    got = stats.agreement(first, second)
    assert got is not None
    assert (got.n, got.observed, got.expected) == (50, pytest.approx(0.7), pytest.approx(0.5))
    assert got.kappa == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(6))
def test_kappa_and_agreement_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    categories = ["approve", "reject", "rename", "skip"][: 2 + seed % 3]
    n = int(rng.integers(5, 400))
    first = rng.choice(categories, size=n).tolist()
    # The second rater copies the first most of the time, so kappa is far from 0 and from 1.
    second = [a if rng.random() < 0.7 else str(rng.choice(categories)) for a in first]
    got = stats.agreement(first, second)
    assert got is not None
    assert got.kappa == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)
    assert got.observed == pytest.approx(np.mean(np.array(first) == np.array(second)))


def test_kappa_edges() -> None:
    assert stats.agreement([], []) is None
    perfect = stats.agreement(["a", "b", "a"], ["a", "b", "a"])
    assert perfect is not None and perfect.kappa == pytest.approx(1.0)
    # Both raters always said "a": agreement is total, but kappa is undefined (scikit-learn gives nan).
    constant = stats.agreement(["a"] * 4, ["a"] * 4)
    assert constant is not None and constant.observed == 1.0 and constant.kappa is None
    with pytest.warns(Warning):
        assert math.isnan(cohen_kappa_score(["a"] * 4, ["a"] * 4))
    # Worse than chance is negative.
    opposite = stats.agreement(["a", "b", "a", "b"], ["b", "a", "b", "a"])
    assert opposite is not None and opposite.kappa == pytest.approx(-1.0)
    with pytest.raises(ValidationFailed, match="pairs"):
        stats.agreement(["a"], ["a", "b"])


@pytest.mark.parametrize(("seed", "n_bins"), [(0, 10), (1, 5), (2, 15), (3, 10), (4, 20)])
def test_reliability_bins_equal_calibration_curve(seed: int, n_bins: int) -> None:
    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 2, size=2000)
    # Over-confident by construction: right with probability conf**1.5.
    right = rng.random(2000) < conf**1.5
    bins = stats.reliability_bins(conf.tolist(), right.tolist(), n_bins=n_bins)
    prob_true, prob_pred = calibration_curve(right, conf, n_bins=n_bins, strategy="uniform")
    filled = [b for b in bins if b.count]
    assert [b.accuracy for b in filled] == pytest.approx(prob_true.tolist(), abs=1e-12)
    assert [b.mean_confidence for b in filled] == pytest.approx(prob_pred.tolist(), abs=1e-12)
    assert sum(b.count for b in bins) == 2000 and len(bins) == n_bins
    assert (bins[0].low, bins[0].high, bins[-1].high) == (0.0, 1 / n_bins, 1.0)
    counts = np.histogram(conf, bins=np.linspace(0, 1, n_bins + 1))[0]
    counts = counts[counts > 0]
    expected_ece = float(np.sum(counts * np.abs(prob_true - prob_pred)) / counts.sum())
    assert stats.expected_calibration_error(bins) == pytest.approx(expected_ece, abs=1e-12)
    assert expected_ece > 0.02  # the data is miscalibrated: the comparison is not of two zeros


def test_reliability_by_hand_and_from_sql_sums() -> None:
    conf = [0.05, 0.15, 0.15, 0.85, 0.95, 1.0, 0.5]
    right = [False, True, False, True, True, True, False]
    bins = stats.reliability_bins(conf, right, n_bins=10)
    assert [b.count for b in bins] == [1, 2, 0, 0, 0, 1, 0, 0, 1, 2]
    assert bins[1].accuracy == 0.5 and bins[1].mean_confidence == pytest.approx(0.15)
    assert bins[2].accuracy is None and bins[2].mean_confidence is None
    assert bins[9].mean_confidence == pytest.approx(0.975) and bins[9].accuracy == 1.0  # 1.0 is in the top bin
    # |0-.05| + 2|.5-.15| + |0-.5| + |1-.85| + 2|1-.975| = 0.05 + 0.7 + 0.5 + 0.15 + 0.05 = 1.45, over 7 tags.
    assert stats.expected_calibration_error(bins) == pytest.approx(1.45 / 7)
    # A lower edge belongs to its bin, like the tag rule's accept threshold: 0.8 is in [0.8, 0.9).
    assert stats.bin_index(0.8) == 8 and stats.bin_index(0.7999) == 7 and stats.bin_index(1.0) == 9
    sums = stats.reliability_from_sums([b.count for b in bins],
                                       [sum(c for c in conf if stats.bin_index(c) == i) for i in range(10)],
                                       [sum(r for c, r in zip(conf, right, strict=True) if stats.bin_index(c) == i)
                                        for i in range(10)])
    assert sums == bins
    assert stats.expected_calibration_error(stats.reliability_bins([], [])) is None
    with pytest.raises(ValidationFailed, match=r"outside 0\.\.1"):
        stats.reliability_bins([1.2], [True])
    with pytest.raises(ValidationFailed, match="one right/wrong"):
        stats.reliability_bins([0.2, 0.3], [True])


# 100 reviewed tags, confidences 0.005, 0.015, ..., 0.995 (tag i at (i + 0.5) / 100): tags 80-99 all right,
# 60-79 right except 60, 64, 68, 72 and 76, 0-59 all wrong.
CONF = [(i + 0.5) / 100 for i in range(100)]
RIGHT = [i >= 80 or (60 <= i < 80 and i % 4 != 0) for i in range(100)]


def test_threshold_for_a_target_precision_on_a_constructed_dataset() -> None:
    # At or above tag 73 (0.735): 27 tags, one wrong (76) -> 26/27 = 96.3%. At 72: 28 tags, 2 wrong -> 92.9%;
    # lower thresholds only add wrong tags. So 0.735 is the lowest threshold reaching 95%.
    got = stats.threshold_for_precision(CONF, RIGHT, target=0.95, current_accept=0.8, reject=0.4, min_support=1)
    assert got is not None
    assert got.threshold == pytest.approx(0.735)
    assert (got.support, got.precision.estimate) == (27, pytest.approx(26 / 27))
    low, high = proportion_confint(26, 27, alpha=0.05, method="wilson")
    assert (got.precision.low, got.precision.high) == (pytest.approx(low), pytest.approx(high))
    # Review band [0.4, 0.8): tags 40-79 = 40% now; [0.4, 0.735): tags 40-72 = 33% after -> 17.5% fewer.
    assert got.review_share_now == pytest.approx(0.40)
    assert got.review_share_after == pytest.approx(0.33)
    assert got.review_load_change == pytest.approx(-0.175)
    assert got.below_reject is False


def test_threshold_options_support_population_and_lower_bound() -> None:
    # At least 30 tags above: that means tag 70 or lower, where precision is at most 28/30 -> nothing reaches 95%.
    assert stats.threshold_for_precision(CONF, RIGHT, target=0.95, current_accept=0.8, reject=0.4,
                                         min_support=30) is None
    # 90% with 30 tags: tags 65-70 qualify (65: 32/35 = 91.4%), 64 does not (32/36 = 88.9%), nor does anything
    # lower (61: 35/39 = 89.7% at best).
    got = stats.threshold_for_precision(CONF, RIGHT, target=0.90, current_accept=0.8, reject=0.4, min_support=30)
    assert got is not None and got.threshold == pytest.approx(0.655) and got.support == 35
    # Judged by the Wilson lower bound, 95% is out of reach: even the 23 all-right tags at the top (77-99) have
    # a lower bound of 85.7%. 85% is reached from tag 77 (85.7%) and 78 (85.1%); 76 (23/24) falls to 79.8%
    # and 73 (26/27), the lowest that reaches 81.7%, still falls short.
    assert stats.threshold_for_precision(CONF, RIGHT, target=0.95, current_accept=0.8, reject=0.4,
                                         by="lower_bound", min_support=1) is None
    strict = stats.threshold_for_precision(CONF, RIGHT, target=0.85, current_accept=0.8, reject=0.4,
                                           by="lower_bound", min_support=1)
    assert strict is not None and strict.threshold == pytest.approx(0.775) and strict.support == 23
    assert strict.precision.low == pytest.approx(proportion_confint(23, 23, method="wilson")[0])
    # The review load is measured over every tag the rules see, not only the reviewed ones.
    population = [0.45] * 50 + [0.75] * 30 + [0.9] * 20  # now: 80 of 100 in [0.4, 0.8); after 0.735: 50
    moved = stats.threshold_for_precision(CONF, RIGHT, target=0.95, current_accept=0.8, reject=0.4,
                                          population=population, min_support=1)
    assert moved is not None
    assert (moved.review_share_now, moved.review_share_after) == (pytest.approx(0.8), pytest.approx(0.5))
    assert moved.review_load_change == pytest.approx(-0.375)
    # A threshold under the reject threshold empties the band, and says it needs the reject lowered.
    low = stats.threshold_for_precision(CONF, [True] * 100, target=0.95, current_accept=0.8, reject=0.4,
                                        min_support=1)
    assert low is not None and low.threshold == pytest.approx(0.005) and low.below_reject
    assert low.review_share_after == 0.0 and low.review_load_change == pytest.approx(-1.0)


def test_threshold_ties_and_refusals() -> None:
    # A threshold takes every tag at its confidence: 0.9 x 3 (one wrong) can only be taken together.
    got = stats.threshold_for_precision([0.95, 0.9, 0.9, 0.9], [True, True, False, True], target=0.75,
                                        current_accept=0.8, reject=0.4, min_support=1)
    assert got is not None and (got.threshold, got.support) == (0.9, 4)
    assert stats.threshold_for_precision([], [], target=0.9, current_accept=0.8, reject=0.4) is None
    with pytest.raises(ValidationFailed, match="target precision"):
        stats.threshold_for_precision(CONF, RIGHT, target=1.5, current_accept=0.8, reject=0.4)
    with pytest.raises(ValidationFailed, match="one right/wrong"):
        stats.threshold_for_precision([0.5], [], target=0.9, current_accept=0.8, reject=0.4)
    assert stats.review_share([], accept=0.8, reject=0.4) is None
