"""The blind second review on the Agreement tab: take a photo routed to double review (never one you reviewed
first), see it with the tags as the AI produced them, approve, reject (with a reason) or rename each (type the
new label or pick one the organization uses), add labels the AI missed, submit or give it back. The first
reviewer's decisions are never shown; submitting changes no tag and no ground truth (the decisions are recorded
for agreement only)."""

from __future__ import annotations

import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError, ValidationFailed
from aiconsole.quality import review_queue, second_review
from aiconsole.quality import review_reads as reads
from aiconsole.quality.decisions import REJECT_REASONS, TagDecision
from aiconsole.ui.widgets import flash, md, say, why_not

HELD = "agreement_second_item"
ACTIONS = ("approve", "reject", "rename")
LABEL_OPTIONS = 300  # labels offered by each rename and add box (most used first), as on the Review tab


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
    labels = reads.known_labels(actor, limit=LABEL_OPTIONS)
    decisions = [_decision(tag, labels) for tag in held.tags]
    added = st.multiselect("Add missing labels", labels, key=f"agreement_added_{held.photo_id}",
                           accept_new_options=True, placeholder="type a label, Enter adds it",
                           help="Labels the photo has that no tag names; type a new one or pick one the "
                                "organization uses.")
    submit, give_back = st.columns(2)
    if submit.button("Submit second review", key="agreement_submit", type="primary", icon=":material/check:",
                     help=md("Recorded for agreement only: the photo's tags and ground truth stay as they are.")):
        try:
            out = second_review.submit_second_review(actor, token=held.token, decisions=decisions,
                                                     added=[str(a) for a in added])
        except ValidationFailed as exc:
            say("error", "{}", exc)  # the photo stays held: fix the decision and submit again
            return
        except AiconsoleError as exc:  # the claim ended or the photo no longer waits: let it go
            flash("error", "{}", exc)
            st.session_state.pop(HELD, None)
            st.rerun()
        more = "".join(f", {n} {word}" for n, word in ((out.renamed, "renamed"), (out.added, "added")) if n)
        flash("success", "Second review of photo #{} saved: {} approved, {} rejected{}.", out.photo_id,
              out.approved, out.rejected, more)
        st.session_state.pop(HELD, None)
        st.rerun()
    if give_back.button("Give it back", key="agreement_release", icon=":material/undo:"):
        review_queue.release(actor, token=held.token)
        st.session_state.pop(HELD, None)
        st.rerun()


def _decision(tag: review_queue.ReviewTag, labels: list[str]) -> TagDecision:
    """One tag's row: approve / reject (a reason) / rename (a label, typed or picked)."""
    left, right = st.columns([3, 2])
    action = left.radio(md("{} · {} · {}", tag.label, fmt.number(tag.confidence, 2), tag.verdict.replace("_", " ")),
                        ACTIONS, horizontal=True, key=f"agreement_tag_{tag.tag_id}")
    if action == "rename":
        label = right.selectbox("Rename to", [x for x in labels if x != tag.label], index=None,
                                key=f"agreement_rename_{tag.tag_id}", accept_new_options=True,
                                placeholder="type the new label")
        return TagDecision(tag_id=tag.tag_id, action="rename", label=label)
    reason = right.selectbox("Reason", REJECT_REASONS, key=f"agreement_reason_{tag.tag_id}",
                             format_func=lambda r: r.replace("_", " "), disabled=action != "reject")
    return TagDecision(tag_id=tag.tag_id, action=action, reason=reason if action == "reject" else None)
