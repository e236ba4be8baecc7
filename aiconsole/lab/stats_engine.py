"""The Testing Lab's statistics engine: GrowthBook's numbers from summary statistics. Pure: no Streamlit,
no database, no I/O.

Public API (import from here)::

    from aiconsole.lab import stats_engine as se

    result = se.analyze(se.Comparison(
        metric_type="proportion",            # "proportion" | "mean" | "ratio"
        difference="relative",               # "relative" | "absolute"
        alpha=0.05, sequential_tuning=5000,  # tuning = expected total units (GrowthBook's default)
        control=se.VariantSummary(n=1000, sum=412),                  # means: + sum_squares
        treatment=se.VariantSummary(n=1010, sum=450)))               # ratios: + denominator_sum,
                                                                     #   denominator_sum_squares, sum_products
    result.frequentist.estimate, result.frequentist.ci, result.frequentist.p_value
    result.sequential.ci, result.sequential.p_value                  # any-time valid: look every day
    result.bayesian.chance_to_win, result.bayesian.ci, result.bayesian.risk   # risk = [control, treatment]
    result.error        # None, or why it cannot be analysed yet (numbers are then uninformative defaults)
    result.to_json_dict()                                            # the `aiconsole stats analyze` shape

    se.comparison_from_json(obj)   # dict -> Comparison; bad input -> ValidationFailed naming the field
    se.srm(counts=[10400, 9600], weights=[0.5, 0.5])   # SrmCheck(p_value, mismatch at p < 0.001)
    se.holm([p1, p2, ...])                             # Holm-adjusted p-values across guardrails
    se.plan(metric_type="proportion", baseline_mean=0.4, mde=0.05, alpha=0.05, power=0.8,
            photos_per_day=2000)                       # PowerPlan(per_variant, total, days)

Effects are treatment minus control (relative: divided by the control mean), with the delta method for
relative effects and ratio metrics (stats_moments); the fixed-horizon test is a two-sided Welch t-test
(stats_frequentist), the sequential one an asymptotic confidence sequence (stats_sequential), the Bayesian
one a flat-prior effect posterior (stats_bayesian). Each matches gbstats 0.8.0 to 1e-6
(tests/unit/test_lab_stats_gbstats.py). Lower-is-better metrics (cost, latency): read chance_to_win as
the chance the treatment is higher, and swap risk's two entries.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from aiconsole.lab import stats_bayesian, stats_frequentist, stats_moments, stats_sequential
from aiconsole.lab.stats_checks import SRM_THRESHOLD, SrmCheck, holm, holm_rejects, srm, srm_p_value
from aiconsole.lab.stats_models import (
    AnalysisResult,
    BayesianResult,
    Comparison,
    FrequentistResult,
    SequentialResult,
    VariantSummary,
)
from aiconsole.lab.stats_power import PowerPlan, days_to_reach, plan, sample_size
from aiconsole.platform.errors import ValidationFailed

__all__ = [
    "SRM_THRESHOLD",
    "AnalysisResult",
    "BayesianResult",
    "Comparison",
    "FrequentistResult",
    "PowerPlan",
    "SequentialResult",
    "SrmCheck",
    "ValidationFailed",
    "VariantSummary",
    "analyze",
    "comparison_from_json",
    "days_to_reach",
    "holm",
    "holm_rejects",
    "plan",
    "sample_size",
    "srm",
    "srm_p_value",
]


def analyze(comparison: Comparison) -> AnalysisResult:
    """Frequentist, sequential and Bayesian results of one comparison."""
    reason = stats_moments.unusable(comparison)
    if reason is not None:
        return AnalysisResult(frequentist=stats_frequentist.default(), sequential=stats_sequential.default(),
                              bayesian=stats_bayesian.default(), error=reason)
    eff = stats_moments.effect(comparison)
    return AnalysisResult(
        frequentist=stats_frequentist.t_test(eff, alpha=comparison.alpha),
        sequential=stats_sequential.confidence_sequence(eff, alpha=comparison.alpha,
                                                        tuning=comparison.sequential_tuning),
        bayesian=stats_bayesian.posterior(eff, alpha=comparison.alpha),
    )


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "the comparison"


def comparison_from_json(data: Any) -> Comparison:
    """A Comparison from parsed JSON; every problem named by its field, as a ValidationFailed."""
    try:
        return Comparison.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = _field(err["loc"])
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                message = "is required"
            elif err["type"] == "extra_forbidden":
                message = "is not a field of a comparison"
            problems.append(message if not err["loc"] or message.startswith(where) else f"{where}: {message}")
        raise ValidationFailed("Invalid comparison: " + "; ".join(problems) + ".",
                               hint="See `aiconsole stats analyze --help` for the input shape.") from None
