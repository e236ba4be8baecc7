"""The Quality page: one tab per part of quality control, in the order of `TABS`.

Each tab is (title, render(actor)); a tab's error is shown in that tab alone, so one part failing never hides
the others. A new tab is one line in `TABS`.
"""

from __future__ import annotations

from aiconsole.platform.actor import Actor
from aiconsole.ui.quality import (
    agreement_panel,
    analytics_panel,
    batch_panel,
    disagreement_panel,
    review_panel,
    truth_panel,
)
from aiconsole.ui.widgets import Tab, tabs

TABS: tuple[Tab, ...] = (
    ("Review", review_panel.render),
    ("Analytics", analytics_panel.render),
    ("Ground truth", truth_panel.render),
    ("Batch corrections", batch_panel.render),
    ("Agreement", agreement_panel.render),
    ("Disagreement", disagreement_panel.render),
)


def render(actor: Actor) -> None:
    """Draw every tab of `TABS`."""
    tabs(actor, TABS)
