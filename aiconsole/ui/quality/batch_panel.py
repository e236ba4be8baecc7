"""Batch corrections: pick tags by filter, a template and its parameters, preview how many rows it changes with
a sample of photos, confirm what will change, watch it run (st.progress), read the result; then the past
batches, each with what it did, its refused rows, the rows its undo kept, and Undo (confirmed, with progress).

Running and undoing are for admins (quality.batch); every other role sees the past batches only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from aiconsole.admin import users
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import batch_select as sel
from aiconsole.quality import batch_undo, batches
from aiconsole.quality import review_reads as reads
from aiconsole.quality.batch_select import BatchFilter, BatchPreview
from aiconsole.ui.widgets import Kind, Markdown, flash, inert, md, say, why_not

K = "bt_"  # every widget key of this panel starts so
TEMPLATE_NAMES = {"rename": "Rename a label", "remove": "Remove a label", "add": "Add a label to every photo",
                  "accept": "Accept at or above", "reject": "Reject at or below"}
DECIDED = {"not yet decided by a person": False, "decided by a person": True, "either": None}
KINDS: dict[str, Kind] = {"completed": "success", "failed": "error", "cancelled": "warning", "interrupted": "warning"}
SHOWN_ROWS = 50
SAMPLE_COLUMNS = 6


def render(actor: Actor) -> None:
    """The new-batch form (admins) and the past batches."""
    tz = users.organization_timezone(actor)
    _last_result()
    st.subheader("New batch")
    if actor.allowed("quality.batch"):
        _new_batch(actor)
    else:
        say("info", "Batch corrections change many photos at once: they are for admins ({}). Correct single "
            "photos in the Review tab.", why_not(actor, "quality.batch") or "")
    st.subheader("Past batches")
    _history(actor, tz)


def _words(state: str) -> str:
    return state.replace("_", " ")


def _filters(actor: Actor) -> BatchFilter | None:
    """The filter form; None (with the reason shown) when the picks do not make a filter."""
    with st.expander("Which tags", expanded=True, icon=":material/filter_list:"):
        choices = reads.filter_choices(actor)
        providers, versions = dict(choices.providers), dict(choices.prompt_versions)
        a, b, c = st.columns(3)
        label = a.selectbox("Label", choices.labels, index=None, placeholder="any label", accept_new_options=True,
                            key=K + "label")
        provider = b.selectbox("Provider", list(providers), index=None, placeholder="any provider",
                               format_func=lambda p: providers.get(p, p), key=K + "provider")
        models = (choices.models.get(provider, ()) if provider else
                  tuple(dict.fromkeys(m for ms in choices.models.values() for m in ms)))
        model = c.selectbox("Model", models, index=None, placeholder="any model", accept_new_options=True,
                            key=K + "model")
        d, e, f = st.columns(3)
        version = d.selectbox("Prompt version", list(versions), index=None, placeholder="any version",
                              format_func=lambda v: versions.get(v, str(v)), key=K + "version")
        first = e.date_input("Photos arrived from", value=None, key=K + "from")
        last = f.date_input("Photos arrived until", value=None, key=K + "until")
        low, high = st.slider("Confidence (both ends included)", 0.0, 1.0, (0.0, 1.0), step=0.01, key=K + "conf")
        g, h, i = st.columns(3)
        states = g.multiselect("Tag states", sel.FILTER_TAG_STATES, format_func=_words, placeholder="any state",
                               key=K + "states")
        decided = h.radio("Decided", list(DECIDED), key=K + "decided")
        photo_statuses = i.multiselect("Photo status", sel.FILTER_PHOTO_STATUSES, format_func=_words,
                                       placeholder="any status", key=K + "photo_status")
    try:
        queue = reads.queue_filters(actor, label=label, first_day=first, last_day=last)
        return sel.check_filter(BatchFilter(
            label=queue.label, min_confidence=None if low <= 0.0 else low, max_confidence=None if high >= 1.0 else high,
            provider=provider or None, model=model or None, prompt_version_id=version, since=queue.since,
            until=queue.until, tag_states=tuple(states), decided=DECIDED[decided],
            photo_statuses=tuple(photo_statuses)))
    except AiconsoleError as exc:
        say("warning", "{}", exc)
        return None


def _template(filters: BatchFilter) -> tuple[str, dict[str, Any]]:
    """The template picker and its parameters."""
    left, right = st.columns([2, 3])
    template = left.selectbox("Template", list(TEMPLATE_NAMES), format_func=TEMPLATE_NAMES.__getitem__,
                              key=K + "template")
    with right:
        if template == "rename":
            a, b = st.columns(2)
            old = a.text_input("Current label", key=K + "from_label", max_chars=200,
                               placeholder=filters.label or "e.g. puppy")
            return template, {"from_label": old or filters.label or "",
                              "to_label": b.text_input("New label", key=K + "to_label", max_chars=200)}
        if template in ("remove", "add"):
            return template, {"label": st.text_input("Label", key=K + f"{template}_label", max_chars=200)}
        key, default = ("at_least", 0.9) if template == "accept" else ("at_most", 0.3)
        return template, {key: st.number_input("Confidence", 0.0, 1.0, default, step=0.01, key=K + key)}


def _new_batch(actor: Actor) -> None:
    filters = _filters(actor)
    template, params = _template(filters or BatchFilter())
    if filters is None:
        return
    try:
        checked = sel.check_template(template, params)
    except AiconsoleError as exc:
        say("caption", "{}", exc)
        return
    signature = repr((filters, template, sorted(checked.items())))
    if st.button("Preview", key=K + "preview", icon=":material/preview:"):
        st.session_state[K + "shown"] = (signature, batches.preview(actor, filters=filters, template=template,
                                                                    params=checked))
    shown = st.session_state.get(K + "shown")
    if shown is None or shown[0] != signature:
        say("caption", "Preview shows how many rows the batch changes and a sample of their photos.")
        return
    preview: BatchPreview = shown[1]
    _preview(preview, template)
    if preview.matched == 0:
        return
    what = (f"{batches.describe(template, checked).capitalize()} on {batches.unit(template, preview.matched)} "
            f"({fmt.plural(preview.photos, 'photo')}; {sel.describe_filter(filters)}).")
    _confirmed(K + "run", "Run batch", icon=":material/playlist_add_check:",
               prompt=f"{what} Every change is recorded and the batch can be undone; rows someone changes "
                      "afterwards are kept as they are.",
               run=lambda bar: _run(actor, filters, template, checked, bar))


def _preview(preview: BatchPreview, template: str) -> None:
    if preview.matched == 0:
        say("info", "Nothing to change: {}", sel.no_match_hint(template))
        return
    say("info", "{} on {} would change.", batches.unit(template, preview.matched),
        fmt.plural(preview.photos, "photo"))
    columns = st.columns(SAMPLE_COLUMNS)
    for n, photo in enumerate(preview.sample):
        with columns[n % SAMPLE_COLUMNS]:
            if photo.thumbnail is not None:
                st.image(photo.thumbnail, width="stretch")
            else:
                say("caption", "No thumbnail: {}", photo.thumbnail_problem or "")
            say("caption", "#{} · {} · {}", photo.photo_id, photo.label, fmt.pct(photo.confidence, 0))
    if preview.photos > len(preview.sample):
        say("caption", "The newest {} of {}.", fmt.plural(len(preview.sample), "photo"),
            fmt.plural(preview.photos, "photo"))


def _progress_text(p: batches.BatchProgress, noun: Callable[[int], str], *, undo: bool) -> Markdown:
    if undo:
        return md("{} of {} · {} restored · {} kept", fmt.count(p.processed), noun(p.total), fmt.count(p.changed),
                  fmt.count(p.kept))
    return md("{} of {} · {} changed · {} failed", fmt.count(p.processed), noun(p.total), fmt.count(p.changed),
              fmt.count(p.failed))


def _bar(bar: Any, noun: Callable[[int], str], *, undo: bool) -> Callable[[batches.BatchProgress], None]:
    def update(p: batches.BatchProgress) -> None:
        bar.progress(min(1.0, p.processed / p.total) if p.total else 1.0, text=_progress_text(p, noun, undo=undo))
    return update


def _run(actor: Actor, filters: BatchFilter, template: str, params: dict[str, Any], bar: Any) -> None:
    done = batches.run_batch(actor, filters=filters, template=template, params=params,
                             progress=_bar(bar, lambda n: batches.unit(template, n), undo=False))
    st.session_state.pop(K + "shown", None)
    st.session_state[K + "result"] = done.id


def _undo(actor: Actor, batch: batches.BatchRow, bar: Any) -> None:
    batch_undo.undo_batch(actor, batch_id=batch.id, progress=_bar(bar, lambda n: fmt.plural(n, "change"), undo=True))
    st.session_state[K + "result"] = batch.id


def _confirmed(key: str, label: str, *, prompt: str, run: Callable[[Any], None], icon: str,
               disabled: bool = False, help: Markdown | None = None) -> None:
    """A button that asks before `run(progress bar)`; the outcome is shown after the rerun (`_last_result`)."""
    pending = key + "_pending"
    if st.button(label, key=key, icon=icon, disabled=disabled, help=inert(help) if help else None):
        st.session_state[pending] = True
    if not st.session_state.get(pending):
        return
    with st.container(border=True):
        say("warning", "{}", prompt)
        yes, no = st.columns(2)
        if yes.button("Confirm", key=key + "_confirm", type="primary", width="stretch"):
            st.session_state.pop(pending, None)
            try:
                run(st.progress(0.0, text="Starting"))
            except AiconsoleError as exc:
                flash("error", "{}", exc)
            st.rerun()
        if no.button("Cancel", key=key + "_cancel", width="stretch"):
            st.session_state.pop(pending, None)
            st.rerun()


def _last_result() -> None:
    """After a run or an undo, the past batches open on that batch (its outcome, refused and kept rows)."""
    batch_id = st.session_state.pop(K + "result", None)
    if batch_id is not None:
        st.session_state[K + "pick"] = batch_id


def _history(actor: Actor, tz: str) -> None:
    rows = batches.list_batches(actor)
    if not rows:
        say("info", "No batch yet. A batch applies one correction to every tag a filter selects, and can be "
            "undone.")
        return
    st.dataframe(pd.DataFrame([{
        "batch": f"#{r.id}", "what": r.description, "status": _words(r.status),
        "matched": fmt.count(r.matched), "changed": fmt.count(r.changed), "failed": fmt.count(r.failed),
        "undo": f"{fmt.count(r.restored)} restored, {fmt.count(r.kept)} kept" if r.undone_at else "—",
        "by": r.created_by or "system", "when": fmt.when(r.created_at, tz)} for r in rows]),
        hide_index=True, width="stretch")
    by_id = {r.id: r for r in rows}
    if st.session_state.get(K + "pick") not in by_id:
        st.session_state.pop(K + "pick", None)
    picked = st.selectbox("Batch", list(by_id), key=K + "pick",
                          format_func=lambda i: f"#{i} · {by_id[i].description} · {_words(by_id[i].status)}")
    _details(actor, by_id[picked], tz)


def _details(actor: Actor, batch: batches.BatchRow, tz: str) -> None:
    kind: Kind = KINDS.get(batch.status, "info")
    say(kind, "{}", batch.message if batch.status != "undone" else batch_undo.undo_summary(batch))
    filters = BatchFilter.from_json(batch.selection)
    say("caption", "On {}. Started {} by {}; {}.", sel.describe_filter(filters, tz), fmt.when(batch.created_at, tz),
        batch.created_by or "system", f"finished {fmt.when(batch.finished_at, tz)}" if batch.finished_at
        else "not finished")
    if batch.undone_at:
        say("caption", "Undone {} by {}.", fmt.when(batch.undone_at, tz), batch.undone_by or "system")
    _items(actor, batch, "failed", "Rows the database refused (nothing was changed on them):")
    _items(actor, batch, "kept", "Rows the undo kept as they are (changed or removed since the batch):")
    can = actor.allowed("quality.batch")
    if batch.status == "interrupted" and can:
        _confirmed(K + f"rest_{batch.id}", "Run the rest", icon=":material/replay:",
                   prompt=f"Run {batch.description} again as a new batch on what {sel.describe_filter(filters, tz)} "
                          f"selects now? The rows batch #{batch.id} changed no longer match and stay as they are; "
                          "the new batch can be undone on its own.",
                   run=lambda bar: _run(actor, filters, batch.template, batch.params, bar))
    _confirmed(K + f"undo_{batch.id}", f"Undo batch #{batch.id}", icon=":material/undo:",
               disabled=not can or not batch.undoable,
               help=why_not(actor, "quality.batch") or (None if batch.undoable else md("Undone already.")
                                                        if batch.status == "undone" else md("It is still running.")),
               prompt=f"Undo batch #{batch.id} ({batch.description})? Restores the {fmt.count(batch.changed)} "
                      "changes it made; rows someone changed since are kept as they are and listed.",
               run=lambda bar: _undo(actor, batch, bar))


def _values(values: dict[str, Any] | None) -> str:
    if not values:
        return "—"
    if "ground_truth" in values:
        labels = ", ".join(r["label"] for r in values["ground_truth"]) or "none"
        return f"{_words(values['status'])}; ground truth: {labels}"
    return f"'{values.get('label', '')}' {_words(str(values.get('review_state', '')))}".strip()


def _items(actor: Actor, batch: batches.BatchRow, which: str, title: str) -> None:
    if (which == "failed" and not batch.failed) or (which == "kept" and not batch.kept):
        return
    found = batches.batch_items(actor, batch_id=batch.id, which=which, limit=SHOWN_ROWS)
    say("caption", "{}", title)
    st.dataframe(pd.DataFrame([{
        "photo": f"#{r.photo_id}", "tag": "—" if r.tag_id is None else f"#{r.tag_id}", "change": r.action,
        "before": _values(r.before), "batch left": _values(r.after),
        **({"why": r.error or ""} if which == "failed" else {})} for r in found]),
        hide_index=True, width="stretch")
    total = batch.failed if which == "failed" else batch.kept
    if total > len(found):
        say("caption", "The first {} of {}.", fmt.count(len(found)), fmt.plural(total, "row"))
