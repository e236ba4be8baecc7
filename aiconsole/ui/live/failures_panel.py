"""Live Status's failed photos, grouped by why they failed (newest group first), with a Retry per group."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from aiconsole.control import queue_actions as queue_control
from aiconsole.pipeline.failures import FailedGroup
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.ui.widgets import confirmed_action, md_join, say, why_not


def render(actor: Actor, groups: tuple[FailedGroup, ...], now: datetime) -> None:
    """One bordered row per failure reason: what it means, how many, the newest message, and Retry."""
    if not groups:
        return
    st.subheader("Failed photos by reason")
    refused = why_not(actor, "queue.retry_failed")
    for g in groups:
        with st.container(border=True):
            text, action = st.columns([3, 2], vertical_alignment="center")
            say("markdown", "**{}** · {}", fmt.plural(g.count, 'photo'), g.reason, where=text)
            say("caption", "newest failed {}", fmt.ago(g.newest_at, now),
                where=text)
            if g.latest_error:
                say("caption", "latest error: {}", g.latest_error, where=text)
            if g.sample_photo_ids:
                samples = md_join(f"#{i:,} {name}" for i, name in zip(g.sample_photo_ids, g.sample_filenames,
                                                                    strict=True))
                say("caption", "for example {}", samples, where=text)
            with action:
                confirmed_action(f"Retry these {g.count:,}", key=f"retry_group_{g.reason_kind}",
                                 icon=":material/replay:",
                                 prompt=f"Put {fmt.plural(g.count, 'photo')} that failed for this reason back in the "
                                        "queue with fresh attempts? Revert in the audit log puts back those not "
                                        "picked up yet.",
                                 run=lambda kind=g.reason_kind: queue_control.retry_failed_group(actor,
                                                                                                 reason_kind=kind),
                                 disabled=bool(refused),
                                 help=why_not(actor, "queue.retry_failed") or "Only this reason's failed photos.")

