"""One console page as the shell's page table describes it, and the preamble every page runs.

The preamble: re-validate the session, draw the sidebar, check the page's permission, draw the title (with
the page's toolbar beside it, if it has one) and the queued flash messages, then the page body inside one
error boundary: an `AiconsoleError` the body does not handle itself shows as its message, not a traceback.
Any other exception is a bug and keeps Streamlit's handling: with .streamlit/config.toml's
client.showErrorDetails = "none" the browser gets Streamlit's generic notice and the server log the traceback,
and AppTest reports it as an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.ui import session, sidebar
from aiconsole.ui.widgets import say, show_flashes

TITLE_ROW = (2, 1)  # title : toolbar widths, for a page with a toolbar


@dataclass(frozen=True)
class Page:
    """A page: where the navigation lists it, who may open it, and the functions that draw it."""

    key: str  # pages/<key>.py is the file Streamlit runs; it calls shell.run_page(key)
    title: str
    icon: str
    permission: str
    section: str
    url_path: str
    render: Callable[[Actor], None]
    toolbar: Callable[[], None] | None = None  # widgets beside the title (their values reach render by key)

    @property
    def script(self) -> str:
        """The page file, relative to app.py (what st.Page and AppTest.switch_page are given)."""
        return f"pages/{self.key}.py"

    def run(self) -> None:
        """The preamble, then the body: what every page file does."""
        actor = session.signed_in()
        sidebar.render(actor)
        session.require_permission(actor, self.permission)
        heading = f"{self.icon} {self.title}"
        if self.toolbar is None:
            st.title(heading)
        else:
            head, tools = st.columns(TITLE_ROW, vertical_alignment="bottom")
            head.title(heading)
            with tools:
                self.toolbar()
        show_flashes()
        try:
            self.render(actor)
        except AiconsoleError as exc:
            say("error", "{}", exc)
