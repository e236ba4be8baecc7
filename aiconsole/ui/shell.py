"""The console shell: the page table (the one place naming each page's title, icon and permission), page
config, the auth gate and navigation by permission. `streamlit run app.py` calls `run`; each pages/<key>.py
calls `run_page(key)`."""

from __future__ import annotations

import re
from functools import cache
from urllib.parse import urlsplit

import streamlit as st
from PIL import Image, ImageDraw

from aiconsole.platform.permissions import allowed
from aiconsole.ui import login, session
from aiconsole.ui.admin import audit_page, users_page
from aiconsole.ui.control import pipeline_page, prompts_page, providers_page
from aiconsole.ui.lab import lab_page
from aiconsole.ui.live import status_page
from aiconsole.ui.page import Page
from aiconsole.ui.quality import quality_page

# In navigation order: key, title, icon, permission, section, url path, render. Only pages that work are listed.
PAGES: tuple[Page, ...] = (
    Page("live_status", "Live Status", ":material/monitor_heart:", "live_status.view", "Monitor", "live_status",
         status_page.render, toolbar=status_page.toolbar),
    Page("pipeline", "Pipeline", ":material/tune:", "pipeline.view", "Control", "pipeline", pipeline_page.render),
    Page("prompts", "Prompts", ":material/edit_note:", "pipeline.view", "Control", "prompts", prompts_page.render),
    Page("providers", "Providers", ":material/key:", "pipeline.view", "Control", "providers",
         providers_page.render),
    Page("quality", "Quality", ":material/fact_check:", "quality.view", "Quality", "quality", quality_page.render),
    Page("testing_lab", "Testing Lab", ":material/science:", "lab.view", "Testing", "testing_lab", lab_page.render),
    Page("users", "Users", ":material/group:", "users.view", "Administration", "users", users_page.render),
    Page("audit_log", "Audit log", ":material/history:", "audit.view", "Administration", "audit_log",
         audit_page.render),
)
_BY_KEY = {p.key: p for p in PAGES}
BRAND = "#3355dd"  # .streamlit/config.toml's primaryColor


@cache
def favicon() -> Image.Image:
    """A camera drawn here: Streamlit fetches a :material/...: page icon from fonts.gstatic.com, and the
    console makes no request outside its own origin."""
    icon = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((4, 16, 60, 56), radius=10, fill=BRAND)
    draw.rectangle((22, 9, 42, 18), fill=BRAND)
    draw.ellipse((20, 22, 44, 46), fill="white")
    draw.ellipse((26, 28, 38, 40), fill=BRAND)
    return icon


def run() -> None:
    """Entry point called by app.py on every script run."""
    st.set_page_config(page_title="aiconsole", page_icon=favicon(), layout="wide")
    actor = session.resolve_actor()
    if actor is None:
        st.navigation(login_pages(), position="hidden").run()
        return
    sections: dict[str, list[st.Page]] = {}
    for page in PAGES:
        if allowed(actor.role, page.permission):
            sections.setdefault(page.section, []).append(
                st.Page(page.script, title=page.title, icon=page.icon, url_path=page.url_path))
    st.navigation(sections).run()


def login_pages() -> list[st.Page]:
    """While logged out, every path shows the login form under its own URL: the address bar keeps a deep link
    (or a reloaded page), and the rerun after the login opens that page. An unknown path gets the form too,
    not "Page not found"."""
    paths = dict.fromkeys(["login", *(p.url_path for p in PAGES), *_requested_path()])
    return [st.Page(login.render, title="Log in", icon=":material/login:", url_path=path, default=path == "login")
            for path in paths]


def _requested_path() -> list[str]:
    """The page path in the browser's address bar (without server.baseUrlPath), when it is one segment."""
    url = st.context.url
    if not url:
        return []
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    path = urlsplit(url).path.strip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base):].strip("/")
    return [path] if re.fullmatch(r"[A-Za-z0-9_-]+", path) else []


def run_page(key: str) -> None:
    """What pages/<key>.py does: the common preamble, then the page's body."""
    _BY_KEY[key].run()
