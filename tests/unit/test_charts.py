"""Plotly builders: structure, consistent colours, visible failures, budget marks, no-data placeholders."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from aiconsole.charts import base, control, live


@pytest.fixture
def throughput() -> pd.DataFrame:
    hours = pd.to_datetime(["2026-11-26 01:00", "2026-11-26 02:00"]).tz_localize("UTC")
    return pd.DataFrame(
        [(hours[0], "gemini", 10, 0), (hours[0], "local", 5, 2), (hours[1], "gemini", 7, 3)],
        columns=["hour", "provider", "completed", "failed"],
    )


def test_provider_colours_are_stable_everywhere(throughput: pd.DataFrame) -> None:
    assert base.provider_color("gemini") == base.PROVIDER_COLORS["gemini"]
    assert base.provider_color("some-plugin") == base.provider_color("some-plugin")
    assert base.provider_color("some-plugin") in base.SPARE_COLORS
    fig = live.throughput_chart(throughput)
    spend = live.spend_by_provider_chart(pd.DataFrame({"provider": ["gemini", "local"],
                                                         "today_micros": [5000, 1000]}))
    gemini_bar = next(t for t in fig.data if t.name == "gemini")
    assert gemini_bar.marker.color == base.PROVIDER_COLORS["gemini"]
    assert list(spend.data[0].marker.color) == [base.PROVIDER_COLORS["gemini"], base.PROVIDER_COLORS["local"]]


def test_throughput_is_stacked_and_shows_failures(throughput: pd.DataFrame) -> None:
    fig = live.throughput_chart(throughput)
    assert fig.layout.barmode == "stack"
    names = [t.name for t in fig.data]
    assert names == ["gemini", "local", "gemini failed", "local failed"]
    failed = {t.name: list(t.y) for t in fig.data if t.name.endswith("failed")}
    assert failed == {"gemini failed": [0, 3], "local failed": [2]}
    assert all(t.marker.color == base.FAILED_COLOR for t in fig.data if t.name.endswith("failed"))
    # A provider without failures gets no failure trace.
    no_fail = live.throughput_chart(throughput.assign(failed=0))
    assert [t.name for t in no_fail.data] == ["gemini", "local"]


@pytest.mark.parametrize(
    "fig, message",
    [
        (live.throughput_chart(pd.DataFrame(columns=["hour", "provider", "completed", "failed"])),
         "No photos processed in the last 24 hours yet."),
        (live.spend_by_provider_chart(pd.DataFrame(columns=["provider", "today_micros"])), "No spend yet"),
        (control.confidence_histogram_chart([0, 0], current=(0.8, 0.3), proposed=(0.8, 0.3)),
         "No tags in this window."),
        (live.queue_status_chart({"pending": 0, "completed": 0}), "No photos yet."),
        (live.budget_chart(pd.DataFrame(columns=["period", "spent_micros", "budget_micros",
                                                  "projected_micros"])), "No spend or budget data yet."),
    ],
)
def test_empty_data_says_so_and_what_to_do(fig: go.Figure, message: str) -> None:
    assert base.is_empty_figure(fig)
    text = fig.layout.annotations[0].text
    assert message in text
    fig.to_json()  # serializable as Streamlit will send it


def test_empty_figures_give_a_hint() -> None:
    fig = live.throughput_chart(pd.DataFrame(columns=["hour", "provider", "completed", "failed"]))
    assert "aiconsole up" in fig.layout.annotations[0].text
    fig = live.spend_by_provider_chart(pd.DataFrame(columns=["provider", "today_micros"]), budget_micros=None)
    assert "set one in the pipeline settings" in fig.layout.annotations[0].text


def test_spend_chart_draws_budget_line_in_usd() -> None:
    df = pd.DataFrame({"provider": ["google-vision", "gemini"], "today_micros": [1_500_000, 2_250_000]})
    fig = live.spend_by_provider_chart(df, budget_micros=5_000_000)
    assert list(fig.data[0].y) == [1.5, 2.25]
    assert list(fig.data[0].text) == ["$1.50", "$2.25"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].y0 == 5.0 and lines[0].y1 == 5.0
    assert "total $3.75 of $5.00 (75%)" in fig.layout.title.text
    assert fig.layout.yaxis.range[1] >= 5.0
    without = live.spend_by_provider_chart(df)
    assert not [s for s in without.layout.shapes if s.type == "line"]



def test_budget_bars_from_cost_monitor_frame() -> None:
    budgets = pd.DataFrame(
        [("today", 5000, 10_000, 5000), ("month", 17_000, None, 20_491)],
        columns=["period", "spent_micros", "budget_micros", "projected_micros"],
    )
    fig = live.budget_chart(budgets)
    assert len(fig.data) == 2
    today, month = fig.data
    assert today.gauge.threshold.value == pytest.approx(0.01)
    assert month.mode == "number" and "no budget set" in month.number.suffix
    assert "projected $0.02" in month.title.text



def test_queue_donut_uses_status_colours_and_total() -> None:
    fig = live.queue_status_chart({"pending": 3, "processing": 1, "completed": 4, "needs_review": 2, "failed": 0})
    pie = fig.data[0]
    assert list(pie.labels) == ["Pending", "Processing", "Completed", "Needs review"]
    assert list(pie.values) == [3, 1, 4, 2]
    assert list(pie.marker.colors) == [base.STATUS_COLORS[s] for s in ("pending", "processing", "completed",
                                                                         "needs_review")]
    assert "<b>10</b>" in fig.layout.annotations[0].text


# Charts draw for the console and for reports alike: plotting, frames and the platform's money, nothing else.
CHARTS_MAY_IMPORT = {"__future__", "collections", "hashlib", "typing", "pandas", "plotly", "aiconsole"}
CHARTS_MAY_IMPORT_FROM_AICONSOLE = ("aiconsole.platform.money", "aiconsole.platform.formatting", "aiconsole.charts")


@pytest.mark.parametrize("path", sorted(Path(base.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_charts_import_only_plotting_and_the_platforms_money(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= CHARTS_MAY_IMPORT, imported
    ours = {m for m in imported if m.startswith("aiconsole")}
    assert all(m.startswith(CHARTS_MAY_IMPORT_FROM_AICONSOLE) for m in ours), ours
