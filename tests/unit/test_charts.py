"""Plotly builders: structure, consistent colours, visible failures, budget marks, no-data placeholders."""

from __future__ import annotations

import ast
import itertools
import math
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
    spend = live.daily_spend_chart(_daily({"gemini": [5000, 0], "local": [1000, 2000]}))
    gemini_bar = next(t for t in fig.data if t.name == "gemini")
    assert gemini_bar.marker.color == base.PROVIDER_COLORS["gemini"]
    assert [t.marker.color for t in spend.data] == [base.PROVIDER_COLORS["gemini"], base.PROVIDER_COLORS["local"]]


# Colour vision deficiency: Machado, Oliveira & Fernandes (2009) at full severity, in linear RGB.
CVD = {
    "normal vision": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}
# CIE76 distance: ~2.3 is just noticeable; 20+ tells two series apart at a glance. Tritanopia (1 in 10,000)
# squeezes every blue/green pair, so it gets a lower bar.
MIN_DISTANCE = {"normal vision": 30, "protanopia": 30, "deuteranopia": 30, "tritanopia": 15}
# Failures are lighter fills hatched in the provider's full colour: the fills alone must stay apart too
# (the hatch, in the colours above, carries the rest for tritanopes).
MIN_FAILED_DISTANCE = {**MIN_DISTANCE, "tritanopia": 10}


def _lab(color: str, vision: str) -> tuple[float, float, float]:
    """CIELAB (D65) of `color` as a person with `vision` sees it."""
    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    rgb = [linear(int(color[i:i + 2], 16)) for i in (1, 3, 5)]
    r, g, b = (min(max(sum(m * c for m, c in zip(row, rgb, strict=True)), 0.0), 1.0) for row in CVD[vision])
    x, y, z = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, \
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _closest(colors: dict[str, str], vision: str) -> tuple[float, str, str]:
    return min((math.dist(_lab(colors[a], vision), _lab(colors[b], vision)), a, b)
               for a, b in itertools.combinations(colors, 2))


@pytest.mark.parametrize("vision", list(CVD))
def test_provider_colours_stay_apart_for_colour_blind_readers(vision: str) -> None:
    distance, a, b = _closest(dict(base.PROVIDER_COLORS), vision)
    assert distance >= MIN_DISTANCE[vision], f"{a} and {b} look alike with {vision} (distance {distance:.1f})"


@pytest.mark.parametrize("vision", list(CVD))
def test_each_providers_failures_are_drawn_in_its_own_hue(throughput: pd.DataFrame, vision: str) -> None:
    df = pd.concat([throughput, throughput.assign(provider="google-vision")])
    fig = live.throughput_chart(df)
    failed = {t.name: t.marker for t in fig.data if t.name.endswith(" failed")}
    assert set(failed) == {"gemini failed", "local failed", "google-vision failed"}
    fills = {name: m.color for name, m in failed.items()}
    distance, a, b = _closest(fills, vision)
    assert distance >= MIN_FAILED_DISTANCE[vision], f"{a} and {b} look alike with {vision} ({distance:.1f})"
    for name, marker in failed.items():
        provider = name.removesuffix(" failed")
        assert marker.pattern.shape == base.FAILED_PATTERN and marker.pattern.fgcolor == base.provider_color(provider)
        processed = next(t for t in fig.data if t.name == provider)
        assert processed.marker.pattern.shape in (None, "")  # processed solid, failed hatched


@pytest.mark.parametrize(
    "fig, message",
    [
        (live.throughput_chart(pd.DataFrame(columns=["hour", "provider", "completed", "failed"])),
         "No photos processed in the last 24 hours yet."),
        (live.daily_spend_chart(pd.DataFrame(columns=["day", "provider", "cost_micros"])), "No spend in these days"),
        (control.confidence_histogram_chart([0, 0], current=(0.8, 0.3), proposed=(0.8, 0.3)),
         "No tags in this window."),
        (live.queue_status_chart({"pending": 0, "completed": 0}), "No photos yet."),
        (live.budget_chart(pd.DataFrame(columns=["provider", "today_micros", "month_micros"]),
                           pd.DataFrame(columns=["period", "spent_micros", "budget_micros", "projected_micros"])),
         "No spend or budget data yet."),
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
    fig = live.daily_spend_chart(pd.DataFrame(columns=["day", "provider", "cost_micros"]), daily_budget_micros=None)
    assert "set one in the pipeline settings" in fig.layout.annotations[0].text


def _daily(micros: dict[str, list[int]]) -> pd.DataFrame:
    """day, provider, cost_micros for consecutive days ending 2026-11-26 (as CostMonitor.daily)."""
    n = len(next(iter(micros.values())))
    days = list(pd.date_range(end="2026-11-26", periods=n, freq="D"))
    return pd.DataFrame([(d, p, v) for p, values in micros.items() for d, v in zip(days, values, strict=True)],
                        columns=["day", "provider", "cost_micros"])


def test_daily_spend_is_one_stacked_bar_per_day_against_the_daily_budget() -> None:
    fig = live.daily_spend_chart(_daily({"google-vision": [1_500_000, 0, 2_000_000],
                                         "gemini": [250_000, 750_000, 2_250_000]}), daily_budget_micros=5_000_000)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["google-vision", "gemini"]
    assert all(len(t.x) == 3 for t in fig.data)  # every day, not one bar for today
    assert list(fig.data[0].y) == [1.5, 0.0, 2.0] and list(fig.data[1].customdata) == ["$0.25", "$0.75", "$2.25"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].y0 == 5.0 == lines[0].y1
    assert fig.layout.yaxis.range[1] >= 5.0
    assert any(a.text == "today $4.25" for a in fig.layout.annotations)
    without = live.daily_spend_chart(_daily({"gemini": [1, 2]}))
    assert not [s for s in without.layout.shapes if s.type == "line"]


def test_budget_bars_stack_providers_each_period_on_its_own_scale() -> None:
    by_provider = pd.DataFrame({"provider": ["google-vision", "gemini"], "today_micros": [1_000_000, 500_000],
                                "month_micros": [40_000_000, 20_000_000]})
    budgets = pd.DataFrame([("today", 1_500_000, 5_000_000, 1_500_000), ("month", 60_000_000, None, 180_000_000)],
                           columns=["period", "spent_micros", "budget_micros", "projected_micros"])
    fig = live.budget_chart(by_provider, budgets)
    assert fig.layout.barmode == "stack"
    today = [t for t in fig.data if t.xaxis == "x"]
    month = [t for t in fig.data if t.xaxis == "x2"]
    assert [(t.name, t.orientation, list(t.x)) for t in today] == [("google-vision", "h", [1.0]),
                                                                   ("gemini", "h", [0.5])]
    assert [list(t.x) for t in month] == [[40.0], [20.0]]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]  # one legend entry per provider
    # Today is scaled to its budget ($5), not drowned by the month's $180 projection.
    assert 5.0 <= fig.layout.xaxis.range[1] < 10 and fig.layout.xaxis2.range[1] >= 180
    lines = {(s.xref, s.x0) for s in fig.layout.shapes if s.type == "line"}
    assert lines == {("x", 5.0), ("x2", 180.0)}  # the daily budget, the month's projection (no monthly budget)
    heads = [a.text for a in fig.layout.annotations]
    assert "Today: $1.50 of $5.00 (30%)" in heads
    assert "This month: $60.00 (no budget set) · projected $180.00" in heads


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
