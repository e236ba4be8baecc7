"""The Quality page's Review tab: pick an order and filters, claim a photo, decide on each of its tags
(approve, reject with a reason, rename), add missing ones, submit and go on, by keyboard first.

Above the photo: this session's progress, what is left in the queue, the reviewer's pace and the backlog's
ETA at it, and the action bar (each button with its key, review_keys). A photo is claimed only once the
reviewer starts; roles without review.tags see the queue with every action disabled and why. Decisions
live in session state until Submit (review_state); the domain records them (quality.decisions), undoes a
submitted review (quality.review_undo) and reads the rest (quality.review_reads).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import review_reads as reads
from aiconsole.quality.decisions import submit_review
from aiconsole.quality.review_queue import (
    DEFAULT_CLAIM_SECONDS,
    LEFT_TTL_S,
    QueueFilters,
    QueueLeft,
    ReviewItem,
    claim_next,
    queue_left,
    release,
)
from aiconsole.quality.review_undo import undo_last_review
from aiconsole.ui.quality import review_keys as keys
from aiconsole.ui.quality import review_state as state
from aiconsole.ui.quality.review_filters import controls
from aiconsole.ui.quality.review_tags import photo, sources, tag_rows
from aiconsole.ui.widgets import flash, md, md_join, say, show_flashes, why_not

PERMISSION = "review.tags"
BACKLOG, BACKLOG_TTL_S = "rv_backlog", 30.0
COUNTED_NOTE_S = 5.0  # a count older than this says when it was made
_DONE = {"approve": "approved {}", "reject": "rejected {} ({})", "rename": "renamed {} to {}", "add": "added {}"}


def _now() -> datetime:
    return datetime.now(UTC)


def render(actor: Actor) -> None:
    """The Review tab (see the module), as a fragment: a key press reruns the review screen, not the page's
    other tabs."""
    st.fragment(_panel)(actor)


def _panel(actor: Actor) -> None:
    show_flashes()  # a fragment's rerun skips the page's preamble, which shows them otherwise
    ss = st.session_state
    ss.setdefault(state.SEED, secrets.randbelow(2**31))
    ss.setdefault(state.SKIPPED, [])
    order, filters = controls(actor)
    query = (actor.organization_id, order, filters)
    if ss.get(state.QUERY) != query:  # another organization, order or filters: the photo held may not belong now
        if state.item() is not None:
            state.show(None)
        ss[state.QUERY], ss[state.SKIPPED] = query, []
    left = _backlog(actor, order, filters)
    backlog = left.photos
    can = actor.allowed(PERMISSION)
    held = _held(actor, order, filters) if can and ss.get(state.ACTIVE) else None
    _progress(actor, left)
    _action_bar(actor, held)
    keys.legend()
    if ss.get(state.SHOW_PREVIOUS):
        _previous(actor)
    if held is None:
        _waiting(actor, backlog, order)
    else:
        pic, tags = st.columns([3, 2])
        with pic:
            photo(actor, held)
        with tags:
            if held.queue_order == "disagreement":
                sources(actor, held)
            tag_rows(actor, held)
    if can:
        keys.bind()
        asked, taken = state.take_focus(), state.take_release()
        if asked is not None:
            keys.focus(*asked)
        if taken is not None:
            keys.release(*taken)
    state.remember_shadow()


def _backlog(actor: Actor, order: str, filters: QueueFilters) -> QueueLeft:
    """What is left in the queue, counted again after BACKLOG_TTL_S, a submit, a skip or an undo (not on every
    key)."""
    seen = st.session_state.get(BACKLOG)
    if seen is not None and seen[0] == (order, filters) and time.monotonic() - seen[1] < BACKLOG_TTL_S:
        left: QueueLeft = seen[2]
        return left
    left = queue_left(actor, order=order, filters=filters)
    st.session_state[BACKLOG] = ((order, filters), time.monotonic(), left)
    return left


def _held(actor: Actor, order: str, filters: QueueFilters) -> ReviewItem | None:
    """The photo this reviewer holds: claimed when there is none, renewed when half its claim has passed."""
    held = state.item()
    if held is not None and (held.expires_at - _now()).total_seconds() > DEFAULT_CLAIM_SECONDS / 2:
        return held
    try:
        fresh = claim_next(actor, order=order, filters=filters, seed=int(st.session_state[state.SEED]),
                           skipped=list(st.session_state[state.SKIPPED]))
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return None
    if held is not None and fresh is not None and fresh.token == held.token:
        st.session_state[state.ITEM] = fresh  # the same claim, extended: the decisions made so far stay
    else:
        if held is not None:
            say("warning", "Your claim on photo #{} ended and it went back to the queue; its decisions were not "
                "saved.", f"{held.photo_id:,}")
        state.show(fresh)
    return fresh


def _progress(actor: Actor, queue: QueueLeft) -> None:
    started = st.session_state.get(state.STARTED)
    backlog = queue.photos
    pace = (reads.review_pace(actor, since=started, backlog=backlog) if started is not None
            else reads.pace(0, 0, backlog))
    done, left, rate, eta = st.columns(4)
    done.metric("Reviewed this session", fmt.count(pace.reviewed))
    if queue.counted_at is not None and (_now() - queue.counted_at).total_seconds() >= COUNTED_NOTE_S:
        say("caption", "Queue counted {} (recounted every {} for all reviewers).", fmt.ago(queue.counted_at, _now()),
            fmt.duration(LEFT_TTL_S), where=left)
    if queue.sampled_from is None:
        left.metric("Queue left", fmt.count(backlog), help="Photos awaiting review in this order with these "
                    "filters, including those other reviewers hold now.")
    else:
        left.metric("Needing review", fmt.count(backlog), help="Photos with a tag between the reject and accept "
                    "thresholds (or recorded as needs review) with these filters: the backlog the ETA is about.")
        if queue.sampled_exact:
            say("caption", "The random sample draws from {} with an undecided tag, accepted ones included.",
                fmt.plural(queue.sampled_from, "photo"), where=left)
        else:
            say("caption", "The random sample draws from about {} with an undecided tag, accepted ones included "
                "(estimated from a few hundred photos drawn at random).", fmt.plural(queue.sampled_from, "photo"),
                where=left)
    rate.metric("Your pace", f"{fmt.count(pace.per_hour)} / h" if pace.per_hour else fmt.MISSING,
                help="Reviews this session per hour since you started.")
    eta.metric("Backlog ETA", fmt.duration(pace.eta_s), help="How long the queue left takes at your pace.")


def _action_bar(actor: Actor, held: ReviewItem | None) -> None:
    ss = st.session_state
    no_photo = not actor.allowed(PERMISSION) or held is None
    cols = st.columns(6)
    label = ("Submit and next" if held is not None else
             "Check again" if ss.get(state.ACTIVE) else "Start reviewing")
    cols[0].button(label, key=keys.NEXT, type="primary", icon=":material/done_all:", width="stretch",
                   on_click=_next, args=(actor,), disabled=not actor.allowed(PERMISSION),
                   help=why_not(actor, PERMISSION) or "Enter or n")
    cols[1].button("Approve the rest", key=keys.APPROVE_ALL, icon=":material/check:", width="stretch",
                   on_click=state.approve_rest, disabled=no_photo, help=why_not(actor, PERMISSION) or "a")
    cols[2].button("Reject selected", key=keys.REJECT, icon=":material/block:", width="stretch",
                   on_click=state.reject_selected, disabled=no_photo,
                   help=why_not(actor, PERMISSION) or "r (again: the next reason)")
    cols[3].button("Skip", key=keys.SKIP, icon=":material/skip_next:", width="stretch", on_click=_skip,
                   args=(actor,), disabled=no_photo, help=why_not(actor, PERMISSION) or "s: back to the queue")
    nothing = not ss.get(state.HISTORY) and ss.get(state.LAST) is None
    cols[4].button("Undo", key=keys.UNDO, icon=":material/undo:", width="stretch", on_click=_undo, args=(actor,),
                   disabled=not actor.allowed(PERMISSION) or nothing,
                   help=why_not(actor, PERMISSION) or "z: the last change on this photo, else the last review")
    cols[5].button("Previous", key=keys.PREVIOUS, icon=":material/history:", width="stretch",
                   on_click=_toggle_previous, disabled=not actor.allowed(PERMISSION),
                   help=why_not(actor, PERMISSION) or "p: the photo you submitted last")


def _next(actor: Actor) -> None:
    """Enter / n: submit the photo held and go on; without one, start (or look again)."""
    ss = st.session_state
    held = state.item()
    if held is None:
        ss[state.ACTIVE] = True
        ss.setdefault(state.STARTED, _now())
        return
    added = state.added()
    try:
        out = submit_review(actor, token=held.token, decisions=state.decisions(held.tags), added=added)
    except AiconsoleError as exc:
        flash("error", "{}", exc)
        return
    if added:
        reads.invalidate_labels(actor.organization_id)
    ss[state.LAST] = out.review_id
    ss.pop(BACKLOG, None)
    flash("success", "Photo #{} saved: {} approved, {} rejected, {} renamed, {} added.", f"{out.photo_id:,}",
          out.approved, out.rejected, out.renamed, out.added)
    state.show(None)


def _skip(actor: Actor) -> None:
    held = state.item()
    if held is None:
        return
    try:
        release(actor, token=held.token)
    except AiconsoleError as exc:
        flash("error", "{}", exc)
    st.session_state[state.SKIPPED] = [*st.session_state.get(state.SKIPPED, []), held.photo_id]
    st.session_state.pop(BACKLOG, None)
    state.show(None)


def _undo(actor: Actor) -> None:
    """z: the last change on this photo; with none, the last submitted review."""
    if not state.undo_local():
        _undo_review(actor)


def _undo_review(actor: Actor) -> None:
    ss = st.session_state
    last = ss.get(state.LAST)
    if last is None:
        flash("info", "Nothing to undo yet.")
        return
    try:
        out = undo_last_review(actor, review_id=int(last))
    except AiconsoleError as exc:
        flash("error", "{}", exc)
        return
    ss[state.LAST] = None
    ss.pop(BACKLOG, None)
    ss[state.SKIPPED] = [i for i in ss.get(state.SKIPPED, []) if i != out.photo_id]
    flash("success", "Review of photo #{} undone: {} back as they were, {} removed.{}", f"{out.photo_id:,}",
          fmt.plural(out.restored, "tag"), fmt.plural(out.removed, "added tag"),
          " It is yours to decide again." if out.reclaimed else "")
    state.show(None)


def _toggle_previous() -> None:
    st.session_state[state.SHOW_PREVIOUS] = not st.session_state.get(state.SHOW_PREVIOUS)


def _previous(actor: Actor) -> None:
    """The last review this session submitted: what it decided, the photo's ground truth now, and Undo."""
    last = st.session_state.get(state.LAST)
    with st.container(border=True):
        if last is None:
            say("info", "No review to show: the photo you submit next shows here, with Undo.")
            return
        try:
            summary = reads.review_summary(actor, review_id=int(last))
        except AiconsoleError as exc:
            say("warning", "{}", exc)
            return
        say("markdown", "**Previous: photo #{}** · {}", f"{summary.photo_id:,}", summary.filename)
        lines = [_DONE[d.action].format(d.label_before or d.label_after, d.label_after or
                                        (d.reason or "").replace("_", " ")) for d in summary.decisions]
        say("caption", "{}", md_join(lines, "; ") if lines else "no decisions")
        say("caption", "Ground truth now: {}", md_join(summary.ground_truth) if summary.ground_truth else "no labels")
        st.button("Undo this review", key="rv_undo_review", icon=":material/undo:", on_click=_undo_review,
                  args=(actor,), help=md("Puts photo #{} back in the queue as it was, held by you.",
                                         f"{summary.photo_id:,}"))


def _waiting(actor: Actor, backlog: int, order: str) -> None:
    """No photo held: why, and what to do next."""
    ss = st.session_state
    if not actor.allowed(PERMISSION):
        say("info", "{} await review in this order. Your role ({}) sees the queue but cannot review: reviewers "
            "and admins do.", fmt.plural(backlog, "photo"), actor.role)
        return
    if not ss.get(state.ACTIVE):
        say("info", "{} await review in this order. Start reviewing (Enter) to take the first: the photo you "
            "hold is yours alone for {}.", fmt.plural(backlog, "photo"), fmt.duration(DEFAULT_CLAIM_SECONDS))
        return
    skipped = len(ss.get(state.SKIPPED, []))
    if backlog:
        say("info", "{} wait, but other reviewers hold them or you skipped them ({} skipped).",
            fmt.plural(backlog, "photo"), fmt.count(skipped))
        if skipped:
            st.button("Show my skipped photos again", key="rv_unskip", on_click=ss.__setitem__,
                      args=(state.SKIPPED, []))
        return
    say("success", "Nothing awaits review in this order with these filters.", icon=":material/task_alt:")
    if order == "disagreement":
        st.caption("Next: photos land here when two providers, models or prompt versions tagged them differently. "
                   "Run a second source over some photos (a prompt experiment or another model on the Pipeline "
                   "page), raise the threshold on the Disagreement tab, or clear the filters. Enter checks again.")
        return
    st.caption("Next: try the random sample (it also samples accepted tags, for an unbiased precision), clear the "
               "filters, or come back later: photos whose tags fall between the reject and accept thresholds "
               "(Pipeline page) land here as they are processed. Enter checks again.")
