"""The Agreement tab: the share of reviewed photos sent to a second, blind reviewer (admins change it), Cohen's
kappa and percent agreement per label and per pair of reviewers, reviewers' pace and agreement with the
adjudicated answers, and the disagreements with an Adjudicate form for admins."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import agreement, double_review
from aiconsole.quality.stats import Agreement
from aiconsole.ui.quality import second_review_panel
from aiconsole.ui.widgets import flash, md, say, why_not


def render(actor: Actor) -> None:
    """The share setting, the second review, the agreement tables and the disagreements."""
    _share(actor)
    second_review_panel.render(actor)
    report = agreement.agreement_report(actor)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Waiting for a second review", fmt.count(report.waiting))
    c2.metric("Reviewed twice", fmt.count(report.reviewed))
    c3.metric("Adjudicated", fmt.count(report.adjudicated))
    overall = report.overall.agreement
    c4.metric("Cohen's kappa, all labels", _kappa(overall),
              help=md("A label counts once per photo: approve keeps the AI's label, reject rejects it, a rename "
                      "rejects the AI's label and keeps the new one, an added label is kept; a label a reviewer "
                      "did not keep is a reject."))
    if overall is None:
        st.info("No photo has two reviews yet. Reviewers take routed photos from the second-review queue; "
                "the agreement tables fill in as they do.")
        return
    say("caption", "Percent agreement {} on {}.", fmt.pct(overall.observed), fmt.plural(overall.n, "label decision"))
    st.subheader("Per label")
    _agreement_table(report.labels, "label")
    st.subheader("Per pair of reviewers")
    _agreement_table(report.pairs, "reviewers")
    st.subheader("Reviewers")
    st.dataframe(pd.DataFrame([{
        "reviewer": r.email or "deleted user", "reviews (30 days)": fmt.count(r.reviews),
        "second reviews": fmt.count(r.second_reviews), "per active hour": fmt.number(r.per_hour, 1),
        "agrees with adjudication": fmt.pct(r.adjudicated_agreement),
        "adjudicated answers": fmt.count(r.adjudicated_answers)} for r in report.reviewers]),
        hide_index=True, width="stretch")
    _disagreements(actor, report)


def _kappa(a: Agreement | None) -> str:
    return fmt.number(None if a is None else a.kappa, 2)


def _agreement_table(rows: tuple[agreement.LabelAgreement, ...], what: str) -> None:
    st.dataframe(pd.DataFrame([{
        what: r.name, "decisions": fmt.count(r.table.n), "kept by both": fmt.count(r.table.both),
        "first only": fmt.count(r.table.first_only), "second only": fmt.count(r.table.second_only),
        "agreement": fmt.pct(None if r.agreement is None else r.agreement.observed),
        "kappa": _kappa(r.agreement)} for r in rows]), hide_index=True, width="stretch",
        column_config={"kappa": st.column_config.TextColumn(
            help="Cohen's kappa: agreement beyond chance (1 perfect, 0 chance). — when both always gave one "
                 "answer.")})


def _share(actor: Actor) -> None:
    st.subheader("Second reviews")
    view = double_review.quality_settings(actor)
    say("caption", "{} of reviewed photos go to a second reviewer, blind to the first (the same photo is always "
        "drawn the same way).", fmt.pct(view.double_review_share))
    can = actor.allowed("quality.configure")
    with st.form("agreement_share_form", border=False):
        percent = st.number_input("Share sent to a second reviewer (%)", min_value=0.0, max_value=100.0,
                                  value=round(view.double_review_share * 100, 2), step=0.5, disabled=not can,
                                  key="agreement_share", help=why_not(actor, "quality.configure"))
        if st.form_submit_button("Save share", disabled=not can, icon=":material/save:"):
            try:
                version = double_review.set_double_review_share(actor, share=percent / 100,
                                                                expected_version=view.version)
                flash("success", "Second-review share saved: {} (version {}).", fmt.pct(percent / 100), version)
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)


def _disagreements(actor: Actor, report: agreement.AgreementReport) -> None:
    st.subheader("Disagreements")
    if not report.disagreements:
        st.info("The two reviewers agreed on every label so far.")
        return
    st.dataframe(pd.DataFrame([{
        "photo": f"#{d.photo_id}", "label": d.label, "first": "kept" if d.first_kept else "rejected",
        "second": "kept" if d.second_kept else "rejected", "first reviewer": d.first_reviewer or "deleted user",
        "second reviewer": d.second_reviewer or "deleted user", "status": d.status} for d in report.disagreements]),
        hide_index=True, width="stretch")
    can = actor.allowed("quality.adjudicate")
    open_ones = {d.double_review_id: d.photo_id for d in report.disagreements if d.status == "reviewed"}
    if not open_ones:
        say("caption", "Every disagreement shown is adjudicated.")
        return
    with st.form("agreement_adjudicate_form", border=False):
        picked = st.selectbox("Photo to adjudicate", list(open_ones), format_func=lambda i: f"#{open_ones[i]}",
                              key="agreement_pick", disabled=not can)
        labels = st.text_input("Final labels (comma-separated)", key="agreement_labels", disabled=not can,
                               max_chars=2000, help=md("These become the photo's ground truth."))
        if st.form_submit_button("Adjudicate", disabled=not can, icon=":material/gavel:",
                                 help=why_not(actor, "quality.adjudicate")):
            try:
                done = agreement.adjudicate(actor, double_review_id=int(picked),
                                            labels=[x for x in labels.split(",") if x.strip()])
                flash("success", "Photo #{}'s ground truth is now: {}.", done.photo_id,
                      ", ".join(done.labels) or "no labels")
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
