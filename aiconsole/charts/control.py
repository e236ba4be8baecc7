"""The Pipeline Control charts: tag confidence against the rule thresholds, and prompt versions' quality and
cost."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from aiconsole.charts.base import BUDGET_COLOR, FAILED_COLOR, LAYOUT, STATUS_COLORS, axis_usd, empty_figure


def confidence_histogram_chart(counts: list[int] | tuple[int, ...], *, current: tuple[float, float],
                               proposed: tuple[float, float],
                               title: str = "Tag confidence, with the reject and accept thresholds") -> go.Figure:
    """Tags per equal-width confidence bucket (0..1), with the current (dotted) and proposed threshold lines.

    `current` and `proposed` are (accept, reject) pairs.
    """
    if not counts or sum(counts) == 0:
        return empty_figure(title, "No tags in this window.", "Pick a longer window, or process some photos first.")
    width = 1 / len(counts)
    fig = go.Figure(go.Bar(x=[(i + 0.5) * width for i in range(len(counts))], y=list(counts), width=width,
                           marker={"color": "#95A5A6"}, name="tags",
                           hovertemplate="confidence %{x:.2f}: %{y:,} tags<extra></extra>"))
    lines = (("current", current, "dot", 0.98), ("new", proposed, "solid", 0.88))
    for name, (accept, reject), dash, y in lines:
        for what, value, color in (("accept", accept, STATUS_COLORS["completed"]), ("reject", reject, FAILED_COLOR)):
            fig.add_vline(x=value, line={"color": color, "dash": dash, "width": 2})
            fig.add_annotation(x=value, y=y, yref="paper", text=f"{name} {what} {value:g}", showarrow=False,
                               font={"size": 11, "color": color}, xanchor="left", bgcolor="rgba(255,255,255,0.7)")
    fig.update_layout(title=title, xaxis={"title": "confidence", "range": [0, 1]}, yaxis_title="tags", height=360,
                      showlegend=False, bargap=0.05, **LAYOUT)
    return fig


def prompt_versions_chart(df: pd.DataFrame, *, title: str = "Confidence and cost per photo by version") -> go.Figure:
    """Bars of average confidence (left axis) and a line of cost per photo (right axis) per prompt version.

    Columns: version, photos, avg_confidence, cost_per_photo_micros; versions without photos are left out.
    """
    used = df[df["photos"] > 0] if not df.empty else df
    if used.empty:
        return empty_figure(title, "No photos processed with these versions yet.",
                            "Deploy a version to production (or run an experiment) to see its confidence and cost.")
    labels = [f"v{v}" for v in used["version"]]
    fig = go.Figure(go.Bar(x=labels, y=used["avg_confidence"], name="avg confidence", marker={"color": "#2D9CDB"},
                           customdata=used["photos"],
                           hovertemplate="%{x}: confidence %{y:.3f} over %{customdata:,} photos<extra></extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[axis_usd(c) for c in used["cost_per_photo_micros"].fillna(0)], yaxis="y2",
                             name="cost per photo", mode="lines+markers", line={"color": BUDGET_COLOR},
                             hovertemplate="%{x}: $%{y:.5f} per photo<extra></extra>"))
    # Legend below: beside a narrow column's title it would overlap it.
    fig.update_layout(title=title, height=340, yaxis={"title": "avg confidence", "range": [0, 1]},
                      yaxis2={"title": "USD per photo", "overlaying": "y", "side": "right", "rangemode": "tozero",
                              "tickformat": "$.4f"},
                      **{**LAYOUT, "legend": {"orientation": "h", "y": -0.15}})
    return fig
