"""Plotly figure builders for the console: a DataFrame (or a few figures) in, a `go.Figure` out.

No Streamlit here. Every provider keeps one colour on every chart, every photo status one colour, and a
chart with nothing to show says so and says what to do instead of drawing empty axes.
Money arrives as integer micro-dollars and is shown in USD.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from aiconsole.platform.money import format_usd, micros_to_usd

PROVIDER_COLORS: dict[str, str] = {
    "google-vision": "#4285F4",
    "gemini": "#9B59B6",
    "local": "#16A085",
}
# Unknown providers (plugins, renamed models) still get a stable colour, picked by a hash of the name.
_SPARE_COLORS = ("#E67E22", "#2C3E50", "#C0392B", "#7F8C8D", "#D4AC0D", "#1ABC9C")
STATUS_COLORS: dict[str, str] = {
    "pending": "#F2C94C",
    "processing": "#2D9CDB",
    "completed": "#27AE60",
    "needs_review": "#F2994A",
    "failed": "#EB5757",
}
STATUS_LABELS: dict[str, str] = {
    "pending": "Pending",
    "processing": "Processing",
    "completed": "Completed",
    "needs_review": "Needs review",
    "failed": "Failed",
}
HEALTH_COLORS: dict[str, str] = {
    "healthy": "#27AE60",
    "degraded": "#F2994A",
    "down": "#EB5757",
    "unknown": "#95A5A6",
}
FAILED_COLOR = "#EB5757"
BUDGET_COLOR = "#C0392B"
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 40, "r": 20, "t": 50, "b": 40},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
}


def provider_color(provider: str) -> str:
    """The colour of `provider` on every chart."""
    color = PROVIDER_COLORS.get(provider)
    if color is None:
        digest = hashlib.sha256(provider.encode()).digest()
        color = _SPARE_COLORS[digest[0] % len(_SPARE_COLORS)]
    return color


def _usd(micros: Any) -> float:
    # Display only: axis positions are floats; the figures themselves stay exact in micros.
    return float(micros_to_usd(int(micros)))


def empty_figure(title: str, message: str, hint: str | None = None) -> go.Figure:
    """A figure that says there is no data yet and, in `hint`, what to do about it."""
    text = f"<b>{message}</b>" + (f"<br><span style='font-size:12px'>{hint}</span>" if hint else "")
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 15, "color": "#7F8C8D"}, align="center")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, height=320,
                      **{k: v for k, v in _LAYOUT.items() if k != "legend"})
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    """Whether `fig` is a no-data placeholder made by `empty_figure`."""
    return not fig.data and bool(fig.layout.annotations)


def throughput_chart(df: pd.DataFrame, *, title: str = "Throughput per hour") -> go.Figure:
    """Stacked hourly bars by provider, with each provider's failures stacked on top, hatched in red.

    `df`: hour, provider, completed, failed (as `live_status.QueueMonitor.throughput`).
    """
    if df.empty or int(df["completed"].sum()) + int(df["failed"].sum()) == 0:
        return empty_figure(title, "No photos processed in the last 24 hours yet.",
                            "Start a worker (aiconsole up) and add photos to the queue.")
    fig = go.Figure()
    providers = list(dict.fromkeys(df["provider"]))
    for provider in providers:
        rows = df[df["provider"] == provider]
        fig.add_bar(x=rows["hour"], y=rows["completed"], name=provider, legendgroup=provider,
                    marker={"color": provider_color(provider)},
                    hovertemplate="%{x|%H:%M}<br>" + provider + ": %{y:,} processed<extra></extra>")
    for provider in providers:
        rows = df[df["provider"] == provider]
        if int(rows["failed"].sum()) == 0:
            continue
        fig.add_bar(x=rows["hour"], y=rows["failed"], name=f"{provider} failed", legendgroup=provider,
                    marker={"color": FAILED_COLOR, "pattern": {"shape": "x", "fgcolor": provider_color(provider)},
                            "line": {"color": provider_color(provider), "width": 1}},
                    hovertemplate="%{x|%H:%M}<br>" + provider + ": %{y:,} failed<extra></extra>")
    fig.update_layout(title=title, barmode="stack", xaxis_title=None, yaxis_title="results per hour",
                      height=360, **_LAYOUT)
    return fig


def spend_by_provider_chart(df: pd.DataFrame, *, column: str = "today_micros",
                            budget_micros: int | None = None, title: str = "Spend today by provider",
                            budget_label: str = "Daily budget") -> go.Figure:
    """Bars of spend (USD) per provider, with the budget as a dashed line and the total against it.

    `df`: provider and the micro-dollar `column` (as `live_status.CostMonitor.by_provider`).
    """
    if df.empty or int(df[column].sum()) == 0:
        hint = (f"{budget_label}: {format_usd(budget_micros)}." if budget_micros else
                "No budget is set either; admins can set one in the pipeline settings.")
        return empty_figure(title, "No spend yet in this period.", hint)
    total = int(df[column].sum())
    fig = go.Figure(go.Bar(
        x=df["provider"], y=[_usd(v) for v in df[column]],
        marker={"color": [provider_color(p) for p in df["provider"]]},
        text=[format_usd(int(v)) for v in df[column]], textposition="outside",
        hovertemplate="%{x}: %{text}<extra></extra>", showlegend=False,
    ))
    subtitle = f"total {format_usd(total)}"
    if budget_micros:
        fig.add_hline(y=_usd(budget_micros), line={"color": BUDGET_COLOR, "dash": "dash"},
                      annotation_text=f"{budget_label} {format_usd(budget_micros)}",
                      annotation_position="top left")
        subtitle += f" of {format_usd(budget_micros)} ({total / budget_micros:.0%})"
        top = max(_usd(budget_micros), _usd(int(df[column].max()))) * 1.15
        fig.update_yaxes(range=[0, top])
    fig.update_layout(title=f"{title} — {subtitle}", yaxis_title="USD", yaxis_tickprefix="$", height=360,
                      **_LAYOUT)
    return fig


def _gauge_steps(budget: float) -> list[dict[str, Any]]:
    return [
        {"range": [0, 0.8 * budget], "color": "#E8F6EF"},
        {"range": [0.8 * budget, budget], "color": "#FDEBD0"},
    ]


def budget_gauge(spent_micros: int, budget_micros: int | None, *, title: str,
                 projected_micros: int | None = None) -> go.Figure:
    """A bullet gauge of spend against a budget (red mark); the projection, when given, in the title."""
    spent = _usd(spent_micros)
    label = title if projected_micros is None else f"{title}<br><span style='font-size:11px'>projected " \
                                                   f"{format_usd(projected_micros)}</span>"
    if not budget_micros:
        fig = go.Figure(go.Indicator(
            mode="number", value=spent, number={"prefix": "$", "valueformat": ",.2f"},
            title={"text": f"{label}<br><span style='font-size:11px'>no budget set</span>"},
        ))
        fig.update_layout(height=160, margin={"l": 20, "r": 20, "t": 50, "b": 10})
        return fig
    budget = _usd(budget_micros)
    top = max(budget, spent, _usd(projected_micros or 0)) * 1.1
    fig = go.Figure(go.Indicator(
        mode="number+gauge", value=spent,
        number={"prefix": "$", "valueformat": ",.2f", "suffix": f" of {format_usd(budget_micros)}"},
        title={"text": label},
        gauge={
            "shape": "bullet",
            "axis": {"range": [0, top], "tickprefix": "$"},
            "bar": {"color": BUDGET_COLOR if spent >= budget else "#2D9CDB"},
            "steps": _gauge_steps(budget),
            "threshold": {"line": {"color": BUDGET_COLOR, "width": 3}, "thickness": 0.9, "value": budget},
        },
    ))
    fig.update_layout(height=140, margin={"l": 150, "r": 30, "t": 30, "b": 30})
    return fig


def budget_chart(budgets: pd.DataFrame) -> go.Figure:
    """Both budget bullets (today, this month) in one figure; `budgets` as `CostMonitor.budgets`."""
    titles = {"today": "Today", "month": "This month"}
    fig = go.Figure()
    rows = [{str(k): v for k, v in r.items()} for r in budgets.to_dict("records")]
    if not rows:
        return empty_figure("Budgets", "No spend or budget data yet.")
    height = 1.0 / len(rows)
    for i, row in enumerate(rows):
        spent = _usd(row["spent_micros"])
        budget = None if pd.isna(row["budget_micros"]) else int(row["budget_micros"])
        domain = {"x": [0.25, 1], "y": [1 - (i + 1) * height + 0.08, 1 - i * height - 0.08]}
        name = titles.get(str(row["period"]), str(row["period"]))
        projected = None if row["period"] == "today" else int(row["projected_micros"])
        label = name + (f"<br><span style='font-size:11px'>projected {format_usd(projected)}</span>"
                        if projected is not None else "")
        if budget is None:
            fig.add_trace(go.Indicator(
                mode="number", value=spent, domain=domain, number={"prefix": "$", "valueformat": ",.2f",
                                                                   "suffix": "  (no budget set)"},
                title={"text": label},
            ))
            continue
        top = max(_usd(budget), spent, _usd(projected or 0)) * 1.1
        fig.add_trace(go.Indicator(
            mode="number+gauge", value=spent, domain=domain, title={"text": label},
            number={"prefix": "$", "valueformat": ",.2f", "suffix": f" of {format_usd(budget)}"},
            gauge={
                "shape": "bullet", "axis": {"range": [0, top], "tickprefix": "$"},
                "bar": {"color": BUDGET_COLOR if spent >= _usd(budget) else "#2D9CDB"},
                "steps": _gauge_steps(_usd(budget)),
                "threshold": {"line": {"color": BUDGET_COLOR, "width": 3}, "thickness": 0.9,
                              "value": _usd(budget)},
            },
        ))
    fig.update_layout(height=110 * len(rows) + 40, margin={"l": 20, "r": 30, "t": 30, "b": 20})
    return fig


def latency_chart(df: pd.DataFrame, *, title: str = "Provider latency, last 15 minutes") -> go.Figure:
    """p50 (solid) and p95 (light) latency bars per provider; `df` as `ProviderHealthReport.frame()`."""
    if df.empty or df["p50_latency_ms"].isna().all():
        return empty_figure(title, "No provider calls in the last 15 minutes.",
                            "Latency appears as soon as workers process photos.")
    rows = df[df["p50_latency_ms"].notna()]
    colors = [provider_color(p) for p in rows["provider"]]
    fig = go.Figure()
    fig.add_bar(x=rows["provider"], y=rows["p50_latency_ms"], name="p50", marker={"color": colors},
                hovertemplate="%{x} p50: %{y:,.0f} ms<extra></extra>")
    fig.add_bar(x=rows["provider"], y=rows["p95_latency_ms"], name="p95",
                marker={"color": colors, "opacity": 0.45, "pattern": {"shape": "/"}},
                hovertemplate="%{x} p95: %{y:,.0f} ms<extra></extra>")
    fig.update_layout(title=title, barmode="group", yaxis_title="ms", height=320, **_LAYOUT)
    return fig


def queue_status_chart(counts: Mapping[str, int], *, title: str = "Open queue by status") -> go.Figure:
    """A donut of photos per status with the total in the middle."""
    items = [(s, int(n)) for s, n in counts.items() if int(n) > 0]
    if not items:
        return empty_figure(title, "No photos yet.",
                            "Upload photos under Quick actions on this page.")
    total = sum(n for _, n in items)
    fig = go.Figure(go.Pie(
        labels=[STATUS_LABELS.get(s, s) for s, _ in items], values=[n for _, n in items], hole=0.6,
        marker={"colors": [STATUS_COLORS.get(s, "#7F8C8D") for s, _ in items]}, sort=False,
        textinfo="value", hovertemplate="%{label}: %{value:,} (%{percent})<extra></extra>",
    ))
    fig.add_annotation(text=f"<b>{total:,}</b><br>photos", x=0.5, y=0.5, showarrow=False, font={"size": 16})
    # The legend goes below the donut: above it, it would collide with the title in a narrow column.
    fig.update_layout(title=title, height=360, **{**_LAYOUT, "legend": {"orientation": "h", "y": -0.05}})
    return fig


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
                      showlegend=False, bargap=0.05, **_LAYOUT)
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
    fig.add_trace(go.Scatter(x=labels, y=[_usd(c) for c in used["cost_per_photo_micros"].fillna(0)], yaxis="y2",
                             name="cost per photo", mode="lines+markers", line={"color": BUDGET_COLOR},
                             hovertemplate="%{x}: $%{y:.5f} per photo<extra></extra>"))
    # Legend below: beside a narrow column's title it would overlap it.
    fig.update_layout(title=title, height=340, yaxis={"title": "avg confidence", "range": [0, 1]},
                      yaxis2={"title": "USD per photo", "overlaying": "y", "side": "right", "rangemode": "tozero",
                              "tickformat": "$.4f"},
                      **{**_LAYOUT, "legend": {"orientation": "h", "y": -0.15}})
    return fig
