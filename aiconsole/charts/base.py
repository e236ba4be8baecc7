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

PROVIDER_COLORS: dict[str, str] = {
    "google-vision": "#4285F4",
    "gemini": "#9B59B6",
    "local": "#16A085",
}
# Unknown providers (plugins, renamed models) still get a stable colour, picked by a hash of the name.
SPARE_COLORS = ("#E67E22", "#2C3E50", "#C0392B", "#7F8C8D", "#D4AC0D", "#1ABC9C")
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
