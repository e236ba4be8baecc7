"""Administration: the audit log. Who changed what and when, each change's before/after, and Revert."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from aiconsole.admin import reverts, users
from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.ui.widgets import code, confirmed_action, md, say

ALL = "All"
LIMIT = 500
FOCUS_KEY = "audit_focus"  # an entry opened through a revert link, shown until another is picked
# Column widths in px: what a person scans for (entry, when, who, what, can it be undone) fits a 1280-px window
# with the sidebar open (820 px of table); the summary starts in view and is whole in the detail below.
WIDTHS = {"entry": 60, "when": 145, "user": 190, "action": 140, "revert": 105, "summary": 420}


def render(actor: Actor) -> None:
    """Filters, the matching entries, and the picked entry's detail with its revert links and button."""
    try:
        entity_types, people, actions = audit.entity_types(actor), audit.actors(actor), audit.actions(actor)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    if not entity_types:
        st.info("Nothing has been recorded yet. Changes to users, prompts, the pipeline and providers appear "
                "here as soon as someone makes them.")
        return
    tz = users.organization_timezone(actor)
    try:
        rows = _filtered(actor, entity_types, people, actions, tz)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    if not rows:
        st.info("No entry matches these filters. Widen the date range, or set a filter back to 'All'.")
        return
    _table(rows, tz)
    by_id = {e.id: e for e in rows}
    picked = st.selectbox("Entry", list(by_id), key="audit_entry",
                          on_change=lambda: st.session_state.pop(FOCUS_KEY, None),
                          format_func=lambda i: f"#{i} · {fmt.when(by_id[i].created_at, tz)} · {by_id[i].actor} · "
                                                f"{by_id[i].action}")
    selected = st.session_state.get(FOCUS_KEY) or picked
    try:
        detail = audit.entry_detail(actor, audit_id=int(selected))
    except AiconsoleError as exc:
        st.session_state.pop(FOCUS_KEY, None)
        say("error", "{}", exc)
        return
    with st.container(border=True):
        _detail(actor, detail, tz)


def _value(field: str, value: Any, tz: str) -> str:
    # One text column (mixed types would not fit a dataframe column): money fields as dollars, moments in the
    # organization's zone, counts with separators, None as "—".
    if field.endswith("_micros") and isinstance(value, int) and not isinstance(value, bool):
        return fmt.usd_small(value)
    return fmt.stored(value, tz)


def _revert_state(entry: audit.AuditRow) -> str:
    if entry.reverted_by_id is not None:
        return f"reverted (#{entry.reverted_by_id})"
    return "revertible" if entry.reversible else ""


def _open(entry_id: int) -> None:
    st.session_state[FOCUS_KEY] = entry_id


def _filtered(actor: Actor, entity_types: list[str], people: list[str], actions: list[str],
              tz: str) -> list[audit.AuditRow]:
    """The filter row, and the (newest LIMIT) entries it selects (dates are days in the organization's zone)."""
    zone = ZoneInfo(tz)
    today = datetime.now(zone).date()
    c1, c2, c3, c4, c5 = st.columns([1, 1.2, 1, 1.3, 1.5])
    entity = c1.selectbox("Entity", [ALL, *entity_types], key="f_entity")
    who = c2.selectbox("User", [ALL, *people], key="f_actor")
    action = c3.selectbox("Action", [ALL, *actions], key="f_action")
    period = c4.date_input("Dates", value=(today - timedelta(days=30), today), key="f_dates",
                           help=md("Days in the organization's time zone ({}).", tz))
    search = c5.text_input("Summary contains", key="f_search", max_chars=200)
    days = [d for d in (period if isinstance(period, tuple) else (period,)) if isinstance(d, date)]
    start, end = (min(days), max(days)) if days else (None, None)
    return audit.list_entries(
        actor, entity_type=None if entity == ALL else entity, actor_email=None if who == ALL else who,
        action=None if action == ALL else action, search=search or None,
        since=None if start is None else datetime.combine(start, time(), zone),
        until=None if end is None else datetime.combine(end + timedelta(days=1), time(), zone), limit=LIMIT)


def _table(rows: list[audit.AuditRow], tz: str) -> None:
    st.dataframe(
        pd.DataFrame([{"entry": e.id, "when": e.created_at, "user": e.actor, "action": e.action,
                       "revert": _revert_state(e), "summary": e.summary, "entity": e.entity_type,
                       "entity id": e.entity_id or ""} for e in rows]),
        hide_index=True, width="stretch",
        column_config={
            "entry": st.column_config.NumberColumn(format="#%d", width=WIDTHS["entry"]),
            "when": st.column_config.DatetimeColumn(
                f"when ({fmt.zone(tz)})", format="YYYY-MM-DD HH:mm:ss", timezone=tz, width=WIDTHS["when"],
                help=md("In the organization's time zone ({}).", tz)),
            "user": st.column_config.TextColumn(width=WIDTHS["user"]),
            "action": st.column_config.TextColumn(width=WIDTHS["action"]),
            "revert": st.column_config.TextColumn(
                width=WIDTHS["revert"], help="Whether Revert can undo this change, or the entry that reverted it."),
            "summary": st.column_config.TextColumn(width=WIDTHS["summary"]),
        },
    )
    if len(rows) == LIMIT:
        say("caption", "Showing the newest {} entries; narrow the filters or the dates to see older ones.", LIMIT)


def _detail(actor: Actor, detail: audit.EntryDetail, tz: str) -> None:
    """One entry: who, what, the before/after diff, its revert links, and Revert when allowed."""
    entry = detail.entry
    st.subheader(f"Entry #{entry.id}")
    say("markdown", "**{}** · {} on {}{} · {}", entry.actor, code(entry.action), entry.entity_type,
        f" #{entry.entity_id}" if entry.entity_id else "", fmt.when(entry.created_at, tz))
    st.text(entry.summary or "(no summary)")
    changes = audit.diff(entry.before, entry.after)
    if changes:
        st.dataframe(pd.DataFrame([{"field": f, "before": _value(f, b, tz), "after": _value(f, a, tz)}
                                   for f, b, a in changes]),
                     hide_index=True, width="stretch", key="audit_diff")
    else:
        st.caption("This entry recorded no before/after state.")

    if detail.reverts is not None:
        say("info", "This entry reverted entry #{} ({}).", detail.reverts.id, detail.reverts.action)
        st.button(f"Open entry #{detail.reverts.id}", key="open_reverts", on_click=_open,
                  args=(detail.reverts.id,))
    if detail.reverted_by is not None:
        undo = detail.reverted_by
        say("info", "Reverted by {} at {} (entry #{}).", undo.actor, fmt.when(undo.created_at, tz), undo.id)
        st.button(f"Open revert entry #{undo.id}", key="open_reverted_by", on_click=_open, args=(undo.id,))
    elif not entry.reversible:
        st.caption("This entry cannot be reverted from here (it records an event, or the log does not hold "
                   "what is needed to restore it, such as a replaced secret).")
    elif allowed(actor.role, "audit.revert") and entry.organization_id == actor.organization_id:
        confirmed_action(
            "Revert this change", key=f"revert_{entry.id}", icon=":material/undo:",
            prompt=f"Restore the state before entry #{entry.id}? The revert is recorded as a new audit entry and "
                   "can itself be reverted. It is refused if this was changed again since.",
            run=lambda: reverts.revert(actor, audit_id=entry.id))
