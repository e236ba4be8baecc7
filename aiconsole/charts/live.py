"""The Live Status charts: hourly throughput, the open queue by status, spend by provider, the budgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from aiconsole.charts.base import (
    BUDGET_COLOR,
    FAILED_COLOR,
    LAYOUT,
    STATUS_COLORS,
    STATUS_LABELS,
    axis_usd,
    empty_figure,
    provider_color,
)
from aiconsole.platform.money import format_usd


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
                      height=360, **LAYOUT)
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
    fig.update_layout(title=title, height=360, **{**LAYOUT, "legend": {"orientation": "h", "y": -0.05}})
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
        x=df["provider"], y=[axis_usd(v) for v in df[column]],
        marker={"color": [provider_color(p) for p in df["provider"]]},
        text=[format_usd(int(v)) for v in df[column]], textposition="outside",
        hovertemplate="%{x}: %{text}<extra></extra>", showlegend=False,
    ))
    subtitle = f"total {format_usd(total)}"
    if budget_micros:
        fig.add_hline(y=axis_usd(budget_micros), line={"color": BUDGET_COLOR, "dash": "dash"},
                      annotation_text=f"{budget_label} {format_usd(budget_micros)}",
                      annotation_position="top left")
        subtitle += f" of {format_usd(budget_micros)} ({total / budget_micros:.0%})"
        top = max(axis_usd(budget_micros), axis_usd(int(df[column].max()))) * 1.15
        fig.update_yaxes(range=[0, top])
    fig.update_layout(title=f"{title} — {subtitle}", yaxis_title="USD", yaxis_tickprefix="$", height=360,
                      **LAYOUT)
    return fig


def _gauge_steps(budget: float) -> list[dict[str, Any]]:
    return [
        {"range": [0, 0.8 * budget], "color": "#E8F6EF"},
        {"range": [0.8 * budget, budget], "color": "#FDEBD0"},
    ]


def budget_chart(budgets: pd.DataFrame) -> go.Figure:
    """Both budget bullets (today, this month) in one figure; `budgets` as `CostMonitor.budgets`."""
    titles = {"today": "Today", "month": "This month"}
    fig = go.Figure()
    rows = [{str(k): v for k, v in r.items()} for r in budgets.to_dict("records")]
    if not rows:
        return empty_figure("Budgets", "No spend or budget data yet.")
    height = 1.0 / len(rows)
    for i, row in enumerate(rows):
        spent = axis_usd(row["spent_micros"])
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
        top = max(axis_usd(budget), spent, axis_usd(projected or 0)) * 1.1
        fig.add_trace(go.Indicator(
            mode="number+gauge", value=spent, domain=domain, title={"text": label},
            number={"prefix": "$", "valueformat": ",.2f", "suffix": f" of {format_usd(budget)}"},
            gauge={
                "shape": "bullet", "axis": {"range": [0, top], "tickprefix": "$"},
                "bar": {"color": BUDGET_COLOR if spent >= axis_usd(budget) else "#2D9CDB"},
                "steps": _gauge_steps(axis_usd(budget)),
                "threshold": {"line": {"color": BUDGET_COLOR, "width": 3}, "thickness": 0.9,
                              "value": axis_usd(budget)},
            },
        ))
    fig.update_layout(height=110 * len(rows) + 40, margin={"l": 20, "r": 30, "t": 30, "b": 20})
    return fig
