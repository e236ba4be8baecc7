"""Live Status's quick actions: pause/resume, retry failed, requeue stuck, health check, and photo upload."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from aiconsole.control import queue_actions as queue_control
from aiconsole.live import status as live_status
from aiconsole.pipeline import intake
from aiconsole.platform.actor import Actor
from aiconsole.platform.permissions import allowed
from aiconsole.ui.widgets import Markdown, confirmed_action, flash, md, say


def render(actor: Actor) -> None:
    """The four action buttons (disabled, with the reason, where the role may not) and the upload expander."""
    org = actor.organization_id

    def why_not(permission: str) -> Markdown | None:
        return None if allowed(actor.role, permission) else md("Your role ({}) cannot do this.", actor.role)

    a1, a2, a3, a4 = st.columns(4)
    status = live_status.live_snapshot(organization_id=org).status  # the same cached snapshot the panel drew
    with a1:
        if status.paused:
            confirmed_action("Resume processing", key="resume", icon=":material/play_arrow:",
                             prompt="Workers will start claiming this organization's photos again.",
                             run=lambda: queue_control.resume(actor), disabled=bool(why_not("queue.resume")),
                             help=why_not("queue.resume"))
        else:
            confirmed_action("Pause processing", key="pause", icon=":material/pause:",
                             prompt="Workers stop claiming new photos; photos in flight finish.",
                             reason_label="Why? (shown on Live Status)",
                             run=lambda reason: queue_control.pause(actor, reason=reason or ""),
                             disabled=bool(why_not("queue.pause")), help=why_not("queue.pause"))
    with a2:
        confirmed_action(f"Retry failed ({status.failed:,})", key="retry_failed", icon=":material/replay:",
                         prompt=f"Put {status.failed:,} failed photo(s) back in the queue with fresh attempts?",
                         run=lambda: queue_control.retry_failed(actor),
                         disabled=bool(why_not("queue.retry_failed")) or status.failed == 0,
                         help=why_not("queue.retry_failed") or "Failed photos go back to pending.")
    with a3:
        stuck = queue_control.stuck_count(organization_id=org)
        confirmed_action(f"Requeue stuck ({stuck:,})", key="requeue_stuck", icon=":material/restart_alt:",
                         prompt=f"Return {stuck:,} photo(s) whose worker lease expired to the queue?",
                         run=lambda: queue_control.requeue_stuck(actor),
                         disabled=bool(why_not("queue.requeue_stuck")) or stuck == 0,
                         help=why_not("queue.requeue_stuck") or "Photos in processing whose lease expired.")
    with a4:
        confirmed_action("Run health check", key="health_check", icon=":material/stethoscope:",
                         prompt="Check the database, Redis, workers and record each provider's health now?",
                         run=lambda: queue_control.run_health_check(actor),
                         disabled=bool(why_not("health.check")), help=why_not("health.check"))

    with st.expander("Upload photos to the queue", icon=":material/upload:", expanded=False):
        refused = why_not("photos.upload")
        if refused:
            say("info", "{}", refused)
        else:
            _upload(actor)


def _upload(actor: Actor) -> None:
    files = st.file_uploader("Photos (JPEG, PNG, WEBP, GIF, BMP, TIFF)", accept_multiple_files=True,
                             key="upload_files")
    priority = st.slider("Priority", 0, intake.MAX_PRIORITY, 0, key="upload_priority",
                         help="Higher priority photos are claimed first.")
    if files:
        total = sum(f.size for f in files)
        confirmed_action(f"Queue {len(files)} file(s) ({total / 1e6:.1f} MB)", key="upload",
                         icon=":material/add_photo_alternate:",
                         prompt="Each file is checked (type from its content, size, pixels, duplicates) "
                                "before it is queued.",
                         run=lambda: _enqueue(actor, files, priority))
    verdicts = st.session_state.get("upload_verdicts")
    if verdicts:
        st.dataframe(verdicts, hide_index=True, width="stretch")


def _enqueue(actor: Actor, files: list[UploadedFile], priority: int) -> intake.EnqueueReport:
    report = intake.enqueue_files(actor, [(f.name, f.getvalue()) for f in files], priority=priority)
    st.session_state["upload_verdicts"] = [
        {"file": v.filename, "outcome": v.outcome, "detail": v.message} for v in report.verdicts
    ]
    if report.count("rejected"):
        flash("warning", "Some files were not queued: see the table under Upload photos.")
    return report
