"""The Testing Lab page: one tab per part of the lab, in the order of `TABS`.

Each tab is (title, render(actor)); a tab's error is shown in that tab alone. A new tab is one line in `TABS`.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.ui.lab import batch_panel, debug_panel
from aiconsole.ui.widgets import say

TABS: tuple[tuple[str, Callable[[Actor], None]], ...] = (
    ("Debug a photo", debug_panel.render),
    ("Batch tests", batch_panel.render),
)


def render(actor: Actor) -> None:
    """Draw every tab of `TABS`."""
    for tab, (_title, draw) in zip(st.tabs([title for title, _draw in TABS]), TABS, strict=True):
        with tab:
            try:
                draw(actor)
            except AiconsoleError as exc:
                say("error", "{}", exc)
