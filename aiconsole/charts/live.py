"""The Live Status charts: hourly throughput, the open queue by status, spend per day, spend against budgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from aiconsole.charts.base import (
    BUDGET_COLOR,
    LAYOUT,
    STATUS_COLORS,
    STATUS_LABELS,
    axis_usd,
    empty_figure,
    failed_marker,
    provider_color,
)
from aiconsole.platform.money import format_usd


def throughput_chart(df: pd.DataFrame, *, title: str = "Throughput per hour") -> go.Figure:
    """Stacked hourly bars by provider, with each provider's failures stacked on top in its own hue, hatched.

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
                    marker=failed_marker(provider),
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


NO_BUDGET_HINT = "No budget is set either; admins can set one in the pipeline settings."


def daily_spend_chart(daily: pd.DataFrame, *, daily_budget_micros: int | None = None,
                      title: str = "Spend per day, by provider") -> go.Figure:
    """One stacked bar per day (provider colours) with the daily budget as a dashed line.

    `daily`: day, provider, cost_micros (as `live_status.CostMonitor.daily`, every day present, oldest first).
    """
    if daily.empty or int(daily["cost_micros"].sum()) == 0:
        hint = f"Daily budget: {format_usd(daily_budget_micros)}." if daily_budget_micros else NO_BUDGET_HINT
        return empty_figure(title, "No spend in these days yet.", hint)
    days = list(dict.fromkeys(daily["day"]))
    fig = go.Figure()
    for provider in dict.fromkeys(daily["provider"]):
        rows = daily[daily["provider"] == provider].set_index("day")["cost_micros"]
        micros = [int(rows.get(d, 0)) for d in days]
        fig.add_bar(x=days, y=[axis_usd(m) for m in micros], name=provider, marker={"color": provider_color(provider)},
                    customdata=[format_usd(m) for m in micros],
                    hovertemplate="%{x|%b %d}<br>" + provider + ": %{customdata}<extra></extra>")
    totals = daily.groupby("day", sort=False)["cost_micros"].sum()
    top = max(axis_usd(int(totals.max())), axis_usd(daily_budget_micros or 0))
    today = int(totals.get(days[-1], 0))
    fig.add_annotation(x=days[-1], y=axis_usd(today), text=f"today {format_usd(today)}", showarrow=False,
                       yshift=10, font={"size": 11})
    if daily_budget_micros:
        fig.add_hline(y=axis_usd(daily_budget_micros), line={"color": BUDGET_COLOR, "dash": "dash"},
                      annotation_text=f"daily budget {format_usd(daily_budget_micros)}",
                      annotation_position="top left")
    fig.update_layout(title=title, barmode="stack", height=360, yaxis={"title": "USD", "tickprefix": "$",
                                                                       "range": [0, top * 1.2]},
                      xaxis={"tickformat": "%b %d", "dtick": 86_400_000}, **LAYOUT)
    return fig


_PERIODS = (("today", "today_micros", "Today", "daily budget"), ("month", "month_micros", "This month",
                                                                   "monthly budget"))


def budget_chart(by_provider: pd.DataFrame, budgets: pd.DataFrame) -> go.Figure:
    """Today and this month as horizontal bars stacked by provider, each on its own scale, against its budget.

    `by_provider`: provider, today_micros, month_micros; `budgets`: period, spent_micros, budget_micros (None: no
    budget), projected_micros (as `live_status.CostMonitor`). The month's projection is a dotted mark.
    """
    title = "Spend against the budgets"
    plans: dict[str, dict[str, Any]] = {str(r["period"]): {str(k): v for k, v in r.items()}
                                        for r in budgets.to_dict("records")}
    if not plans or (by_provider.empty and not any(_budget(r) for r in plans.values())):
        return empty_figure(title, "No spend or budget data yet.", NO_BUDGET_HINT)
    heads = [_headline(name, plans.get(period, {}), period == "month") for period, _c, name, _b in _PERIODS]
    fig = make_subplots(rows=2, cols=1, subplot_titles=heads, vertical_spacing=0.42)
    for row, (period, column, name, budget_name) in enumerate(_PERIODS, start=1):
        plan: Mapping[str, Any] = plans.get(period, {})
        for provider, micros in zip(by_provider["provider"], by_provider[column], strict=True):
            fig.add_trace(go.Bar(
                y=[name], x=[axis_usd(int(micros))], orientation="h", name=provider, legendgroup=provider,
                showlegend=row == 1, marker={"color": provider_color(provider)},
                customdata=[format_usd(int(micros))],
                hovertemplate=provider + ": %{customdata}<extra></extra>"), row=row, col=1)
        budget, projected = _budget(plan), _projected(plan) if period == "month" else None
        if budget:
            fig.add_vline(x=axis_usd(budget), line={"color": BUDGET_COLOR, "width": 3}, row=row, col=1,
                          annotation_text=f"{budget_name} {format_usd(budget)}", annotation_position="top")
        if projected:
            fig.add_vline(x=axis_usd(projected), line={"color": "#555555", "dash": "dot", "width": 2}, row=row,
                          col=1, annotation_text=f"projected {format_usd(projected)}",
                          annotation_position="bottom")
        spent = int(plan.get("spent_micros") or 0)
        top = max(axis_usd(v) for v in (spent, budget or 0, projected or 0, 1))
        fig.update_xaxes(range=[0, top * 1.15], tickprefix="$", row=row, col=1)
        fig.update_yaxes(showticklabels=False, row=row, col=1)
    fig.update_layout(barmode="stack", height=320, **{**LAYOUT, "margin": {"l": 20, "r": 30, "t": 60, "b": 30},
                                                      "legend": {"orientation": "h", "y": -0.12}})
    return fig


def _budget(plan: Mapping[str, Any]) -> int | None:
    value = plan.get("budget_micros")
    return None if value is None or pd.isna(value) or not int(value) else int(value)


def _projected(plan: Mapping[str, Any]) -> int | None:
    value = plan.get("projected_micros")
    return None if value is None or pd.isna(value) else int(value)


def _headline(name: str, plan: Mapping[str, Any], with_projection: bool) -> str:
    """'Today: $2.10 of $5.00 (42%)', or '... (no budget)', with the month's projection."""
    spent, budget = int(plan.get("spent_micros") or 0), _budget(plan)
    text = f"{name}: {format_usd(spent)}"
    text += f" of {format_usd(budget)} ({spent / budget:.0%})" if budget else " (no budget set)"
    projected = _projected(plan)
    if with_projection and projected is not None:
        text += f" · projected {format_usd(projected)}"
    return text
