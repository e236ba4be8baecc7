"""Plotly builders: structure, consistent colours, visible failures, budget marks, no-data placeholders."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from aiconsole.charts import figures as charts


@pytest.fixture
def throughput() -> pd.DataFrame:
    hours = pd.to_datetime(["2026-11-26 01:00", "2026-11-26 02:00"]).tz_localize("UTC")
    return pd.DataFrame(
        [(hours[0], "gemini", 10, 0), (hours[0], "local", 5, 2), (hours[1], "gemini", 7, 3)],
        columns=["hour", "provider", "completed", "failed"],
    )


def test_provider_colours_are_stable_everywhere(throughput: pd.DataFrame) -> None:
    assert charts.provider_color("gemini") == charts.PROVIDER_COLORS["gemini"]
    assert charts.provider_color("some-plugin") == charts.provider_color("some-plugin")
    assert charts.provider_color("some-plugin") in charts._SPARE_COLORS
    fig = charts.throughput_chart(throughput)
    latency = charts.latency_chart(pd.DataFrame(
        {"provider": ["gemini", "local"], "p50_latency_ms": [200.0, 40.0], "p95_latency_ms": [900.0, 90.0]}))
    spend = charts.spend_by_provider_chart(pd.DataFrame({"provider": ["gemini", "local"],
                                                         "today_micros": [5000, 1000]}))
    gemini_bar = next(t for t in fig.data if t.name == "gemini")
    assert gemini_bar.marker.color == charts.PROVIDER_COLORS["gemini"]
    assert list(latency.data[0].marker.color) == [charts.PROVIDER_COLORS["gemini"], charts.PROVIDER_COLORS["local"]]
    assert list(spend.data[0].marker.color) == [charts.PROVIDER_COLORS["gemini"], charts.PROVIDER_COLORS["local"]]


def test_throughput_is_stacked_and_shows_failures(throughput: pd.DataFrame) -> None:
    fig = charts.throughput_chart(throughput)
    assert fig.layout.barmode == "stack"
    names = [t.name for t in fig.data]
    assert names == ["gemini", "local", "gemini failed", "local failed"]
    failed = {t.name: list(t.y) for t in fig.data if t.name.endswith("failed")}
    assert failed == {"gemini failed": [0, 3], "local failed": [2]}
    assert all(t.marker.color == charts.FAILED_COLOR for t in fig.data if t.name.endswith("failed"))
    # A provider without failures gets no failure trace.
    no_fail = charts.throughput_chart(throughput.assign(failed=0))
    assert [t.name for t in no_fail.data] == ["gemini", "local"]


@pytest.mark.parametrize(
    "fig, message",
    [
        (charts.throughput_chart(pd.DataFrame(columns=["hour", "provider", "completed", "failed"])),
         "No photos processed in the last 24 hours yet."),
        (charts.spend_by_provider_chart(pd.DataFrame(columns=["provider", "today_micros"])), "No spend yet"),
        (charts.latency_chart(pd.DataFrame({"provider": ["local"], "p50_latency_ms": [None],
                                            "p95_latency_ms": [None]})), "No provider calls"),
        (charts.queue_status_chart({"pending": 0, "completed": 0}), "No photos yet."),
        (charts.budget_chart(pd.DataFrame(columns=["period", "spent_micros", "budget_micros",
                                                  "projected_micros"])), "No spend or budget data yet."),
    ],
)
def test_empty_data_says_so_and_what_to_do(fig: go.Figure, message: str) -> None:
    assert charts.is_empty_figure(fig)
    text = fig.layout.annotations[0].text
    assert message in text
    fig.to_json()  # serializable as Streamlit will send it


def test_empty_figures_give_a_hint() -> None:
    fig = charts.throughput_chart(pd.DataFrame(columns=["hour", "provider", "completed", "failed"]))
    assert "aiconsole up" in fig.layout.annotations[0].text
    fig = charts.spend_by_provider_chart(pd.DataFrame(columns=["provider", "today_micros"]), budget_micros=None)
    assert "set one in the pipeline settings" in fig.layout.annotations[0].text


def test_spend_chart_draws_budget_line_in_usd() -> None:
    df = pd.DataFrame({"provider": ["google-vision", "gemini"], "today_micros": [1_500_000, 2_250_000]})
    fig = charts.spend_by_provider_chart(df, budget_micros=5_000_000)
    assert list(fig.data[0].y) == [1.5, 2.25]
    assert list(fig.data[0].text) == ["$1.50", "$2.25"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].y0 == 5.0 and lines[0].y1 == 5.0
    assert "total $3.75 of $5.00 (75%)" in fig.layout.title.text
    assert fig.layout.yaxis.range[1] >= 5.0
    without = charts.spend_by_provider_chart(df)
    assert not [s for s in without.layout.shapes if s.type == "line"]


def test_budget_gauge_marks_budget_and_turns_red_when_over() -> None:
    fig = charts.budget_gauge(4_000_000, 10_000_000, title="Today")
    gauge = fig.data[0].gauge
    assert fig.data[0].value == 4.0
    assert gauge.shape == "bullet" and gauge.threshold.value == 10.0
    assert gauge.axis.range[1] == pytest.approx(11.0)
    over = charts.budget_gauge(12_000_000, 10_000_000, title="Today", projected_micros=30_000_000)
    assert over.data[0].gauge.bar.color == charts.BUDGET_COLOR
    assert over.data[0].gauge.axis.range[1] == pytest.approx(33.0)
    assert "projected $30.00" in over.data[0].title.text
    unset = charts.budget_gauge(1_000_000, None, title="This month")
    assert unset.data[0].mode == "number" and "no budget set" in unset.data[0].title.text


def test_budget_bars_from_cost_monitor_frame() -> None:
    budgets = pd.DataFrame(
        [("today", 5000, 10_000, 5000), ("month", 17_000, None, 20_491)],
        columns=["period", "spent_micros", "budget_micros", "projected_micros"],
    )
    fig = charts.budget_chart(budgets)
    assert len(fig.data) == 2
    today, month = fig.data
    assert today.gauge.threshold.value == pytest.approx(0.01)
    assert month.mode == "number" and "no budget set" in month.number.suffix
    assert "projected $0.02" in month.title.text


def test_latency_chart_groups_p50_and_p95() -> None:
    df = pd.DataFrame({"provider": ["google-vision", "gemini", "local"], "p50_latency_ms": [250.0, None, 40.0],
                       "p95_latency_ms": [895.0, None, 90.0]})
    fig = charts.latency_chart(df)
    assert fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["p50", "p95"]
    assert list(fig.data[0].x) == ["google-vision", "local"]  # no traffic, no bar
    assert list(fig.data[1].y) == [895.0, 90.0]


def test_queue_donut_uses_status_colours_and_total() -> None:
    fig = charts.queue_status_chart({"pending": 3, "processing": 1, "completed": 4, "needs_review": 2, "failed": 0})
    pie = fig.data[0]
    assert list(pie.labels) == ["Pending", "Processing", "Completed", "Needs review"]
    assert list(pie.values) == [3, 1, 4, 2]
    assert list(pie.marker.colors) == [charts.STATUS_COLORS[s] for s in ("pending", "processing", "completed",
                                                                         "needs_review")]
    assert "<b>10</b>" in fig.layout.annotations[0].text


def test_charts_module_does_not_import_streamlit() -> None:
    tree = ast.parse(Path(charts.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "streamlit" not in imported
