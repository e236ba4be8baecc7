"""Quality analytics and calibration: the AI's precision over time (random sample with its interval; all reviews,
biased), confidence by decision, per-label performance, common renames, review throughput and backlog, and
the calibration per provider/model and label, with "Propose as override" for a label's accept threshold.

Read through the domain's cache (`analytics.cached_view`): a rerun of the page for another tab's key press
or widget does not compute the view again; a review, batch or rules change is seen on the next rerun."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from aiconsole.charts import quality as charts
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.quality import analytics, calibration
from aiconsole.quality.analytics import QualityAnalytics
from aiconsole.quality.calibration import CalibrationReport, LabelCalibration
from aiconsole.quality.stats import Interval
from aiconsole.ui.widgets import Markdown, confirmed_action, md, say, why_not

WINDOWS = (7, 30, 90)
TARGETS = (0.9, 0.95, 0.98, 0.99)
MAX_PROPOSALS = 20


def render(actor: Actor) -> None:
    """The analytics of the chosen window, then its calibration."""
    left, right, _ = st.columns([1, 1, 2])
    days = left.selectbox("Window", WINDOWS, index=1, key="qa_days", format_func=lambda d: fmt.plural(d, "day"))
    target = right.selectbox("Target precision", TARGETS, index=1, key="qa_target", format_func=fmt.pct,
                             help="Calibration proposes, per label, the lowest accept threshold reaching it.")
    view = analytics.cached_analytics(actor, days=days)
    _headline(view)
    _charts(view)
    _labels(view)
    _throughput(view)
    _calibration(actor, calibration.cached_calibration(actor, days=days, target=target), days=days, target=target)


def _interval(i: Interval | None) -> str:
    return "—" if i is None else f"{fmt.pct(i.estimate)} ± {i.half_width * 100:.1f}"


def _headline(view: QualityAnalytics) -> None:
    summaries = {(s.sample, s.tags): s for s in view.precision.summaries}
    rnd, every = summaries[("random", "all")], summaries[("all", "all")]
    cols = st.columns(4)
    cols[0].metric("Precision, random sample", "—" if rnd.interval is None else fmt.pct(rnd.interval.estimate),
                   help="Unbiased: from reviews in Random order, which sample every processed photo.")
    cols[1].metric("Precision, all reviews", "—" if every.interval is None else fmt.pct(every.interval.estimate),
                   help="Biased: the other queue orders favour the uncertain tags the rules send to review.")
    cols[2].metric("Awaiting review", fmt.count(view.backlog.awaiting),
                   help="Photos in needs_review or with a tag in the rules' review band, now.")
    cols[3].metric("Reviews, last 24 h", fmt.count(view.backlog.reviews_last_24h))
    say("caption", "Random sample: {} ({} of {}). All reviews: {} ({} of {}). Backlog at the last 24 hours' "
        "pace: {}.", _interval(rnd.interval), fmt.count(rnd.correct), fmt.plural(rnd.decided, "tag"),
        _interval(every.interval), fmt.count(every.correct), fmt.plural(every.decided, "tag"),
        "—" if view.backlog.eta_hours is None else fmt.duration(view.backlog.eta_hours * 3600))
    if not rnd.decided:
        say("info", "{}", analytics.NO_RANDOM_REVIEWS, icon=":material/shuffle:")


def _charts(view: QualityAnalytics) -> None:
    points = pd.DataFrame([{"day": pd.Timestamp(p.day), "sample": p.sample, "decided": p.decided,
                            "precision": p.interval.estimate if p.interval else None,
                            "low": p.interval.low if p.interval else None,
                            "high": p.interval.high if p.interval else None} for p in view.precision.points])
    st.plotly_chart(charts.precision_chart(points), key="qa_precision_chart")
    left, right = st.columns(2)
    h = view.histogram
    left.plotly_chart(charts.confidence_chart(h.approved, h.renamed, h.rejected), key="qa_confidence_chart")
    right.plotly_chart(charts.corrections_chart([(c.before, c.after, c.count) for c in view.corrections]),
                       key="qa_corrections_chart")


def _labels(view: QualityAnalytics) -> None:
    st.subheader("Per label")
    if not view.labels:
        st.info("No tags in this window yet: process photos, then review them to see each label's precision.")
        return
    st.dataframe(pd.DataFrame([{
        "label": p.label, "decided": fmt.count(p.decided), "precision (all reviews)": _interval(p.precision),
        "precision (random sample)": _interval(p.random_precision), "corrected": fmt.pct(p.correction_rate),
        "tags": fmt.count(p.tags), "review rate": fmt.pct(p.review_rate)} for p in view.labels]),
        hide_index=True, width="stretch")
    st.caption("Precision: approved or renamed tags of those decided. Corrected: renamed. Review rate: tags "
               "reviewed or awaiting review, of the label's AI tags in the window.")


def _throughput(view: QualityAnalytics) -> None:
    st.subheader("Review throughput")
    t = view.throughput
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.reviews_chart(pd.DataFrame([{"day": pd.Timestamp(d), "reviews": n}
                                                         for d, n, _ in t.days])), key="qa_reviews_chart")
    if not t.reviewers:
        right.info("No reviews in this window yet: open the Review tab to start.")
        return
    right.dataframe(pd.DataFrame([{
        "reviewer": r.email or f"user #{r.reviewer_id}", "reviews": fmt.count(r.reviews),
        "tags": fmt.count(r.decisions), "per hour": fmt.number(r.per_hour, 1)}
        for r in t.reviewers]), hide_index=True, width="stretch")
    right.caption("Tags: decisions on tags. Per hour: reviews per hour with at least one review.")


def _calibration(actor: Actor, cal: CalibrationReport, *, days: int, target: float) -> None:
    st.subheader("Calibration")
    say("caption", "{} Thresholds are proposed every 0.01 and need at least {} reviewed tags at or above them.",
        cal.note, calibration.MIN_SUPPORT)
    series = {f"{m.provider} / {m.model}": [(b.mean_confidence, b.accuracy, b.count) for b in m.calibration.bins
                                             if b.count and b.mean_confidence is not None
                                             and b.accuracy is not None] for m in cal.models}
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.reliability_chart(series), key="qa_reliability_chart")
    if cal.models:
        right.dataframe(pd.DataFrame([{
            "provider / model": f"{m.provider} / {m.model}", "tags": fmt.count(m.calibration.decided),
            "ECE": fmt.number(m.calibration.ece, 3)} for m in cal.models]), hide_index=True, width="stretch")
    if not cal.labels:
        say("info", "{}", analytics.NO_RANDOM_REVIEWS, icon=":material/shuffle:")
        return
    models = [(m.provider, m.model) for m in cal.models]
    source = right.selectbox("Labels' decisions from", [None, *models], key="qa_cal_model",
                             format_func=lambda pm: "every provider" if pm is None else f"{pm[0]} / {pm[1]}",
                             help="A label's threshold applies to every provider; its calibration can be read "
                                  "on one provider/model's tags alone.")
    if source is not None:
        cal = calibration.cached_calibration(actor, days=days, target=target, provider=source[0], model=source[1])
    if not cal.labels:
        st.info("No reviewed tags of this provider/model in the window: pick another, or every provider.")
        return
    st.dataframe(pd.DataFrame([_label_row(c) for c in cal.labels]), hide_index=True, width="stretch")
    _proposals(actor, cal)


def _label_row(c: LabelCalibration) -> dict[str, str]:
    p = c.proposal
    return {"label": c.label, "reviewed": fmt.count(c.calibration.decided), "ECE": fmt.number(c.calibration.ece, 3),
            "accept now": f"{c.accept_now:.2f}", "proposed": "—" if p is None else f"{p.threshold:.2f}",
            "precision there": "—" if p is None else _interval(p.precision),
            "review load": "—" if p is None or p.review_load_change is None else f"{p.review_load_change:+.0%}",
            "why none": c.why_none or ""}


def _proposals(actor: Actor, cal: CalibrationReport) -> None:
    """One "Propose as override" per label whose proposal differs from what it accepts at now."""
    changes = [c for c in cal.labels if c.proposal is not None
               and round(c.proposal.threshold, 2) != round(c.accept_now, 2)][:MAX_PROPOSALS]
    if not changes:
        return
    can_configure = actor.allowed("pipeline.configure")
    for c in changes:
        p = c.proposal
        assert p is not None
        text, action = st.columns([3, 1], vertical_alignment="center")
        say("markdown", "{}", c.summary, where=text)
        with action:
            key = "qa_propose_" + hashlib.sha256(c.label.encode()).hexdigest()[:12]
            confirmed_action(
                "Propose as override", key=key, icon=":material/tune:",
                prompt=f"Make {p.threshold:.2f} the accept threshold of '{c.label}' (now {c.accept_now:.2f})? "
                       "It is saved as the label's override in the Pipeline rules, audited; Revert in the audit "
                       "log undoes it.",
                run=lambda label=c.label, accept=p.threshold: calibration.propose_threshold(
                    actor, label=label, accept=accept, expected_version=cal.rules_version),
                disabled=not can_configure or p.below_reject,
                help=why_not(actor, "pipeline.configure") or _proposal_help(c))


def _proposal_help(c: LabelCalibration) -> Markdown:
    """What the button does, or why a threshold under the label's reject threshold cannot be proposed."""
    if c.proposal is not None and c.proposal.below_reject:
        return md("Below the label's reject threshold {}: lower that first on the Pipeline page.", f"{c.reject:g}")
    return md("Saved through the Pipeline rules' own validation, audit and undo.")
