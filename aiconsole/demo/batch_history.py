"""The demo's batch corrections: two an admin ran some days ago, so the Batch corrections tab's history shows
real ones with true counts, and Undo works on them.

They are run by the real batch code (`quality.batches.run_batch`) on the seeded organization, as its admin,
at a past moment: every row (the batch, its items with before and after, the photos' ground truth, the
start and finish audit entries) is what a run writes. Only what the batch code stamps with the wall clock
is moved to that moment afterwards (the audit entries, the finish). Each selects tags nobody decided by hand
and photos that arrived before it ran, so nothing the review history did later is changed by it and an
undo restores every row.

- rename 'vehicle' to 'motorcycle' (too generic: every photo tagged so is the motorcycle) on the two days
  of photos before it; a photo that has a 'motorcycle' tag already gets its 'vehicle' tag rejected instead;
- accept 'black and white' at or above 0.9 on the three days of photos before it: confirmed by a person,
  so those labels become ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import AuditLog, CorrectionBatch, User
from aiconsole.platform.settings import Settings
from aiconsole.quality import batches
from aiconsole.quality.batch_select import BatchFilter

ADMIN_EMAIL = "admin@demo.aiconsole.dev"
RATE_PER_SECOND = 1500  # how long a seeded batch took: about the benchmark's rate, at least a second


@dataclass(frozen=True)
class DemoBatch:
    """One batch the demo runs: how many days ago (at a local time), on how many days of photos before."""

    days_ago: int
    at: time
    window_days: int
    filters: dict[str, Any]
    template: str
    params: dict[str, Any]


DEMO_BATCHES = (
    DemoBatch(9, time(10, 20), 2, {"label": "vehicle", "decided": False}, "rename",
              {"from_label": "vehicle", "to_label": "motorcycle"}),
    DemoBatch(4, time(15, 5), 3, {"label": "black and white", "decided": False}, "accept", {"at_least": 0.9}),
)


def moment(now: datetime, tz: ZoneInfo, days_ago: int, at: time) -> datetime:
    """`days_ago` calendar days before `now` in the organization's zone, at local time `at`."""
    day = now.astimezone(tz).date() - timedelta(days=days_ago)
    return datetime.combine(day, at, tzinfo=tz)


def seed_batches(*, organization_id: int, now: datetime, tz: ZoneInfo, settings: Settings,
                 plan: tuple[DemoBatch, ...] = DEMO_BATCHES) -> list[batches.BatchRow]:
    """Run each planned batch as the demo admin at its past moment; the finished batches, oldest first."""
    with service_session(settings=settings) as s:
        admin = s.scalar(select(User.id).where(User.organization_id == organization_id, User.email == ADMIN_EMAIL))
    actor = Actor(user_id=admin, email=ADMIN_EMAIL, role="admin", organization_id=organization_id)
    done = []
    for spec in sorted(plan, key=lambda b: -b.days_ago):
        started = moment(now, tz, spec.days_ago, spec.at)
        if started >= now:
            continue
        filters = BatchFilter(**spec.filters, since=started - timedelta(days=spec.window_days), until=started)
        row = batches.run_batch(actor, filters=filters, template=spec.template, params=spec.params, now=started,
                                settings=settings)
        done.append(_date(row, organization_id, started, settings))
    return done


def _date(row: batches.BatchRow, org: int, started: datetime, settings: Settings) -> batches.BatchRow:
    """Move the batch's wall-clock stamps (finish, audit entries) to its seeded moment."""
    finished = started + timedelta(seconds=max(1, math.ceil(row.processed / RATE_PER_SECOND)))
    with service_session(settings=settings) as s:
        s.execute(update(CorrectionBatch).where(CorrectionBatch.id == row.id).values(finished_at=finished))
        for action, at in (("quality.batch.start", started), ("quality.batch.finish", finished)):
            s.execute(update(AuditLog).where(AuditLog.organization_id == org, AuditLog.action == action,
                                             AuditLog.entity_type == "correction_batch",
                                             AuditLog.entity_id == str(row.id)).values(created_at=at))
    return row
