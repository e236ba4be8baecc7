"""The control area's public module: the one door other areas use into control.

Areas never import each other (an import-linter contract); the audit log's Revert, in admin, needs to hand
a pipeline or provider change back to the module that owns it, so control names those owners here.
"""

from __future__ import annotations

from collections.abc import Callable

from aiconsole.control import pipeline_settings, provider_admin, queue_actions

RevertFunction = Callable[..., int]

# entity_type -> the function that restores it (`revert_audit(session, *, actor, entry) -> int`).
REVERT_OWNERS: dict[str, RevertFunction] = {
    "pipeline_config": pipeline_settings.revert_audit,
    provider_admin.ENTITY: provider_admin.revert_audit,
    "photos": queue_actions.revert_audit_retry,  # a retry's photos still waiting go back to failed
}
# Pause and resume are recorded against pipeline_config but only flip the pause flag, which the queue owns.
ACTION_REVERT_OWNERS: dict[str, RevertFunction] = {
    "queue.pause": queue_actions.revert_audit,
    "queue.resume": queue_actions.revert_audit,
}
