"""Live Status: what the pipeline is doing right now, in one panel that refreshes itself.

The paused banner and the quick actions come first, then the cards, queue, cost and health. All of it is one
fragment drawn from one snapshot, so an action's count (Retry failed (n)) and its card never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from aiconsole.charts.live import budget_chart, daily_spend_chart, queue_status_chart, throughput_chart
from aiconsole.live import status as live_status
from aiconsole.pipeline.health_report import CircuitView
from aiconsole.platform import formatting as fmt
from aiconsole.platform import health
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.ui.live import failures_panel, quick_actions
from aiconsole.ui.widgets import Markdown, inert, md, say

AUTO_KEY, EVERY_KEY = "live_auto", "live_every"
STATUS_ICON = {"healthy": Markdown(":material/check_circle:"), "degraded": Markdown(":material/warning:"),
               "down": Markdown(":material/error:"), "unknown": Markdown(":material/help:"),
               "not_configured": Markdown(":material/key_off:"), "disabled": Markdown(":material/block:")}
NO_ICON = Markdown("")
CIRCUIT_LABEL = {"closed": "closed", "open": "open", "half_open": "half-open"}


def toolbar() -> None:
    """The auto-refresh switch and its interval, drawn beside the page title."""
    auto_col, every_col = st.columns(2, vertical_alignment="bottom")
    auto = auto_col.toggle("Auto-refresh", value=True, key=AUTO_KEY, help="Refresh the live panels on their own.")
    every_col.number_input("Every (s)", min_value=1, max_value=30, value=5, step=1, key=EVERY_KEY,
                           disabled=not auto)


def render(actor: Actor) -> None:
    """The live panel, refreshing as the toolbar says."""
    every = int(st.session_state[EVERY_KEY]) if st.session_state[AUTO_KEY] else None
    st.fragment(_live_panel, run_every=every)(actor, every)


@st.cache_data(ttl=10, show_spinner=False)
def _system_health() -> dict[str, Any]:
    return health.system_health().to_dict()


def _live_panel(actor: Actor, every: int | None) -> None:
    # A fragment: on its own reruns (every `every` seconds, None = never) only this function runs again, so
    # everything that shows a count of the snapshot is drawn here, from this one snapshot.
    try:
        snap = live_status.live_snapshot(organization_id=actor.organization_id)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    _paused_banner(snap.status)
    quick_actions.render(actor, snap.status)
    _status_cards(snap)
    failures_panel.render(actor, snap.failures, snap.status.as_of)
    _queue(snap)
    _costs(snap)
    _providers(snap)
    _system()
    say("caption", "Updated {} UTC · {}", f"{datetime.now(UTC):%H:%M:%S}", f"every {every} s" if every else "paused")


def _paused_banner(s: live_status.StatusCards) -> None:
    if s.paused:
        probe = _next_probe(s.paused_circuit, s.as_of, s.timezone)
        say("error", "Processing is paused — {}{}", s.pause_reason or "no reason given",
            f" {probe[0].upper()}{probe[1:]}." if probe else "", icon=":material/pause_circle:")


def _status_cards(snap: live_status.LiveSnapshot) -> None:
    s = snap.status
    row1 = st.columns(5)
    row1[0].metric("Processed today", f"{s.processed_today.value or 0:,}",
                   fmt.signed(s.processed_today.delta), border=True,
                   help="Photos with tags since midnight (organization time zone); delta vs the same time yesterday.")
    row1[1].metric("Pending", f"{s.pending:,}", border=True)
    row1[2].metric("Processing", f"{s.processing:,}", border=True)
    row1[3].metric("Failed", f"{s.failed:,}", border=True, help="Photos that used up their attempts.")
    row1[4].metric("Needs review", f"{s.needs_review:,}", border=True)
    row2 = st.columns(4)
    conf = s.avg_confidence_today
    row2[0].metric("Avg confidence today", fmt.pct(conf.value),
                   None if conf.delta is None else f"{conf.delta * 100:+.1f} pts", border=True)
    err = s.error_rate_last_hour
    row2[1].metric("Error rate (last hour)", fmt.pct(err.value),
                   None if err.delta is None else f"{err.delta * 100:+.1f} pts", delta_color="inverse", border=True,
                   help=md("{} results in the last hour; delta vs the same hour yesterday.",
                           f"{s.results_last_hour:,}"))
    spend = s.spend_today_micros
    row2[2].metric("Spend today", fmt.usd(spend.value or 0),
                   fmt.usd_delta(spend.delta),
                   delta_color="inverse", border=True,
                   help=md("Daily budget: {} ({} used)", fmt.usd(s.daily_budget_micros),
                           fmt.pct(s.daily_budget_used, 0)))
    month_used = fmt.pct(s.monthly_budget_used, 0)
    row2[3].metric("Month to date", fmt.usd(s.spend_month_micros), border=True,
                   help=md("Monthly budget: {} ({} used)", fmt.usd(s.monthly_budget_micros), month_used))


def _queue(snap: live_status.LiveSnapshot) -> None:
    q = snap.queue
    st.subheader("Queue")
    cols = st.columns(4)
    cols[0].metric("Avg queue wait (24 h)", fmt.ms(q.avg_wait_ms))
    p95 = q.p95_wait
    cols[1].metric("p95 queue wait (24 h)", fmt.ms(q.p95_wait_ms), help=(
        "No queue waits recorded in the last 24 h." if p95 is None else
        md("Estimated from the wait histogram ({} photos): the true value lies between {} and {}.",
           f"{q.wait_samples:,}", fmt.ms(p95.low), fmt.ms(p95.high) if p95.high is not None else "above")))
    cols[2].metric("Oldest pending", fmt.duration(q.oldest_due_pending_age),
                   help="Age of the oldest photo that is due for processing.")
    cols[3].metric("Time to drain", fmt.duration(q.drain_eta), help=inert(q.drain_note))
    left, right = st.columns([3, 1])
    left.plotly_chart(throughput_chart(q.throughput), width="stretch", key="throughput")
    right.plotly_chart(queue_status_chart(q.counts), width="stretch", key="queue_donut")


def _costs(snap: live_status.LiveSnapshot) -> None:
    c = snap.cost
    st.subheader("Cost")
    cols = st.columns(3)
    cols[0].metric("Today", fmt.usd(c.today_micros))
    cols[1].metric("This month", fmt.usd(c.month_micros))
    cols[2].metric("Projected month end", fmt.usd(c.projected_month_micros),
                   help=md("Month to date plus {} a day for the rest of the month.", fmt.usd(c.daily_average_micros)))
    left, right = st.columns(2)
    left.plotly_chart(daily_spend_chart(c.daily, daily_budget_micros=c.daily_budget_micros), width="stretch",
                      key="spend")
    right.plotly_chart(budget_chart(c.by_provider, c.budgets), width="stretch", key="budgets")


def _providers(snap: live_status.LiveSnapshot) -> None:
    st.subheader("Provider health")
    report = snap.providers
    if not report.providers:
        st.info("No provider has handled a photo yet. Upload photos at the top of this page, or run `aiconsole demo`.")
        return
    cols = st.columns(len(report.providers))
    now = report.as_of
    for col, p in zip(cols, report.providers, strict=True):
        with col.container(border=True):
            say("markdown", "{} **{}** — {}", STATUS_ICON.get(p.status, NO_ICON), p.provider,
                p.status.replace("_", " "))
            if p.status_reason:
                say("caption", "{}", p.status_reason)
            say("caption", "last 15 min: {}, {} failed, error rate {}", fmt.plural(p.results, "result"),
                f"{p.failed:,}", fmt.pct(p.error_rate))
            say("caption", "latency p50 {} · p95 {}", fmt.ms(p.p50_latency_ms), fmt.ms(p.p95_latency_ms))
            say("caption", "last check: {}{}", fmt.ago(p.last_check, now),
                f" ({p.last_check_status})" if p.last_check_status else "")
            probe = _next_probe(p.circuit, now, snap.status.timezone)
            say("caption", "circuit {} · {}{}", CIRCUIT_LABEL.get(p.circuit.state, p.circuit.state),
                _circuit_failures(p.circuit), f" · {probe}" if probe else "")


def _circuit_failures(c: CircuitView) -> str:
    if c.failure_rate is None:
        return "no calls in the last 15 min" if c.state == "closed" else "failure rate unknown"
    if c.state == "closed":
        return f"{fmt.pct(c.failure_rate)} of {c.calls or 0:,} calls failed (15 min)"
    return f"opened at {fmt.pct(c.failure_rate, 0)} of recent calls failing"


def _next_probe(c: CircuitView | None, now: datetime, tz: str) -> str:
    """When the circuit's next probe goes out, for people ('' for a closed circuit)."""
    if c is None or c.state == "closed":
        return ""
    if c.state == "open":
        return f"next probe of {c.provider}: {fmt.clock_time(c.next_probe_at, now, tz)}"
    if c.probing:
        return f"a probe of {c.provider} is out now ({c.probing})"
    return f"a probe of {c.provider} is due now"


def _system() -> None:
    st.subheader("System health")
    report = _system_health()
    cols = st.columns(len(report["checks"]))
    for col, check in zip(cols, report["checks"], strict=True):
        with col.container(border=True):
            say("markdown", "{} **{}** — {}", STATUS_ICON.get(check["status"], NO_ICON), check["name"],
                check["status"])
            say("caption", "{}", check["message"])
