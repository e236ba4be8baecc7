"""Prompts: immutable versions, movable labels (production, staging, custom), diffs and rollback.

A save is a new version made from a base. An older base picked on purpose is a branch, saved with its base in
the message; a save after someone saved a version the editor had not seen (`seen_latest`) is refused with a
`PromptConflict` carrying base, theirs and the diff, for the three-way view (`prompts.merge`). Label moves,
removals and rollbacks carry the version the caller saw the label on (`expected_version`); a stale one is
refused naming who moved it and when. Moving `production` of the active prompt is a deploy (the worker reads
it), needs prompts.label_production, and only points at a version that renders. Every change is audited;
label moves are reversible (`revert_audit`). The readers live in `aiconsole.prompts.catalog`, re-exported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import AuditLog, Prompt, PromptLabel, PromptVersion
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts.catalog import (
    DiffRow,
    PromptRow,
    VersionRow,
    diff_rows,
    diff_versions,
    invalidate_usage,
    list_prompts,
    list_versions,
    load_prompt,
    load_version,
    usage_frame,
)
from aiconsole.prompts.templates import KNOWN_VARIABLES, check_template, validate_template

__all__ = [
    "PRODUCTION", "STAGING", "DiffRow", "LabelChange", "PromptConflict", "PromptRow", "VersionRow", "add_version",
    "create_prompt", "diff_rows", "diff_versions", "invalidate_usage", "list_prompts", "list_versions",
    "move_label", "remove_label", "revert_audit", "rollback", "save_version", "usage_frame", "validate_label",
    "validate_name",
]

PRODUCTION = "production"
STAGING = "staging"
MAX_MESSAGE = 500
MAX_DESCRIPTION = 2000
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}")


@dataclass(frozen=True)
class LabelChange:
    """The result of moving (or removing: version None) a label."""

    prompt_id: int
    label: str
    version: int | None
    previous_version: int | None
    message: str


class PromptConflict(ConflictError):
    """A save after someone else saved a newer version: the base, their version and the diff between them."""

    def __init__(self, message: str, *, hint: str, base_version: int, base_content: str, latest_version: int,
                 latest_content: str, latest_author: str, diff: list[DiffRow]) -> None:
        self.base_version = base_version
        self.base_content = base_content
        self.latest_version = latest_version
        self.latest_content = latest_content
        self.latest_author = latest_author
        self.diff = diff
        super().__init__(message, hint=hint)


def _message(message: str) -> str:
    text = " ".join((message or "").split())
    if not text:
        raise ValidationFailed("The version message is empty.",
                               hint="Say what changed and why, e.g. 'Ask for lower-case labels'.")
    if len(text) > MAX_MESSAGE:
        raise ValidationFailed(f"The version message is {len(text)} characters; the limit is {MAX_MESSAGE}.",
                               hint="Keep it to a line; put details in the prompt description.")
    return text


def validate_name(name: str) -> str:
    """A prompt name (letters, digits, space, dot, dash, underscore; up to 200), or ValidationFailed."""
    text = " ".join((name or "").split())
    if not _NAME.fullmatch(text):
        raise ValidationFailed(f"'{text[:60]}' is not a usable prompt name.",
                               hint="Use 1-200 letters, digits, spaces, dots, dashes or underscores, "
                                    "starting with a letter or digit.")
    return text


def validate_label(label: str) -> str:
    """A label name: lower-case letters, digits, '-' and '_', starting with a letter, up to 64 characters."""
    text = (label or "").strip()
    if not _LABEL.fullmatch(text):
        raise ValidationFailed(f"'{text[:70]}' is not a valid label name.",
                               hint="Use lower-case letters, digits, '-' or '_', starting with a letter "
                                    "(up to 64), e.g. 'staging' or 'candidate-2'.")
    return text


def add_version(s: Session, actor: Actor, prompt: Prompt, *, number: int, content: str, variables: Sequence[str],
                message: str, based_on: int | None = None) -> PromptVersion:
    """Insert version `number` of `prompt` (edited from version `based_on`) and audit it.

    The caller has validated content and message.
    """
    version = PromptVersion(organization_id=actor.organization_id, prompt_id=prompt.id, version=number,
                            content=content, variables=list(variables), message=message, author_id=actor.user_id,
                            created_at=utcnow())
    s.add(version)
    s.flush()
    audit.record(s, actor=actor, action="prompt.version", entity_type="prompt", entity_id=prompt.id, before=None,
                 after={"prompt": prompt.name, "version": number, "version_id": version.id, "message": message,
                        "based_on": based_on, "variables": list(variables), "chars": len(content)},
                 summary=f"{prompt.name} v{number}: {message}")
    return version


def create_prompt(actor: Actor, *, name: str, content: str, message: str = "Initial version", description: str = "",
                  extra_variables: Iterable[str] = (), settings: Settings | None = None) -> VersionRow:
    """Create a prompt with its first version (no labels yet); returns that version."""
    actor.require("prompts.edit")
    name, message = validate_name(name), _message(message)
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"The description is longer than {MAX_DESCRIPTION} characters.")
    variables = validate_template(content, extra_variables=extra_variables)
    try:
        with org_session(actor.organization_id, engine=get_engine(settings)) as s:
            if s.scalar(select(Prompt.id).where(Prompt.organization_id == actor.organization_id,
                                                func.lower(Prompt.name) == name.lower())) is not None:
                raise ValidationFailed(f"A prompt named '{name}' already exists.",
                                       hint="Choose another name, or save a new version of that prompt.")
            prompt = Prompt(organization_id=actor.organization_id, name=name, description=description,
                            created_by=actor.user_id, created_at=utcnow())
            s.add(prompt)
            s.flush()
            audit.record(s, actor=actor, action="prompt.create", entity_type="prompt", entity_id=prompt.id,
                         before=None, after={"name": name, "description": description}, summary=f"Created {name}")
            version = add_version(s, actor, prompt, number=1, content=content, variables=variables, message=message)
            prompt_id, version_id = prompt.id, version.id
    except IntegrityError:
        raise ValidationFailed(f"A prompt named '{name}' was created meanwhile.",
                               hint="Reload the list and save a version of it instead.") from None
    return next(v for v in list_versions(actor, prompt_id=prompt_id, settings=settings) if v.id == version_id)


def _conflict(s: Session, prompt: Prompt, base: PromptVersion, latest: PromptVersion) -> PromptConflict:
    who = user_email(s, latest.author_id) or "a deleted user"
    when = latest.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return PromptConflict(
        f"Not saved: {who} saved version {latest.version} of {prompt.name} at {when} ('{latest.message}') "
        f"after you opened the editor on version {base.version}.",
        hint=f"Your draft is kept. Below are version {base.version} (where you started), version "
             f"{latest.version} and your draft side by side: take their changes and yours into one text, then save.",
        base_version=base.version, base_content=base.content, latest_version=latest.version,
        latest_content=latest.content, latest_author=who, diff=diff_rows(base.content, latest.content))


def _insert_next(actor: Actor, prompt_id: int, base_version: int, seen_latest: int, content: str,
                 variables: Sequence[str], message: str, settings: Settings | None) -> int:
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        prompt = load_prompt(s, actor, prompt_id, lock=True)
        latest = s.scalar(select(PromptVersion).where(PromptVersion.prompt_id == prompt.id,
                                                      PromptVersion.organization_id == actor.organization_id)
                          .order_by(PromptVersion.version.desc()).limit(1))
        base = s.scalar(select(PromptVersion).where(PromptVersion.prompt_id == prompt.id,
                                                    PromptVersion.organization_id == actor.organization_id,
                                                    PromptVersion.version == base_version))
        if latest is None or base is None or seen_latest > latest.version:
            missing = base_version if base is None else seen_latest
            raise NotFound(f"{prompt.name} has no version {missing}.", hint="Reload the page.")
        if latest.version > seen_latest:
            raise _conflict(s, prompt, base, latest)
        for same in (base, latest):
            if same.content == content:
                raise ValidationFailed(f"The text is the same as version {same.version}; nothing to save.",
                                       hint="Edit the prompt first.")
        if base.version != latest.version:  # a branch: the message says what it is based on
            message = f"{message} (based on v{base.version}, not on v{latest.version})"
        return add_version(s, actor, prompt, number=latest.version + 1, content=content, variables=variables,
                           message=message, based_on=base.version).id


def save_version(actor: Actor, *, prompt_id: int, base_version: int, content: str, message: str,
                 seen_latest: int | None = None, extra_variables: Iterable[str] = (),
                 settings: Settings | None = None) -> VersionRow:
    """Save `content` as the next version of a prompt, edited from version number `base_version`.

    `seen_latest`: the newest version when the editor was opened (default: the base). An older base is a branch
    ("(based on vN ...)" in the message); a version newer than `seen_latest` is refused with PromptConflict;
    an invalid template, or a text the same as the base or the newest version, with ValidationFailed.
    """
    actor.require("prompts.edit")
    message = _message(message)
    variables = validate_template(content, extra_variables=extra_variables)
    for attempt in (1, 2):
        try:
            version_id = _insert_next(actor, prompt_id, base_version,
                                      base_version if seen_latest is None else seen_latest, content,
                                      variables, message, settings)
            break
        except IntegrityError:
            # Two saves from the same base raced past the lock (SQLite has no row locks): the loser re-reads
            # once and so gets the conflict like any stale save.
            if attempt == 2:
                raise ConflictError("Another version of this prompt was saved at the same moment.",
                                    hint="Your draft is kept; reload the versions and save again.") from None
    return next(v for v in list_versions(actor, prompt_id=prompt_id, settings=settings) if v.id == version_id)


def _deployable(label: str, target: PromptVersion) -> None:
    """Production only ever points at a version that renders (one saved before the render check may not)."""
    if label != PRODUCTION:
        return
    check = check_template(target.content,
                           extra_variables=[v for v in target.variables or () if v not in KNOWN_VARIABLES])
    if not check.ok:
        raise ValidationFailed(f"Version {target.version} cannot be deployed: "
                               + "; ".join(str(e) for e in check.errors) + ".",
                               hint="Save a fixed version and deploy that one; production was not changed.")


def _label_permission(actor: Actor, label: str) -> None:
    actor.require("prompts.label_production" if label == PRODUCTION else "prompts.label_staging")


def _label_state(row: PromptLabel | None, number: int | None) -> dict[str, Any] | None:
    return None if row is None else {"prompt_id": row.prompt_id, "label": row.label, "version_id": row.version_id,
                                     "version": number}


def _current_label(s: Session, actor: Actor, prompt: Prompt, label: str) -> tuple[PromptLabel | None, int | None]:
    """The label's row (locked) and the version number it points at."""
    row = s.scalar(select(PromptLabel).where(PromptLabel.prompt_id == prompt.id, PromptLabel.label == label,
                                             PromptLabel.organization_id == actor.organization_id)
                   .with_for_update())
    number = None if row is None else s.scalar(select(PromptVersion.version).where(
        PromptVersion.id == row.version_id, PromptVersion.organization_id == actor.organization_id))
    return row, number


def _stale_label(s: Session, actor: Actor, prompt: Prompt, label: str, expected: int | None,
                 current: int | None) -> ConflictError:
    """The conflict for a label move from a page that showed `expected` while the label is at `current`."""
    entry = s.execute(select(AuditLog.actor, AuditLog.created_at).where(
        AuditLog.organization_id == actor.organization_id, AuditLog.entity_type == "prompt_label",
        AuditLog.entity_id == f"{prompt.id}:{label}").order_by(AuditLog.id.desc()).limit(1)).first()
    row = s.scalar(select(PromptLabel).where(PromptLabel.prompt_id == prompt.id, PromptLabel.label == label,
                                             PromptLabel.organization_id == actor.organization_id))
    if entry is not None:
        who, when = entry.actor, entry.created_at
    else:  # a label set by an import has no audit entry of its own
        who = user_email(s, row.updated_by) if row else None
        who, when = who or "someone", row.updated_at if row is not None else None
    at = "" if when is None else f" at {when.strftime('%Y-%m-%d %H:%M UTC')}"
    now = "is not set" if current is None else f"points at version {current}"
    shown = "not set" if expected is None else f"on version {expected}"
    return ConflictError(f"Not moved: {who} changed {label} of {prompt.name}{at}; it now {now}, while your page "
                         f"showed it {shown}.",
                         hint="Reload the page to see the current labels, then move it again if you still want to.")


def _check_expected(s: Session, actor: Actor, prompt: Prompt, label: str, expected: int | None) -> int | None:
    """The version `label` points at (row locked), or the conflict when it is not the one the caller saw."""
    _, current = _current_label(s, actor, prompt, label)
    if current != expected:
        raise _stale_label(s, actor, prompt, label, expected, current)
    return current


def _set_label(s: Session, actor: Actor, prompt: Prompt, label: str, target: PromptVersion | None, *,
               action: str, summary: str) -> int:
    """Point `label` at `target` (None removes it) and audit it; returns the audit entry's id."""
    row, previous = _current_label(s, actor, prompt, label)
    before = _label_state(row, previous)
    if target is None:
        if row is not None:
            s.delete(row)
        after = None
    else:
        if row is None:
            row = PromptLabel(organization_id=actor.organization_id, prompt_id=prompt.id, label=label,
                              version_id=target.id)
            s.add(row)
        row.version_id, row.updated_by, row.updated_at = target.id, actor.user_id, utcnow()
        s.flush()
        after = _label_state(row, target.version)
    return audit.record(s, actor=actor, action=action, entity_type="prompt_label", entity_id=f"{prompt.id}:{label}",
                        before=before, after=after, summary=summary, reversible=True)


def move_label(actor: Actor, *, prompt_id: int, label: str, version_id: int, expected_version: int | None,
               settings: Settings | None = None) -> LabelChange:
    """Point `label` of a prompt at a version (production needs prompts.label_production).

    `expected_version` is the version number the caller saw the label on (None: not set); when someone moved
    it since, the move is refused with a ConflictError naming who and when.
    """
    label = validate_label(label)
    _label_permission(actor, label)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        prompt = load_prompt(s, actor, prompt_id, lock=True)
        target = load_version(s, actor, prompt_id, version_id)
        previous = _check_expected(s, actor, prompt, label, expected_version)
        if previous == target.version:
            raise ValidationFailed(f"{label} already points at version {target.version}.",
                                   hint="Pick another version.")
        _deployable(label, target)
        verb = "Deployed" if label == PRODUCTION else "Moved"
        _set_label(s, actor, prompt, label, target, action="prompt.label",
                   summary=f"{verb} {label} of {prompt.name} to v{target.version}")
        return LabelChange(prompt.id, label, target.version, previous,
                           f"{label} of {prompt.name} now points at version {target.version}"
                           + ("" if previous is None else f" (was {previous})") + ".")


def remove_label(actor: Actor, *, prompt_id: int, label: str, expected_version: int | None,
                 settings: Settings | None = None) -> LabelChange:
    """Take a staging or custom label off a prompt (production can be moved or rolled back, not removed).

    Refused with a ConflictError when the label no longer points at `expected_version`, the one the caller saw.
    """
    label = validate_label(label)
    if label == PRODUCTION:
        raise ValidationFailed("The production label cannot be removed: the worker would have no prompt.",
                               hint="Move it to another version, or roll it back.")
    actor.require("prompts.label_staging")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        prompt = load_prompt(s, actor, prompt_id, lock=True)
        _, previous = _current_label(s, actor, prompt, label)
        if previous is None and expected_version is None:
            raise NotFound(f"{prompt.name} has no label '{label}'.", hint="Reload the page.")
        previous = _check_expected(s, actor, prompt, label, expected_version)
        _set_label(s, actor, prompt, label, None, action="prompt.label_remove",
                   summary=f"Removed {label} from {prompt.name} (was v{previous})")
        return LabelChange(prompt.id, label, None, previous,
                           f"Removed {label} from {prompt.name} (it pointed at version {previous}).")


def rollback(actor: Actor, *, prompt_id: int, version_id: int, expected_version: int | None,
             settings: Settings | None = None) -> LabelChange:
    """Move production back to an earlier version of the prompt (takes effect for the next photo).

    Refused with a ConflictError when production no longer points at `expected_version`, the one the caller saw.
    """
    actor.require("prompts.label_production")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        prompt = load_prompt(s, actor, prompt_id, lock=True)
        target = load_version(s, actor, prompt_id, version_id)
        previous = _check_expected(s, actor, prompt, PRODUCTION, expected_version)
        if previous is not None and target.version >= previous:
            raise ValidationFailed(f"Version {target.version} is not earlier than production (version {previous}).",
                                   hint="Roll back to an older version, or move the production label instead.")
        _deployable(PRODUCTION, target)
        _set_label(s, actor, prompt, PRODUCTION, target, action="prompt.rollback",
                   summary=f"Rolled production of {prompt.name} back to v{target.version}")
        return LabelChange(prompt.id, PRODUCTION, target.version, previous,
                           f"Rolled production of {prompt.name} back to version {target.version}"
                           + ("" if previous is None else f" (was {previous})") + ".")


def revert_audit(session: Session, *, actor: Actor, entry: audit.AuditRow) -> int:
    """Undo a label move (the audit log's Revert): point the label back, or remove one the move created."""
    before, after = entry.before, entry.after
    state = after or before
    if state is None or "label" not in state or "prompt_id" not in state:
        raise ValidationFailed(f"Entry #{entry.id} does not describe a label move.", hint="Nothing to revert.")
    label = validate_label(str(state["label"]))
    _label_permission(actor, label)
    prompt = load_prompt(session, actor, int(state["prompt_id"]), lock=True)
    current = session.scalar(select(PromptLabel.version_id).where(
        PromptLabel.prompt_id == prompt.id, PromptLabel.label == label,
        PromptLabel.organization_id == actor.organization_id))
    if current != (None if after is None else after.get("version_id")):
        raise ConflictError(f"The {label} label of {prompt.name} changed again since entry #{entry.id}.",
                            hint="Revert the later change first, or move the label on the Prompts page.")
    target = None if before is None else load_version(session, actor, prompt.id, int(before["version_id"]))
    if target is not None:
        _deployable(label, target)
    what = "removed" if target is None else f"back on v{target.version}"
    return _set_label(session, actor, prompt, label, target, action="revert",
                      summary=f"Reverted entry #{entry.id}: {label} of {prompt.name} {what}")
