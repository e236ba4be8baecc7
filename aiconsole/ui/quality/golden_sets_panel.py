"""Golden sets: every version (name, photos, labels, in use by a validation run), one version's details with
"Freeze a new version" and Delete, and the form that freezes a set from filters or a random sample."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from aiconsole.admin import users
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import golden_sets as gs
from aiconsole.ui.widgets import confirmed_action, flash, md, say, why_not

ANY = "any source"
TOP_LABELS = 12


def render(actor: Actor) -> None:
    """The list, the picked version, and the freeze form."""
    tz = users.organization_timezone(actor)
    rows = gs.list_golden_sets(actor)
    if rows:
        _table(rows, tz)
        _details(actor, rows, tz)
    else:
        st.info("No golden set yet. A golden set freezes reviewed photos and their labels, so the Testing Lab "
                "can score a candidate configuration against the same answers every time.")
    _freeze_form(actor, tz)


def _table(rows: list[gs.GoldenSetRow], tz: str) -> None:
    st.dataframe(pd.DataFrame([{"name": r.name, "version": f"v{r.version}", "photos": fmt.count(r.photo_count),
                                "labels": fmt.count(r.label_count), "in use": "locked" if r.locked else "—",
                                "frozen by": r.created_by or "system", "frozen": fmt.when(r.created_at, tz)}
                               for r in rows]), hide_index=True, width="stretch",
                 column_config={"in use": st.column_config.TextColumn(
                     help="Locked while a validation run uses it: it cannot be deleted then.")})


def _details(actor: Actor, rows: list[gs.GoldenSetRow], tz: str) -> None:
    by_id = {r.id: r for r in rows}
    picked = st.selectbox("Golden set", list(by_id), key="golden_pick",
                          format_func=lambda i: f"{by_id[i].name} v{by_id[i].version} · "
                                                f"{fmt.plural(by_id[i].photo_count, 'photo')}")
    row = by_id[picked]
    how = gs.describe(row, tz)
    say("caption", "{}.{}", how[:1].upper() + how[1:], f" {row.description}" if row.description else "")
    top = list(row.label_counts.items())[:TOP_LABELS]
    if top:
        say("caption", "Labels: {}{}", ", ".join(f"{label} {fmt.count(n)}" for label, n in top),
            f" and {fmt.plural(len(row.label_counts) - TOP_LABELS, 'more label')}"
            if len(row.label_counts) > TOP_LABELS else "")
    can = actor.allowed("quality.ground_truth")
    left, right = st.columns(2)
    with left:
        if st.button("Freeze a new version", key=f"golden_again_{row.id}", disabled=not can,
                     help=why_not(actor, "quality.ground_truth") or md("Same filters and sample size, today's "
                                                                       "ground truth."),
                     icon=":material/ac_unit:", width="stretch"):
            try:
                made = gs.freeze_again(actor, set_id=row.id)
                flash("success", "Froze {} v{}: {}.", made.name, made.version, fmt.plural(made.photo_count, "photo"))
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
    with right:
        confirmed_action("Delete this version", key=f"golden_delete_{row.id}",
                         prompt=f"Delete {row.name} v{row.version} ({fmt.plural(row.photo_count, 'photo')})? "
                                "Other versions stay.",
                         run=lambda: gs.delete_golden_set(actor, set_id=row.id),
                         disabled=not can or row.locked, icon=":material/delete:",
                         help=why_not(actor, "quality.ground_truth") or (
                             md("A validation run uses it.") if row.locked else None))


def _moment(day: date | None, tz: str) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), ZoneInfo(tz))


def _freeze_form(actor: Actor, tz: str) -> None:
    can = actor.allowed("quality.ground_truth")
    with st.expander("Freeze a golden set", icon=":material/ac_unit:"):
        name = st.text_input("Name", key="golden_name", max_chars=gs.MAX_NAME,
                             help="A name that exists gets its next version.")
        description = st.text_input("Description", key="golden_description", max_chars=500)
        c1, c2, c3, c4 = st.columns(4)
        label = c1.text_input("Ground-truth label", key="golden_label", max_chars=200)
        source = c2.selectbox("Source", [ANY, *gs.SOURCES], key="golden_source")
        since = c3.date_input("Set or reviewed from", value=None, key="golden_since",
                              help=md("A day in the organization's time zone ({}).", tz))
        until = c4.date_input("Until (not including)", value=None, key="golden_until")
        filters = gs.GoldenFilters(label=label or None, source=None if source == ANY else source,
                                   since=_moment(since, tz), until=_moment(until, tz))
        try:
            matched = gs.candidate_count(actor, filters=filters)
        except AiconsoleError as exc:
            say("error", "{}", exc)
            return
        mode = st.radio("Photos", ["All matched", "A random sample"], horizontal=True, key="golden_mode")
        sample = (int(st.number_input("Sample size", min_value=1, max_value=gs.MAX_GOLDEN_PHOTOS,
                                      value=min(max(matched, 1), 200), step=1, key="golden_sample"))
                  if mode == "A random sample" else None)
        say("caption", "{} match.", fmt.plural(matched, "reviewed photo"))
        if st.button("Freeze", key="golden_freeze", type="primary", disabled=not can or not name.strip(),
                     help=why_not(actor, "quality.ground_truth"), icon=":material/ac_unit:"):
            try:
                made = gs.create_golden_set(actor, name=name, filters=filters, sample=sample,
                                            description=description)
                flash("success", "Froze {} v{}: {}.", made.name, made.version, fmt.plural(made.photo_count, "photo"))
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
