"""The Quality analytics charts: precision over time with its interval band, confidence of approved / renamed /
rejected tags, the reliability diagram against the diagonal, the most common renames, reviews per day.

Colours are Okabe & Ito's (colour-blind-safe; tests/unit/test_quality_analytics.py measures the outcomes'
distances under protanopia, deuteranopia and tritanopia). The unbiased random-sample estimate is the solid
line with its band; the all-reviews figure is dashed grey and named biased.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from aiconsole.charts.base import LAYOUT, empty_figure, provider_color, tint

OUTCOME_COLORS: dict[str, str] = {
    "approved": "#009E73",  # bluish green
    "renamed": "#0072B2",  # blue
    "rejected": "#D55E00",  # vermillion
}
ESTIMATE_COLOR = "#0072B2"
BIASED_COLOR = "#4D4D4D"
DIAGONAL_COLOR = "#999999"
BAND_TINT = 0.75
# Below the plot: beside a half-width column's title a legend at the top overlaps it.
LEGEND_BELOW = {**LAYOUT, "legend": {"orientation": "h", "y": -0.22}}
DAY_MS = 86_400_000
RANDOM_NAME = "precision (random sample, unbiased)"
BIASED_NAME = "precision (all reviews, biased)"
NO_RANDOM_HINT = "Review in Random order to estimate precision: it is the only unbiased sample."


def precision_chart(df: pd.DataFrame, *, title: str = "AI precision per day") -> go.Figure:
    """The random sample's daily precision with its Wilson band, and the all-reviews line (biased).

    `df`: day, sample ('random' | 'all'), decided, precision, low, high (precision/low/high empty on a day
    without decisions).
    """
    if df.empty or int(df["decided"].sum()) == 0:
        return empty_figure(title, "No reviews in this window yet.", NO_RANDOM_HINT)
    fig = go.Figure()
    rnd = df[(df["sample"] == "random") & (df["decided"] > 0)]
    if not rnd.empty:
        days = list(rnd["day"])
        fig.add_trace(go.Scatter(x=days + days[::-1], y=list(rnd["high"]) + list(rnd["low"])[::-1], fill="toself",
                                 fillcolor=tint(ESTIMATE_COLOR, BAND_TINT), line={"width": 0}, mode="lines",
                                 hoverinfo="skip", name="95% interval (Wilson)"))
        fig.add_trace(go.Scatter(x=days, y=rnd["precision"], mode="lines+markers", name=RANDOM_NAME,
                                 line={"color": ESTIMATE_COLOR, "width": 2}, customdata=rnd["decided"],
                                 hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} of %{customdata:,} tags<extra></extra>"))
    every = df[(df["sample"] == "all") & (df["decided"] > 0)]
    fig.add_trace(go.Scatter(x=every["day"], y=every["precision"], mode="lines+markers", name=BIASED_NAME,
                             line={"color": BIASED_COLOR, "dash": "dash"}, customdata=every["decided"],
                             hovertemplate="%{x|%Y-%m-%d}: %{y:.1%} of %{customdata:,} tags<extra></extra>"))
    if rnd.empty:
        fig.add_annotation(text=NO_RANDOM_HINT, x=0.5, y=0.05, xref="paper", yref="paper", showarrow=False,
                           font={"size": 12, "color": BIASED_COLOR})
    shown_days = df.loc[df["decided"] > 0, "day"].nunique()
    # One tick per day (a few days apart on long windows): the points are days, never hours.
    fig.update_layout(title=title, yaxis={"title": "precision", "range": [0, 1.02], "tickformat": ".0%"},
                      xaxis={"title": None, "tickformat": "%b %d", "dtick": DAY_MS * max(1, shown_days // 10)},
                      height=360, **LEGEND_BELOW)
    return fig


def confidence_chart(approved: Sequence[int], renamed: Sequence[int], rejected: Sequence[int], *,
                     title: str = "Confidence of reviewed tags, by decision") -> go.Figure:
    """Decided tags per equal-width confidence bin (0..1) for each decision, side by side."""
    if sum(approved) + sum(renamed) + sum(rejected) == 0:
        return empty_figure(title, "No reviewed tags in this window yet.",
                            "Review photos on the Review tab; each decision lands here.")
    width = 1 / len(approved)
    fig = go.Figure()
    for name, counts in (("approved", approved), ("renamed", renamed), ("rejected", rejected)):
        fig.add_bar(x=[(i + 0.5) * width for i in range(len(counts))], y=list(counts), name=name,
                    marker={"color": OUTCOME_COLORS[name]},
                    hovertemplate="confidence %{x:.2f}: %{y:,} " + name + "<extra></extra>")
    fig.update_layout(title=title, barmode="group", bargap=0.1, xaxis={"title": "confidence", "range": [0, 1]},
                      yaxis_title="tags", height=380, **LEGEND_BELOW)
    return fig


def reliability_chart(series: Mapping[str, Sequence[tuple[float, float, int]]], *,
                      title: str = "Reliability: confidence vs share right") -> go.Figure:
    """One line per group (e.g. 'local / local-analyzer-v1') through its bins' (mean confidence, accuracy),
    marker size by tags, against the diagonal a perfectly calibrated model would follow."""
    if not any(series.values()):
        return empty_figure(title, "No reviewed tags to calibrate yet.", NO_RANDOM_HINT)
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", hoverinfo="skip",
                               line={"color": DIAGONAL_COLOR, "dash": "dot"}))
    for name, points in series.items():
        if not points:
            continue
        total = max(n for _, _, n in points)
        color = provider_color(name.split(" / ")[0])
        fig.add_trace(go.Scatter(
            x=[c for c, _, _ in points], y=[a for _, a, _ in points], mode="lines+markers", name=name,
            line={"color": color}, marker={"color": color, "size": [6 + 12 * n / total for _, _, n in points]},
            customdata=[n for _, _, n in points],
            hovertemplate="confidence %{x:.2f}: right %{y:.1%} of %{customdata:,} tags<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "mean confidence", "range": [0, 1]},
                      yaxis={"title": "share right", "range": [0, 1.02], "tickformat": ".0%"}, height=420,
                      **LEGEND_BELOW)
    return fig


def corrections_chart(rows: Sequence[tuple[str, str, int]], *,
                      title: str = "Most common renames") -> go.Figure:
    """Horizontal bars of rename counts, 'before -> after', the most common on top."""
    if not rows:
        return empty_figure(title, "No renamed tags in this window.",
                            "Renames made while reviewing (A -> B) are counted here.")
    ordered = list(rows)[::-1]  # plotly draws the first category at the bottom
    fig = go.Figure(go.Bar(x=[n for _, _, n in ordered], y=[f"{a} -> {b}" for a, b, _ in ordered],
                           orientation="h", marker={"color": OUTCOME_COLORS["renamed"]},
                           hovertemplate="%{y}: %{x:,}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="tags renamed", yaxis_title=None,
                      height=max(240, 60 + 26 * len(ordered)), showlegend=False, **LAYOUT)
    return fig


def reviews_chart(df: pd.DataFrame, *, title: str = "Reviews per day") -> go.Figure:
    """Reviews per local day. `df`: day, reviews."""
    if df.empty or int(df["reviews"].sum()) == 0:
        return empty_figure(title, "No reviews in this window yet.", "Reviews appear here as they are submitted.")
    fig = go.Figure(go.Bar(x=df["day"], y=df["reviews"], marker={"color": ESTIMATE_COLOR},
                           hovertemplate="%{x|%Y-%m-%d}: %{y:,} reviews<extra></extra>"))
    fig.update_layout(title=title, yaxis_title="reviews", xaxis_title=None, height=300, showlegend=False,
                      **LAYOUT)
    return fig
