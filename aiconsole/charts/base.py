"""What every chart shares: one colour per provider and per photo status, the layout, money on an axis, and
the placeholder a chart with nothing to show draws instead of empty axes.

Charts take DataFrames (or a few figures) and return a `go.Figure`; no Streamlit here, so the HTML report can
draw with them too. Money arrives as integer micro-dollars and is shown in USD.
"""

from __future__ import annotations

import hashlib
from typing import Any

import plotly.graph_objects as go

from aiconsole.platform.money import micros_to_usd

# Okabe & Ito's colour-blind-safe palette: each pair stays apart under protanopia, deuteranopia and
# tritanopia (tests/unit/test_charts.py measures it), where the earlier blue/purple/teal did not.
PROVIDER_COLORS: dict[str, str] = {
    "google-vision": "#0072B2",  # blue
    "gemini": "#E69F00",  # orange
    "local": "#009E73",  # bluish green
}
# Unknown providers (plugins, renamed models) still get a stable colour, picked by a hash of the name.
SPARE_COLORS = ("#CC79A7", "#D55E00", "#56B4E9", "#4D4D4D")
# A provider's failures are drawn in its own hue, lighter and hatched: never one red shared by all providers.
FAILED_TINT = 0.35
FAILED_PATTERN = "x"
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
FAILED_COLOR = "#EB5757"
BUDGET_COLOR = "#C0392B"
LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 40, "r": 20, "t": 50, "b": 40},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
}


def provider_color(provider: str) -> str:
    """The colour of `provider` on every chart."""
    color = PROVIDER_COLORS.get(provider)
    if color is None:
        digest = hashlib.sha256(provider.encode()).digest()
        color = SPARE_COLORS[digest[0] % len(SPARE_COLORS)]
    return color


def tint(color: str, amount: float) -> str:
    """`color` (#RRGGBB) mixed with white: 0 keeps it, 1 is white."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02X}" for c in rgb)


def failed_marker(provider: str) -> dict[str, Any]:
    """The marker of a provider's failures: its hue, lightened, hatched and outlined in the full colour."""
    color = provider_color(provider)
    return {"color": tint(color, FAILED_TINT), "pattern": {"shape": FAILED_PATTERN, "fgcolor": color},
            "line": {"color": color, "width": 1}}


def axis_usd(micros: Any) -> float:
    """Micro-dollars as a float of USD, for a position on an axis (labels stay exact: `format_usd`)."""
    return float(micros_to_usd(int(micros)))


def empty_figure(title: str, message: str, hint: str | None = None) -> go.Figure:
    """A figure that says there is no data yet and, in `hint`, what to do about it."""
    text = f"<b>{message}</b>" + (f"<br><span style='font-size:12px'>{hint}</span>" if hint else "")
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 15, "color": "#7F8C8D"}, align="center")
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, height=320,
                      **{k: v for k, v in LAYOUT.items() if k != "legend"})
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    """Whether `fig` is a no-data placeholder made by `empty_figure`."""
    return not fig.data and bool(fig.layout.annotations)
