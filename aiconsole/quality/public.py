"""The quality area's public module: the one door other areas use into quality.

Areas never import each other (an import-linter contract); the audit log's Revert, in admin, hands a quality
setting's change back to the module that owns it, so quality names those owners here.
"""

from __future__ import annotations

from collections.abc import Callable

from aiconsole.quality import quality_settings

RevertFunction = Callable[..., int]

# entity_type -> the function that restores it (`revert_audit(session, *, actor, entry) -> int`).
REVERT_OWNERS: dict[str, RevertFunction] = {
    # the quality settings row: the second-review share, the disagreement threshold
    quality_settings.SETTINGS_ENTITY: quality_settings.revert_audit,
}
