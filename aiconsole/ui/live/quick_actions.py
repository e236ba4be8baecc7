"""Live Status's quick actions: pause/resume, retry failed, requeue stuck, health check, and photo upload.

They are drawn inside the live panel from the same snapshot as the cards, so "Retry failed (n)" and the
Failed card always show one count, on every refresh.
"""

from __future__ import annotations

import streamlit as st

from aiconsole.control import queue_actions as queue_control
from aiconsole.live.status import StatusCards
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.ui.live import upload_panel
from aiconsole.ui.widgets import confirmed_action, why_not


def render(actor: Actor, status: StatusCards) -> None:
    """The four action buttons (disabled, with the reason, where the role may not) and the upload panel."""
    a1, a2, a3, a4 = st.columns(4)
    with a1:
        if status.paused:
            confirmed_action("Resume processing", key="resume", icon=":material/play_arrow:",
                             prompt="Workers will start claiming this organization's photos again.",
                             run=lambda: queue_control.resume(actor), disabled=bool(why_not(actor, "queue.resume")),
                             help=why_not(actor, "queue.resume"))
        else:
            confirmed_action("Pause processing", key="pause", icon=":material/pause:",
                             prompt="Workers stop claiming new photos; photos in flight finish.",
                             reason_label="Why? (shown on Live Status)",
                             run=lambda reason: queue_control.pause(actor, reason=reason or ""),
                             disabled=bool(why_not(actor, "queue.pause")), help=why_not(actor, "queue.pause"))
    with a2:
        failed = status.failed
        confirmed_action(f"Retry failed ({failed:,})", key="retry_failed", icon=":material/replay:",
                         prompt=f"Put {fmt.plural(failed, 'photo')} back in the queue with fresh attempts?",
                         run=lambda: queue_control.retry_failed(actor),
                         disabled=bool(why_not(actor, "queue.retry_failed")) or failed == 0,
                         help=why_not(actor, "queue.retry_failed") or "Failed photos go back to pending.")
    with a3:
        stuck = status.stuck
        confirmed_action(f"Requeue stuck ({stuck:,})", key="requeue_stuck", icon=":material/restart_alt:",
                         prompt=f"Return {fmt.plural(stuck, 'photo')} whose worker lease expired to the queue?",
                         run=lambda: queue_control.requeue_stuck(actor),
                         disabled=bool(why_not(actor, "queue.requeue_stuck")) or stuck == 0,
                         help=why_not(actor, "queue.requeue_stuck") or "Photos in processing whose lease expired.")
    with a4:
        confirmed_action("Run health check", key="health_check", icon=":material/stethoscope:",
                         prompt="Check the database, Redis, workers and record each provider's health now?",
                         run=lambda: queue_control.run_health_check(actor),
                         disabled=bool(why_not(actor, "health.check")), help=why_not(actor, "health.check"))
    upload_panel.render(actor, refused=why_not(actor, "photos.upload"))
