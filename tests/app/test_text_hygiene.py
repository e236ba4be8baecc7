"""Every page for every role, scanned for internals leaking into what a person reads (issue 10 item 8).

Each page of the shell's table is rendered for each role on the seeded demo organization (conftest.py), and
every text a person sees is read as it is shown: markdown, captions, alerts and headings with the inert
escapes undone (widgets.shown), metric labels, values, deltas and help, widget labels, help and options,
expander and tab labels, and every dataframe cell as the grid draws it (a missing value is drawn "None", an
integer without a column format has no separators, a timezone-aware datetime without one shows its offset).
A metric value wider than its column (on a 1280-px window with the sidebar open) is cut to "…" by the
browser. A few states behind a click are read too: every audit action's newest entry, and a prompt test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.proto.Block_pb2 import Block as BlockProto
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import (
    AlertBase,
    Block,
    Code,
    Column,
    Dataframe,
    Element,
    Expander,
    HeadingBase,
    Markdown,
    Metric,
    Tab,
    Table,
    Text,
    Toast,
)
from text_leaks import leaks

from aiconsole.platform.db.models import ROLES
from aiconsole.platform.permissions import allowed
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.shell import PAGES
from aiconsole.ui.widgets import shown

APP = str(Path(__file__).resolve().parents[2] / "app.py")

# ---- what the dataframe grid draws -------------------------------------------------------------------

_SEPARATED = {"localized", "dollar", "euro", "yen", "accounting"}
_PRINTF = re.compile(r"%(,?)(?:\.(\d+))?([dif])")


def _number_text(value: float, fmt: str | None) -> str:
    if not fmt:  # Streamlit's automatic format: plain digits, up to four decimals
        return str(int(value)) if float(value).is_integer() else f"{value:.4f}".rstrip("0")
    if fmt in _SEPARATED:
        return f"{value:,.2f}"
    if fmt in ("compact", "bytes", "duration", "scientific", "engineering"):
        return ""  # these abbreviate by design
    if fmt == "plain":
        return repr(value)
    if fmt == "percent":
        return f"{value * 100:.2f}%"

    def printf(m: re.Match[str]) -> str:
        comma, places, kind = m.groups()
        spec = f"{',' if comma else ''}.{places or 0}f" if kind == "f" else f"{',' if comma else ''}d"
        return format(int(value) if kind != "f" else value, spec)

    return _PRINTF.sub(printf, fmt)


def grid_texts(df: pd.DataFrame, config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(column, text) for the header and every cell of `df` as Streamlit's grid draws them under `config`."""
    for name in df.columns:
        options = config.get(str(name), {})
        if options.get("hidden"):
            continue
        label = options.get("label") or str(name)
        fmt = options.get("type_config", {}).get("format")
        column = df[name]
        yield label, label
        if options.get("help"):
            yield label, shown(options["help"])
        if pd.api.types.is_bool_dtype(column):
            continue  # drawn as checkboxes
        for text in _cells(column, fmt):
            yield label, text


def _cells(column: pd.Series, fmt: str | None) -> Iterator[str]:
    aware = isinstance(column.dtype, pd.DatetimeTZDtype)
    for value in column:
        if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
            yield "None"
        elif isinstance(value, pd.Timestamp):
            # The grid's default is to the second, with the offset when the column is timezone-aware.
            offset = f"{value:%z}"
            with_offset = (aware and fmt is None) or "Z" in (fmt or "")
            yield (f"{value:%Y-%m-%d %H:%M:%S}" + (".000000" if "SSS" in (fmt or "") else "")
                   + (f"{offset[:3]}:{offset[3:]}" if with_offset else ""))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float):
            yield _number_text(value, fmt)
        else:
            yield str(value)


# ---- how wide a metric's value is ---------------------------------------------------------------------

MAIN_WIDTH = 820.0  # px of page content on a 1280-px window with the sidebar open (layout="wide"), measured
SIDEBAR_WIDTH = 240.0  # the sidebar's content (300 px wide with its padding)
GAP = 16.0  # between columns
BOX = 34.0  # a bordered container's, form's, expander's or metric's padding and border
# Source Sans at the metric value's 36 px, in px per character (measured in Chromium); others count as 18.
_WIDE = {**dict.fromkeys("0123456789$+#€£×≤abdeghknopquxyACEFJPRSTVXYZ", 18.5),
         **dict.fromkeys(".,:;·!|'", 9.0), " ": 7.2, "-": 11.2, "/": 12.6, "(": 10.9, ")": 10.9,
         **dict.fromkeys("ijlfrtI", 10.5), **dict.fromkeys("csvzL", 16.5), **dict.fromkeys("mwMW%—", 29.8),
         **dict.fromkeys("BDGHKNOQU", 23.5)}


def value_width(text: str) -> float:
    """The width in px that a metric value takes."""
    return sum(_WIDE.get(ch, 18.0) for ch in text)


# ---- reading a rendered page --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    page: str
    leak: str
    text: str


def _texts(node: Element) -> Iterator[str]:
    """What a person reads of one element (a dataframe's cells and a metric's value apart)."""
    if isinstance(node, Code | Text | Toast) or node.type in _SKIPPED:
        # Code blocks show user text verbatim on purpose; st.text and toasts are not markdown.
        if isinstance(node, Text | Toast):
            yield str(node.value)
        return
    if isinstance(node, Markdown | AlertBase | HeadingBase):
        yield shown(node.value)
    # Labels, help and radio options are markdown; a placeholder, a delta and a select box's options are
    # shown as they are, so an escape in them is what a person reads.
    for name, markdown in (("label", True), ("help", True), ("placeholder", False), ("delta", False)):
        text = getattr(node.proto, name, "")
        if isinstance(text, str) and text:
            yield shown(text) if markdown else text
    options = getattr(node.proto, "options", None)
    if options is not None and not isinstance(options, str):
        yield from (shown(str(o)) if node.type == "radio" else str(o) for o in options)


_SKIPPED = {"plotly_chart", "component_instance", "image", "json", "divider"}  # no text of ours to read


def _room(block: Block, width: float, columns: int, total: float) -> float:
    """The width inside `block`, a child of a block with `columns` columns of weight `total` in `width`."""
    if isinstance(block, Column):
        width = (width - GAP * (columns - 1)) * block.weight / (total or 1.0)
    proto = block.proto
    boxed = isinstance(block, Expander) or (
        isinstance(proto, BlockProto) and ((proto.HasField("flex_container") and proto.flex_container.border)
                                           or (proto.HasField("form") and proto.form.border)))
    return width - BOX if boxed else width


def read_page(at: AppTest) -> Iterator[tuple[str, str]]:
    """(leak name, text) for every leak in what the page shows, metric values cut by width included."""

    def check(text: str) -> Iterator[tuple[str, str]]:
        for name in leaks(text):
            yield name, text

    def walk(block: Block, width: float) -> Iterator[tuple[str, str]]:
        children = list(block.children.values())
        columns = [c for c in children if isinstance(c, Column)]
        for child in children:
            if isinstance(child, Block):
                if isinstance(child, Expander | Tab):
                    yield from check(shown(child.label))
                yield from walk(child, _room(child, width, len(columns), sum(c.weight for c in columns)))
                continue
            for text in _texts(child):
                yield from check(text)
            if isinstance(child, Metric):
                yield from check(child.value)
                room, need = width - (BOX if child.proto.show_border else 0), value_width(child.value)
                if need > room:
                    yield "cut metric value", f"{child.label}: {child.value} ({need:.0f} px > {room:.0f})"
            elif isinstance(child, Dataframe | Table):
                config = json.loads(child.proto.columns or "{}") if isinstance(child, Dataframe) else {}
                for column, text in grid_texts(child.value, config):
                    for name in leaks(text):
                        yield name, f"[{column}] {text}"

    yield from walk(at.main, MAIN_WIDTH)
    yield from walk(at.sidebar, SIDEBAR_WIDTH)


# ---- the walk -----------------------------------------------------------------------------------------

Visit = Callable[[AppTest, str], Iterator[tuple[str, str]]]


def _audit_entries(at: AppTest, role: str) -> Iterator[tuple[str, str]]:
    """Each action's newest entry in the audit log's detail panel (their diffs hold the stored values)."""
    picker = at.selectbox(key="f_action")
    for action in [o for o in picker.options if o != "All"]:
        at.selectbox(key="f_action").select(action).run()
        yield from read_page(at)
    at.selectbox(key="f_action").select("All").run()


def _prompt_test(at: AppTest, role: str) -> Iterator[tuple[str, str]]:
    """A prompt test against production on a sample photo (the local analyzer: no network)."""
    if not allowed(role, "testing.run"):
        return
    run = next(b for b in at.button if b.label == "Run test")
    run.click().run()
    assert not at.exception, at.exception
    yield from read_page(at)


def _connection_test(at: AppTest, role: str) -> Iterator[tuple[str, str]]:
    """Test connection on the local provider (no network): its result, or the refusal for this role."""
    button = next((b for b in at.button if b.key == "test_local"), None)
    if button is None or button.disabled:
        return
    button.click().run()
    assert not at.exception, at.exception
    yield from read_page(at)


EXTRA_STATES: dict[str, Visit] = {"audit_log": _audit_entries, "prompts": _prompt_test,
                                  "providers": _connection_test}


def _findings(at: AppTest, role: str) -> Iterator[Finding]:
    for page in PAGES:
        if not allowed(role, page.permission):
            continue
        at.switch_page(page.script).run()
        assert not at.exception, (page.key, at.exception)
        for leak, text in read_page(at):
            yield Finding(page.key, leak, text)
        if page.key in EXTRA_STATES:
            for leak, text in EXTRA_STATES[page.key](at, role):
                yield Finding(page.key, leak, text)


@pytest.mark.parametrize("role", ROLES)
def test_no_internals_leak_into_any_page(app_as, role: str) -> None:  # type: ignore[no-untyped-def]
    at = app_as(role)
    assert at.session_state[ACTOR_KEY].role == role
    found = list(_findings(at, role))
    new = sorted({(f.page, f.leak, f.text[:160]) for f in found})
    assert not new, "\n".join(f"{page}: {leak}: {text!r}" for page, leak, text in new)


def test_the_login_page_leaks_nothing(demo_env: dict[str, str]) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.text_input(key="login_email") is not None
    assert not list(read_page(at))


# ---- the scanner itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "leak"), [
    ("Monthly budget $6E+2", "E-notation"),
    ("cost 1.2e-05 per photo", "E-notation"),
    ("locked until None", "None"),
    ("avg confidence nan", "nan"),
    ("Don&#x27;t", "HTML entity"),
    ("Tom &amp; Jerry", "HTML entity"),
    (r"rules\.update", "backslash escape"),
    (r"see https\://example\.com", "backslash escape"),
    ("2026-12-02 18:44:30.085040", "microseconds"),
    ("at 18:44:30+00:00", "raw UTC offset"),
    ("2026-12-02T18:44:30", "ISO timestamp"),
    ("1 worker(s)", "(s) plural"),
    ("last 1 days", "1 with a plural noun"),
    ("41957 photos", "no thousands separator"),
    ("$3173.50 spent", "no thousands separator"),
    ("✅ accepted", "emoji glyph"),
    ("🟡 needs review", "emoji glyph"),
])
def test_the_scanner_flags_each_leak(text: str, leak: str) -> None:
    assert leak in leaks(text)


@pytest.mark.parametrize("text", [
    "41,957 photos", "$3,173.50 spent", "entry #41957", "127.0.0.1:8501", "v1024", "since 2024",
    "2026-12-02 18:44:30 EST", "1 worker", "2 workers", "0.000672", "$0.00067", "—", "never",
    ":material/check_circle: accepted", "0.4 ≤ confidence < 0.8", "Switch…", "photo_12345", "1 h 11 min",
    "Nonesuch", "photos/2048",
])
def test_the_scanner_passes_clean_text(text: str) -> None:
    assert leaks(text) == []


def test_the_grid_draws_missing_values_unformatted_numbers_and_aware_datetimes_as_leaks() -> None:
    when = pd.Timestamp("2026-12-02 18:44:30.085040", tz="UTC")
    df = pd.DataFrame({"locked until": [None], "photos": [41957], "count": [41957], "at": [when],
                       "shown at": [when]})
    config = {"count": {"type_config": {"type": "number", "format": "%,d"}},
              "shown at": {"type_config": {"type": "datetime", "format": "YYYY-MM-DD HH:mm:ss"}}}
    drawn = [text for _column, text in grid_texts(df, config)]
    assert drawn == ["locked until", "None", "photos", "41957", "count", "41,957", "at",
                     "2026-12-02 18:44:30+00:00", "shown at", "2026-12-02 18:44:30"]


def test_metric_width_matches_what_chromium_cut() -> None:
    # Measured: "$0.000672" (152 px) fits a quarter of the page (193 px) and is cut in a quarter of a
    # 2/5 column (68 px); "12,345,678" (161 px) is cut in a bordered fifth (119 px).
    assert abs(value_width("$0.000672") - 152) < 8 and abs(value_width("12,345,678") - 161) < 8
    assert value_width("1 h 11 min") < (MAIN_WIDTH - 3 * GAP) / 4
