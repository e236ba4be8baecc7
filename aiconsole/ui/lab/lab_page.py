"""The Testing Lab page: one tab per part of the lab, in the order of `TABS`.

Each tab is (title, render(actor)); a tab's error is shown in that tab alone. A new tab is one line in `TABS`.
"""

from __future__ import annotations

from aiconsole.platform.actor import Actor
from aiconsole.ui.lab import batch_panel, debug_panel
from aiconsole.ui.widgets import Tab, tabs

TABS: tuple[Tab, ...] = (
    ("Debug a photo", debug_panel.render),
    ("Batch tests", batch_panel.render),
)


def render(actor: Actor) -> None:
    """Draw every tab of `TABS`."""
    tabs(actor, TABS)
