"""The statistics engine's input and output shapes (pydantic v2), one comparison of control with treatment.

Input (the JSON `aiconsole stats analyze` reads)::

    {"metric_type": "proportion" | "mean" | "ratio", "difference": "relative" | "absolute",
     "alpha": 0.05, "sequential_tuning": 5000,
     "control":   {"n": 1000, "sum": 412, "sum_squares": ...},
     "treatment": {"n": 1010, "sum": 450, "sum_squares": ...}}

`sum_squares` is required for means (and ratio numerators) and ignored for proportions, where a unit's
value is 0 or 1. A ratio metric (e.g. cost per accepted tag) also gives per variant the denominator's
`denominator_sum`, `denominator_sum_squares` and the cross-product sum `sum_products` (sum of
numerator x denominator over the units); `n` counts units (photos).

Output::

    {"frequentist": {"estimate", "ci": [lo, hi], "p_value"},
     "sequential":  {"ci": [lo, hi], "p_value"},
     "bayesian":    {"chance_to_win", "ci": [lo, hi], "risk": [control, treatment]}}

plus `"error"` (a sentence) only when the comparison cannot be analysed yet (no units, no variance, a zero
control mean for a relative effect); the numbers are then GrowthBook's uninformative defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MetricType = Literal["proportion", "mean", "ratio"]
Difference = Literal["relative", "absolute"]
_SLACK = 1e-9  # relative floating-point slack for sum_squares >= sum**2 / n


class VariantSummary(BaseModel):
    """One variant's summary statistics over its units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(ge=0, description="Units (photos) in the variant.")
    sum: float = Field(description="Sum of the metric over the units (for a ratio: the numerator's).")
    sum_squares: float | None = Field(default=None, ge=0, description="Sum of squared values (means, ratios).")
    denominator_sum: float | None = Field(default=None, description="Ratio only: sum of the denominator.")
    denominator_sum_squares: float | None = Field(default=None, ge=0, description="Ratio only.")
    sum_products: float | None = Field(default=None, description="Ratio only: sum of numerator x denominator.")

    @model_validator(mode="after")
    def _consistent(self) -> VariantSummary:
        if self.n > 0 and self.sum_squares is not None and self.sum_squares < (self.sum**2 / self.n) * (1 - _SLACK):
            raise ValueError("sum_squares is smaller than sum**2 / n, which no set of values can give")
        return self


class Comparison(BaseModel):
    """Control against one treatment on one metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric_type: MetricType
    difference: Difference = "relative"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    sequential_tuning: float = Field(default=5000, gt=0, description="Expected total units (GrowthBook's default).")
    control: VariantSummary
    treatment: VariantSummary

    @model_validator(mode="after")
    def _fields_for_type(self) -> Comparison:
        for side in ("control", "treatment"):
            v: VariantSummary = getattr(self, side)
            if self.metric_type == "proportion":
                if not 0 <= v.sum <= v.n:
                    raise ValueError(f"{side}.sum must be between 0 and {side}.n for a proportion")
            else:
                if v.sum_squares is None:
                    raise ValueError(f"{side}.sum_squares is required for a {self.metric_type} metric")
            if self.metric_type == "ratio":
                for name in ("denominator_sum", "denominator_sum_squares", "sum_products"):
                    if getattr(v, name) is None:
                        raise ValueError(f"{side}.{name} is required for a ratio metric")
        return self


class FrequentistResult(BaseModel):
    estimate: float
    ci: tuple[float, float]
    p_value: float


class SequentialResult(BaseModel):
    ci: tuple[float, float]
    p_value: float


class BayesianResult(BaseModel):
    chance_to_win: float
    ci: tuple[float, float]
    risk: tuple[float, float] = Field(description="Expected loss of choosing [control, treatment].")


class AnalysisResult(BaseModel):
    frequentist: FrequentistResult
    sequential: SequentialResult
    bayesian: BayesianResult
    error: str | None = None

    def to_json_dict(self) -> dict[str, object]:
        """The issue's output shape; `error` only when set."""
        return self.model_dump(mode="json", exclude_none=True)
