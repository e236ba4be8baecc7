"""The blind second review on the Agreement tab: take a photo routed to double review (never one you reviewed
first), see it with the tags as the AI produced them, approve or reject each (with a reason), submit or give it
back. The first reviewer's decisions are never shown; submitting changes no tag and no ground truth."""

from __future__ import annotations

import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import review_queue, second_review
from aiconsole.quality import review_reads as reads
from aiconsole.quality.decisions import REJECT_REASONS, TagDecision
from aiconsole.ui.widgets import flash, md, say, why_not

HELD = "agreement_second_item"


def render(actor: Actor) -> None:
    """The second-review queue's count, Take, and the held photo's form."""
    st.subheader("Second review")
    can = actor.allowed("review.tags")
    held = st.session_state.get(HELD)
    if held is None:
        waiting = second_review.waiting_count(actor)
        say("caption", "{} for you to review a second time, blind to the first review.",
            fmt.plural(waiting, "photo waits", "photos wait"))
        if st.button("Take a photo for a second review", key="agreement_take", disabled=not can or not waiting,
                     help=why_not(actor, "review.tags"), icon=":material/rate_review:"):
            try:
                st.session_state[HELD] = second_review.claim_second(actor)
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
        return
    _form(actor, held)


def _form(actor: Actor, held: review_queue.ReviewItem) -> None:
    say("caption", "Photo #{}: decide on each tag as the AI produced it.", held.photo_id)
    try:
        st.image(reads.photo_image(actor, photo_id=held.photo_id).jpeg, width=480)
    except AiconsoleError as exc:
        say("warning", "The photo cannot be shown: {} Its tags can still be decided.", exc)
    decisions = []
    for tag in held.tags:
        left, right = st.columns([3, 2])
        action = left.radio(md("{} · {} · {}", tag.label, fmt.number(tag.confidence, 2),
                               tag.verdict.replace("_", " ")),
                            ["approve", "reject"], horizontal=True, key=f"agreement_tag_{tag.tag_id}")
        reason = right.selectbox("Reason", REJECT_REASONS, key=f"agreement_reason_{tag.tag_id}",
                                 format_func=lambda r: r.replace("_", " "), disabled=action != "reject")
        decisions.append(TagDecision(tag_id=tag.tag_id, action=action,
                                     reason=reason if action == "reject" else None))
    submit, give_back = st.columns(2)
    if submit.button("Submit second review", key="agreement_submit", type="primary", icon=":material/check:",
                     help=md("Recorded for agreement only: the photo's tags and ground truth stay as they are.")):
        try:
            out = second_review.submit_second_review(actor, token=held.token, decisions=decisions)
            flash("success", "Second review of photo #{} saved: {} approved, {} rejected.", out.photo_id,
                  out.approved, out.rejected)
        except AiconsoleError as exc:
            flash("error", "{}", exc)
        st.session_state.pop(HELD, None)
        st.rerun()
    if give_back.button("Give it back", key="agreement_release", icon=":material/undo:"):
        review_queue.release(actor, token=held.token)
        st.session_state.pop(HELD, None)
        st.rerun()
