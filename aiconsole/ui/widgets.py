"""Small reusable pieces: messages that render user text inert, flash messages, confirmed actions.

Streamlit renders the body of st.error/success/warning/info/toast/caption/markdown (and widget labels and
help) as markdown: an email `![t](http://host/x.png)` would load that image. So every message with a part that
comes from a user, a provider or an exception is built here: `say(kind, template, *values)` and
`md(template, *values)` fill the developer's template (a literal: trusted markdown with `{}` placeholders)
with each value made `inert`. tests/unit/test_ui_markdown.py holds every module under aiconsole/ui/ to that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

import streamlit as st

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed

FLASH_KEY = "_aiconsole_flash"
Kind = Literal["success", "error", "warning", "info", "toast", "caption", "markdown"]
_ICONS = frozenset({"success", "error", "warning", "info", "toast"})  # the kinds that take an icon

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped one is literal
# text: no emphasis, link, image, HTML, table, heading or list marker, no `$` math, no `:red[...]` directive.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
# Streamlit turns some patterns into icons, emoji or links after escapes are resolved (on the text itself):
# `:name:` shortcodes (:material_home:, :smile:, :streamlit:), bare http(s)/www URLs and email addresses
# (mailto: links). An invisible word joiner inside each keeps the text as it reads while no pattern matches.
_JOINER = "\u2060"
_SHORTCODE = re.compile(r":(?=[\w+-]+:)")
_BARE_URL = re.compile(r"(?i)\b(https?|www)(?=:|\.)")
_EMAIL_AT = re.compile(r"(?<=[\w.+-])@(?=[\w-])")


class Markdown(str):
    """Markdown that is safe to render: made by `inert`, `md`, `code` or `md_join`, never raw user text."""

    __slots__ = ()


def inert(value: Any) -> Markdown:
    """`value` as markdown that renders as exactly its text (already-safe `Markdown` passes unchanged)."""
    if isinstance(value, Markdown):
        return value
    text = _BARE_URL.sub(lambda m: m.group(1) + _JOINER, _SHORTCODE.sub(":" + _JOINER, str(value)))
    text = _EMAIL_AT.sub("@" + _JOINER, text)
    return Markdown(_PUNCTUATION.sub(r"\\\1", text))


def shown(markdown: str) -> str:
    """The text a reader sees for inert markdown: escapes and joiners removed (for tests and logs)."""
    return _ESCAPED.sub(r"\1", markdown).replace(_JOINER, "")


def md(template: str, *values: Any) -> Markdown:
    """The developer's `template` (a literal; `{}` placeholders, `{{` for a brace) with each value inert."""
    return Markdown(template.format(*(inert(v) for v in values)))


def why_not(actor: Actor, permission: str) -> Markdown | None:
    """Why the actor's role may not do `permission` (None when it may): a disabled button's help."""
    return None if allowed(actor.role, permission) else md("Your role ({}) cannot do this.", actor.role)


def code(value: Any) -> Markdown:
    """`value` as an inline code span (literal inside; its fence is longer than any backtick run in it)."""
    text = " ".join(str(value).splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" or not text.strip() else ""
    return Markdown(f"{fence}{pad}{text}{pad}{fence}")


def md_join(parts: Iterable[Any], separator: str = ", ") -> Markdown:
    """The parts, each inert (or already `Markdown`), joined by a literal separator."""
    return Markdown(separator.join(inert(p) for p in parts))


def say(kind: Kind, template: str, *values: Any, icon: str | None = None, where: Any = None) -> None:
    """Show md(template, *values) as st.<kind> (in `where`, e.g. a column or the sidebar, when given)."""
    show: Callable[..., Any] = getattr(st if where is None else where, kind)
    text = md(template, *values)
    if icon is not None and kind in _ICONS:
        show(text, icon=icon)
    else:
        show(text)


def flash(kind: str, template: str, *values: Any) -> None:
    """Queue md(template, *values) for the next run (survives st.rerun); values are escaped like say's."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, md(template, *values)))


def show_flashes() -> None:
    """Render and clear queued messages."""
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        say(kind if kind in ("success", "error", "warning") else "info", "{}", inert(message))


def confirmed_action(
    label: str,
    *,
    key: str,
    prompt: str,
    run: Callable[..., Any],
    reason_label: str | None = None,
    disabled: bool = False,
    help: str | None = None,
    icon: str | None = None,
) -> None:
    """A button that asks for confirmation before `run` (which returns an object with `.message`).

    `prompt` is plain text (shown inert). With `reason_label`, the confirmation asks for a reason and passes
    it to `run(reason)`.
    """
    pending = f"_pending_{key}"
    if st.button(label, key=key, disabled=disabled, help=help, icon=icon, width="stretch"):
        st.session_state[pending] = True
    if not st.session_state.get(pending):
        return
    with st.container(border=True):
        say("warning", "{}", prompt)
        reason = st.text_input(reason_label, key=f"{key}_reason", max_chars=500) if reason_label else None
        yes, no = st.columns(2)
        if yes.button("Confirm", key=f"{key}_confirm", type="primary", width="stretch"):
            st.session_state.pop(pending, None)
            try:
                report = run(reason) if reason_label else run()
                flash("success", "{}", getattr(report, "message", report))
            except AiconsoleError as exc:
                flash("error", "{}", exc)
            st.rerun()
        if no.button("Cancel", key=f"{key}_cancel", width="stretch"):
            st.session_state.pop(pending, None)
            st.rerun()


Tab = tuple[str, Callable[[Actor], None]]


def tabs(actor: Actor, table: Iterable[Tab]) -> None:
    """Draw a page's tabs, each (title, render(actor)) in order; a tab's error is shown in that tab alone, so one
    part failing never hides the others."""
    table = tuple(table)
    for tab, (_title, draw) in zip(st.tabs([title for title, _draw in table]), table, strict=True):
        with tab:
            try:
                draw(actor)
            except AiconsoleError as exc:
                say("error", "{}", exc)
