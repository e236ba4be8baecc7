"""The audit log: who changed what, when, with the state before and after.

`record` writes in the caller's transaction, so a change and its audit entry commit or roll back together.
Secrets never reach the log: any key that looks like a password, secret, token or API key is redacted.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import org_session, service_session
from aiconsole.platform.db.models import AuditLog
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.settings import Settings

REDACTED = "[redacted]"
MAX_LIMIT = 5000
MAX_SEARCH = 200
# Words that mark a field as a credential. Matched per word so that `input_tokens` (a count) stays
# readable while `access_token`, `password_hash`, `client_secret` and `apiKey` are redacted.
_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "secrets", "token", "apikey",
                           "credential", "credentials", "privatekey"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@dataclass(frozen=True)
class AuditRow:
    """One audit log entry as the console shows it."""

    id: int
    created_at: datetime
    organization_id: int | None
    user_id: int | None
    actor: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    summary: str
    reversible: bool
    reverted_by_id: int | None


def is_secret_key(key: str) -> bool:
    """Whether a field name looks like it holds a credential (password, secret, token, API key...)."""
    words = [w.lower() for w in _WORD.findall(key)]
    pairs = {a + b for a, b in itertools.pairwise(words)}
    return bool(_SECRET_WORDS.intersection(words) or _SECRET_WORDS.intersection(pairs))


def _jsonable(value: Any) -> Any:
    # The JSON column cannot store datetimes, Decimals or sets; store their readable forms.
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")  # '600', not str(Decimal('6E+2')): a person reads the log
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=str)
    return str(value)


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of `data` with every credential-looking key's value replaced, at any depth."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        out[name] = REDACTED if is_secret_key(name) and value is not None else _jsonable(value)
    return out


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str | int | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    summary: str,
    reversible: bool = False,
) -> int:
    """Add an audit entry for `actor` in the caller's transaction and return its id."""
    return _write(session, organization_id=actor.organization_id, user_id=actor.user_id, actor=actor.email,
                  action=action, entity_type=entity_type, entity_id=entity_id, before=before, after=after,
                  summary=summary, reversible=reversible)


def record_anonymous(
    session: Session,
    *,
    claimed: str,
    action: str,
    entity_type: str,
    entity_id: str | int | None,
    after: Mapping[str, Any] | None,
    summary: str,
) -> int:
    """Add a platform-level entry for someone not (yet) known, e.g. a login attempt for an unknown email."""
    return _write(session, organization_id=None, user_id=None, actor=claimed or "anonymous", action=action,
                  entity_type=entity_type, entity_id=entity_id, before=None, after=after, summary=summary,
                  reversible=False)


def _write(
    session: Session,
    *,
    organization_id: int | None,
    user_id: int | None,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    summary: str,
    reversible: bool,
) -> int:
    if not action or not entity_type:
        raise ValidationFailed("An audit entry needs an action and an entity type.",
                               hint="This is a programming error in the caller; please report it.")
    entry = AuditLog(
        organization_id=organization_id,
        user_id=user_id,
        actor=actor[:320],
        action=action[:64],
        entity_type=entity_type[:64],
        entity_id=None if entity_id is None else str(entity_id)[:64],
        before=None if before is None else redact(before),
        after=None if after is None else redact(after),
        summary=summary,
        reversible=reversible,
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return int(entry.id)


def to_row(e: AuditLog) -> AuditRow:
    """The plain row of an audit log model instance (for modules that load entries in their own session)."""
    return AuditRow(id=e.id, created_at=e.created_at, organization_id=e.organization_id, user_id=e.user_id,
                    actor=e.actor, action=e.action, entity_type=e.entity_type, entity_id=e.entity_id,
                    before=e.before, after=e.after, summary=e.summary, reversible=e.reversible,
                    reverted_by_id=e.reverted_by_id)


@dataclass(frozen=True)
class EntryDetail:
    """One entry with the entry that reverted it and the entry it reverted (if any)."""

    entry: AuditRow
    reverted_by: AuditRow | None
    reverts: AuditRow | None


def _sees_platform_entries(actor: Actor) -> bool:
    # Platform-level entries (organization_id NULL) hold text anyone can type (a failed login's email) and
    # activity outside any organization: for platform admins, but not a demo account's (its password is public).
    return actor.allowed("orgs.switch") and not actor.demo_account


def _scoped(actor: Actor, query: Select[Any]) -> Select[Any]:
    if _sees_platform_entries(actor):
        return query.where(or_(AuditLog.organization_id == actor.organization_id,
                               AuditLog.organization_id.is_(None)))
    return query.where(AuditLog.organization_id == actor.organization_id)


def _reader(actor: Actor, settings: Settings | None) -> AbstractContextManager[Session]:
    # Platform-level entries belong to no organization, so only a service session can read them.
    if _sees_platform_entries(actor):
        return service_session(settings=settings)
    return org_session(actor.organization_id, settings=settings)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_entries(
    actor: Actor,
    *,
    entity_type: str | None = None,
    user_id: int | None = None,
    actor_email: str | None = None,
    action: str | None = None,
    search: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    settings: Settings | None = None,
) -> list[AuditRow]:
    """The actor's organization's audit entries, newest first (non-demo platform admins also see org-less ones).

    `actor_email` matches who acted (users and system actors alike); `search` is a case-insensitive
    substring of the summary; `since` is inclusive and `until` exclusive.
    """
    actor.require("audit.view")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"The limit must be between 1 and {MAX_LIMIT} (got {limit}).")
    if since is not None and until is not None and since > until:
        raise ValidationFailed("The start of the period is after its end.", hint="Swap the two dates.")
    search = (search or "").strip()
    if len(search) > MAX_SEARCH:
        raise ValidationFailed(f"The search text is longer than {MAX_SEARCH} characters.",
                               hint="Search for a shorter, distinctive part of the summary.")
    query = _scoped(actor, select(AuditLog))
    if entity_type is not None:
        query = query.where(AuditLog.entity_type == entity_type)
    if user_id is not None:
        query = query.where(AuditLog.user_id == user_id)
    if actor_email is not None:
        query = query.where(AuditLog.actor == actor_email)
    if action is not None:
        query = query.where(AuditLog.action == action)
    if search:
        query = query.where(func.lower(AuditLog.summary).like(_like_pattern(search.lower()), escape="\\"))
    if since is not None:
        query = query.where(AuditLog.created_at >= since)
    if until is not None:
        query = query.where(AuditLog.created_at < until)
    query = query.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)
    with _reader(actor, settings) as s:
        return [to_row(e) for e in s.scalars(query)]


def _distinct(actor: Actor, column: Any, settings: Settings | None) -> list[str]:
    actor.require("audit.view")
    query = _scoped(actor, select(column).distinct()).where(column.is_not(None)).order_by(column)
    with _reader(actor, settings) as s:
        return [str(v) for v in s.scalars(query)]


def entity_types(actor: Actor, *, settings: Settings | None = None) -> list[str]:
    """The entity types that occur in the actor's organization's log, sorted (filter choices)."""
    return _distinct(actor, AuditLog.entity_type, settings)


def actors(actor: Actor, *, settings: Settings | None = None) -> list[str]:
    """Everyone (users and system actors) who has an entry in the actor's organization's log, sorted."""
    return _distinct(actor, AuditLog.actor, settings)


def actions(actor: Actor, *, settings: Settings | None = None) -> list[str]:
    """The actions that occur in the actor's organization's log, sorted (filter choices)."""
    return _distinct(actor, AuditLog.action, settings)


def entry_detail(actor: Actor, *, audit_id: int, settings: Settings | None = None) -> EntryDetail:
    """One entry of the actor's organization with its revert links; NotFound if it is not visible."""
    actor.require("audit.view")
    with _reader(actor, settings) as s:
        entry = s.scalars(_scoped(actor, select(AuditLog).where(AuditLog.id == audit_id))).first()
        if entry is None:
            raise NotFound(f"There is no audit entry #{audit_id} in your organization.",
                           hint="Clear the filters and pick an entry from the list.")
        reverted_by = None if entry.reverted_by_id is None else s.get(AuditLog, entry.reverted_by_id)
        reverts = s.scalars(_scoped(actor, select(AuditLog).where(AuditLog.reverted_by_id == entry.id))).first()
        return EntryDetail(entry=to_row(entry), reverted_by=None if reverted_by is None else to_row(reverted_by),
                           reverts=None if reverts is None else to_row(reverts))


def _flatten(data: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """The fields that differ between two states as (field, before, after), nested keys dotted, sorted.

    A field missing on one side shows as None there.
    """
    old, new = _flatten(before), _flatten(after)
    changes: list[tuple[str, Any, Any]] = []
    for field in sorted(old.keys() | new.keys()):
        a, b = old.get(field), new.get(field)
        # True == 1 in Python, but a flag turning into a number is a change worth showing.
        if a != b or isinstance(a, bool) != isinstance(b, bool):
            changes.append((field, a, b))
    return changes
