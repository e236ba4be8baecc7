"""The Disagreement tab: photos where two providers, models or prompt versions produced different tags. The
threshold (Jaccard similarity below it is a disagreement; admins change it, version-checked), how many photos
have two sources and how many of those disagree, and the most disagreeing photos with both sources' labels.
Reviewers work through them in the Review tab's Disagreement order."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import disagreement_reads, disagreement_settings
from aiconsole.quality.disagreement_reads import SourceView
from aiconsole.ui.widgets import flash, md, say, why_not

SHOWN = 50


def render(actor: Actor) -> None:
    """The threshold, the counts and the most disagreeing photos."""
    st.subheader("Provider and prompt disagreement")
    _threshold(actor)
    report = disagreement_reads.disagreement_report(actor, limit=SHOWN)
    c1, c2, c3 = st.columns(3)
    c1.metric("Photos with two sources or more", fmt.count(report.compared),
              help=md("Photos with results from two or more providers, models or prompt versions."))
    c2.metric("Below the threshold", fmt.count(report.below),
              help=md("Their two least alike sources share fewer labels than the threshold: the Review tab's "
                      "Disagreement order takes them, least alike first."))
    c3.metric("Share that disagree", fmt.pct(report.below / report.compared if report.compared else None))
    if not report.refresh.done:
        say("caption", "Still counting older results: {} read just now; the figures grow as the page is opened "
            "again (or run `aiconsole quality refresh-disagreements`).", fmt.count(report.refresh.results))
    if report.compared == 0:
        st.info("No photo has results from two sources yet. Disagreement shows here once some photos are tagged "
                "by a second provider, model or prompt version: run a prompt experiment, or switch the model "
                "on the Pipeline page and reprocess a sample.")
        return
    if not report.rows:
        st.info(md("Every compared photo's sources agree at least {} (Jaccard similarity). Raise the threshold "
                   "to see the photos whose sources agree least.", fmt.number(report.threshold, 2)))
        return
    st.dataframe(pd.DataFrame([{
        "photo": f"#{row.pair.photo_id}", "file": row.filename, "jaccard": fmt.number(row.pair.jaccard, 2),
        "source A": _source(row.pair.a), "labels A": ", ".join(row.pair.a.labels) or "no labels",
        "source B": _source(row.pair.b), "labels B": ", ".join(row.pair.b.labels) or "no labels",
        "sources": fmt.count(row.pair.sources)} for row in report.rows]), hide_index=True, width="stretch",
        column_config={"jaccard": st.column_config.TextColumn(
            help="Labels both sources gave over the labels either gave: 1 the same labels, 0 none in common.")})
    say("caption", "The {} least alike of {}; review them in the Review tab with the Disagreement order.",
        fmt.count(len(report.rows)), fmt.plural(report.below, "photo"))


def _source(side: SourceView) -> str:
    version = f" · prompt {side.prompt_version}" if side.prompt_version else ""
    return f"{side.provider} · {side.model}{version}"


def _threshold(actor: Actor) -> None:
    view = disagreement_settings.disagreement_threshold(actor)
    say("caption", "A photo disagrees when its two least alike sources have a Jaccard similarity below {} (labels "
        "both gave, over labels either gave).", fmt.number(view.threshold, 2))
    can = actor.allowed("quality.configure")
    with st.form("disagreement_threshold_form", border=False):
        value = st.number_input("Disagreement below (Jaccard similarity)", min_value=0.0, max_value=1.0,
                                value=float(view.threshold), step=0.05, format="%.2f", disabled=not can,
                                key="disagreement_threshold", help=why_not(actor, "quality.configure"))
        if st.form_submit_button("Save threshold", disabled=not can, icon=":material/save:"):
            try:
                version = disagreement_settings.set_disagreement_threshold(actor, threshold=float(value),
                                                                           expected_version=view.version)
                flash("success", "Disagreement threshold saved: {} (version {}).", fmt.number(value, 2), version)
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
