"""The control area's public module: the one door other areas use into control.

Areas never import each other (an import-linter contract); the audit log's Revert, in admin, needs to hand
a pipeline or provider change back to the module that owns it, so control names those owners here. Quality's
calibration proposes a label's accept threshold through `set_label_accept`, the rules' own save.
"""

from __future__ import annotations

from collections.abc import Callable

from aiconsole.control import pipeline_settings, provider_admin, queue_actions, rules_config
from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform.actor import Actor

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


def set_label_accept(actor: Actor, *, label: str, accept: float, expected_version: int | None = None) -> int:
    """Give `label` its own accept threshold (keeping its reject override, if any), saved the way the Pipeline
    page saves rules: pipeline.configure, the rules' validation, refused unless the settings are still at
    `expected_version` (default: as read now), audited as a revertible rules.update. Returns the new version."""
    actor.require("pipeline.configure")
    view = pipeline_settings.current_settings(actor)
    overrides = {name: o.model_dump() for name, o in view.rules.label_overrides.items()}
    key = normalize_label(label)
    overrides[key] = {**overrides.get(key, {}), "accept": accept}
    rules = rules_config.parse_rules({**view.rules.model_dump(), "label_overrides": overrides})
    return rules_config.save_rules(actor, rules=rules,
                                   expected_version=view.version if expected_version is None else expected_version)
