"""Why photos failed, in stable categories people can group by, and the failed photos of each.

Every failed photo has a newest result row whose `error_kind` is the pipeline's (the provider error kinds of
`aiconsole.providers.base`, plus image, prompt, internal, unrecordable and lease_expired from the worker,
recorder and reaper). `reason_kind` maps each to one of `REASON_KINDS`, a contract with the Live Status page,
each with a sentence people can read; the same map is a SQL CASE (`reason_kind_sql`), so grouping runs in the
database. Nothing new is stored: the kind and the message are already on the result row (no migration).
Budgets pause processing instead of failing photos, so no reason kind stands for them.

For the Live Status owner:
- `failed_groups(organization_id=...)`: one `FailedGroup` per reason kind, newest group first, with the
  count, the newest failure's time and message, and a few sample photos (ids and file names);
- `failed_photo_ids(organization_id=..., reason_kind=...)`: the group's photo ids, newest first;
- `in_group(organization_id=..., reason_kind=...)`: the same group as a WHERE clause over `photos`, for a
  Retry of one group as one UPDATE (e.g. control.queue_actions' audited requeue), so a photo that failed
  for another reason meanwhile is not retried with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import aliased

from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import AiProcessingResult, Photo
from aiconsole.platform.errors import ValidationFailed

# Reason kind -> what people read.
REASON_KINDS: dict[str, str] = {
    "auth": "The provider refused the credentials (a missing or invalid API key, or no permission).",
    "unreachable": "The provider could not be reached (connection refused, unknown host, network down).",
    "rate_limited": "The provider's rate limit was hit every time the photo was tried.",
    "timeout": "The provider did not answer in time.",
    "provider_error": "The provider failed on its side (a server error).",
    "bad_response": "The provider's answer could not be used (not the label list asked for).",
    "bad_photo": "The photo could not be read, or the provider refused it as invalid.",
    "blocked": "The provider refused the photo's content (a safety filter).",
    "prompt": "The prompt could not be rendered for the photo.",
    "other": "Something else went wrong; the message says what.",
}
# The pipeline's error kinds -> reason kinds (anything else is "other").
_KIND_TO_REASON = {
    "auth": "auth", "connection": "unreachable", "rate_limited": "rate_limited", "timeout": "timeout",
    "server_error": "provider_error", "malformed": "bad_response", "bad_request": "bad_photo",
    "image": "bad_photo", "blocked": "blocked", "prompt": "prompt",
    # The demo's history names a few the way Google's errors do.
    "invalid_argument": "bad_photo", "image_decode": "bad_photo", "bad_response": "bad_response",
}
DEFAULT_LIMIT = 20
SAMPLES = 3
_MESSAGE_CHARS = 500

_P = Photo
_R = AiProcessingResult


def reason_kind(error_kind: str | None) -> str:
    """The reason kind of a failure with this error kind ('other' for unknown or none)."""
    return _KIND_TO_REASON.get(error_kind or "", "other")


def reason_kind_sql(error_kind: Any) -> ColumnElement[str]:
    """`reason_kind` as a SQL CASE over an error-kind column."""
    return case(_KIND_TO_REASON, value=error_kind, else_="other")


@dataclass(frozen=True)
class FailedGroup:
    """The organization's failed photos of one reason kind."""

    reason_kind: str
    reason: str  # REASON_KINDS[reason_kind]
    count: int
    newest_at: datetime | None  # when the newest of them failed
    latest_error: str | None  # the newest one's message
    sample_photo_ids: tuple[int, ...]  # newest first, at most `samples`
    sample_filenames: tuple[str, ...]


def _failed(organization_id: int) -> Select[int, str, datetime, str, str]:
    """The organization's failed photos with the reason kind and message of their newest result."""
    # Aliases: `in_group` puts this inside an UPDATE of photos, whose table must not be correlated in here.
    p, r, newest = aliased(_P), aliased(_R), aliased(_R)
    last_result = (select(func.max(newest.id))
                   .where(newest.photo_id == p.id, newest.organization_id == organization_id)
                   .scalar_subquery())
    return (select(p.id, p.filename, func.coalesce(p.completed_at, p.updated_at).label("at"),
                   func.coalesce(r.error, p.last_error).label("message"),
                   reason_kind_sql(r.error_kind).label("reason_kind"))
            .select_from(p)
            .outerjoin(r, and_(r.id == last_result, r.organization_id == organization_id))
            .where(p.organization_id == organization_id, p.status == "failed"))


def _check_kind(kind: str) -> None:
    if kind not in REASON_KINDS:
        raise ValidationFailed(f"There is no failure reason '{kind[:40]}'.",
                               hint=f"Reasons: {', '.join(REASON_KINDS)}.")


def failed_groups(*, organization_id: int, limit: int = DEFAULT_LIMIT, samples: int = SAMPLES) -> list[FailedGroup]:
    """Failed photos grouped by reason kind, the group with the newest failure first (aggregated in SQL)."""
    failed = _failed(organization_id).subquery()
    newest = func.max(failed.c.at)
    with org_session(organization_id) as s:
        groups = s.execute(
            select(failed.c.reason_kind, func.count(), newest)
            .group_by(failed.c.reason_kind)
            .order_by(newest.desc(), func.count().desc(), failed.c.reason_kind)
            .limit(max(1, limit))
        ).all()
        rank = func.row_number().over(partition_by=failed.c.reason_kind,
                                      order_by=(failed.c.at.desc(), failed.c.id.desc())).label("rank")
        ranked = select(failed.c.reason_kind, failed.c.id, failed.c.filename, failed.c.message, rank).subquery()
        rows = s.execute(select(ranked).where(ranked.c.rank <= max(1, samples),
                                              ranked.c.reason_kind.in_([g[0] for g in groups]))
                         .order_by(ranked.c.reason_kind, ranked.c.rank)).all()
    picked: dict[str, list[Any]] = {}
    for r in rows:
        picked.setdefault(r.reason_kind, []).append(r)
    out = []
    for kind, count, newest in groups:
        sample = picked.get(kind, [])[:samples]
        message = picked[kind][0].message if picked.get(kind) else None
        out.append(FailedGroup(
            reason_kind=kind, reason=REASON_KINDS.get(kind, REASON_KINDS["other"]), count=int(count),
            newest_at=newest, latest_error=None if message is None else str(message)[:_MESSAGE_CHARS],
            sample_photo_ids=tuple(int(r.id) for r in sample), sample_filenames=tuple(r.filename for r in sample)))
    return out


def failed_photo_ids(*, organization_id: int, reason_kind: str, limit: int | None = None) -> list[int]:
    """The ids of the organization's failed photos of one reason kind, newest failure first."""
    _check_kind(reason_kind)
    failed = _failed(organization_id).subquery()
    query = (select(failed.c.id).where(failed.c.reason_kind == reason_kind)
             .order_by(failed.c.at.desc(), failed.c.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    with org_session(organization_id) as s:
        return [int(i) for i in s.scalars(query)]


def in_group(*, organization_id: int, reason_kind: str) -> ColumnElement[bool]:
    """A WHERE clause over `photos`: the organization's failed photos of one reason kind, evaluated when run."""
    _check_kind(reason_kind)
    failed = _failed(organization_id).subquery()
    return and_(_P.organization_id == organization_id, _P.status == "failed",
                _P.id.in_(select(failed.c.id).where(failed.c.reason_kind == reason_kind)))
