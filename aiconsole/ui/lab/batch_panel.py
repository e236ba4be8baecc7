"""The Batch tests tab: start a batch test (testing.run), follow its progress, cancel or resume it, list past runs.

State lives in the database (aiconsole.lab.batch_runs): leaving the page and coming back shows the same runs.
"""

from __future__ import annotations

import streamlit as st

from aiconsole.lab import batch_runner, batch_runs
from aiconsole.platform.actor import Actor
from aiconsole.platform.formatting import usd_small
from aiconsole.providers.registry import PROVIDER_NAMES
from aiconsole.ui.widgets import say, why_not

SOURCES = {"sample": "A random sample of photos", "shadow": "The last N production photos (shadow replay)",
           "filter": "Photos with a status"}


def _start_form(actor: Actor) -> None:
    denied = why_not(actor, "testing.run")
    with st.form("lab_batch_start"):
        source = st.selectbox("Photos", list(SOURCES), format_func=SOURCES.__getitem__, key="lab_batch_source")
        n = st.number_input("How many photos", min_value=1, max_value=batch_runs.MAX_PHOTOS, value=20, step=10,
                            key="lab_batch_n")
        provider = st.selectbox("Provider", list(PROVIDER_NAMES), key="lab_batch_provider")
        go = st.form_submit_button("Start batch test", disabled=denied is not None, help=why_not(actor, "testing.run"))
    if go:
        run = batch_runs.create_run(actor, source=source, n=int(n), provider=provider)
        batch_runner.start(actor, run_id=run.id)
        say("success", "Batch test #{} started on {} photos; it runs in the background.", run.id, run.total)


def _progress(actor: Actor, run: batch_runs.RunRow) -> None:
    done = run.processed / run.total if run.total else 1.0
    st.progress(done, text=f"#{run.id} {run.name}: {run.processed:,} of {run.total:,} photos")
    if actor.allowed("testing.run"):
        if run.status == "running" and st.button("Cancel", key=f"lab_batch_cancel_{run.id}"):
            batch_runs.cancel_run(actor, run_id=run.id)
            st.rerun()
        if run.status == "interrupted" and st.button("Resume", key=f"lab_batch_resume_{run.id}"):
            batch_runner.start(actor, run_id=run.id)


def render(actor: Actor) -> None:
    """Draw the tab."""
    _start_form(actor)
    runs = batch_runs.list_runs(actor)
    if not runs:
        say("info", "No batch test yet. Start one above to compare a prompt or model with production.")
        return
    for run in runs:
        if run.status in ("running", "interrupted"):
            _progress(actor, run)
    st.dataframe([{"Run": f"#{r.id} {r.name}", "Status": r.status, "Photos": f"{r.processed:,} / {r.total:,}",
                   "Failed": r.failed, "Cost": usd_small(r.cost_micros),
                   "Started": r.created_at.strftime("%Y-%m-%d %H:%M")} for r in runs],
                 hide_index=True, key="lab_batch_runs")
