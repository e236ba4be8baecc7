"""The budget guard: an organization's spend today and this month against its budgets.

Spend is read in the organization's time zone, exact to the second (the same figures Live Status shows).
Once a budget is used up the guard pauses the organization, audited as system:worker, with a
`daily_budget` or `monthly_budget` pause kind; it lifts that pause (and only a pause of those kinds) once
spend is under the budgets again: a new day or month, or a raised budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from aiconsole.pipeline import config_row
from aiconsole.pipeline.rollups import sum_totals, window_totals
from aiconsole.platform.actor import Actor
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.clock import named_windows, org_clock
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import LabRunItem, PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.money import format_usd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetStatus:
    """An organization's spend against its budgets, and whether the guard paused it."""

    organization_id: int
    spent_today_micros: int
    spent_month_micros: int
    daily_budget_micros: int | None
    monthly_budget_micros: int | None
    reason: str | None
    paused_now: bool

    @property
    def reached(self) -> bool:
        """Whether a budget is used up."""
        return self.reason is not None


def budget_reached(*, spent_today: int, spent_month: int, daily: int | None,
                   monthly: int | None) -> tuple[str, str] | None:
    """(pause kind, reason) when a budget is used up, else None."""
    def usd(micros: int, budget: int) -> str:
        # Cents for budgets of a dollar or more; a $0.0050 test budget needs four places to read.
        return format_usd(micros, places=2 if budget >= 1_000_000 else 4)

    if daily is not None and spent_today >= daily:
        return (config_row.DAILY_BUDGET,
                f"Daily budget of {usd(daily, daily)} reached ({usd(spent_today, daily)} spent today).")
    if monthly is not None and spent_month >= monthly:
        return (config_row.MONTHLY_BUDGET, f"Monthly budget of {usd(monthly, monthly)} reached "
                                           f"({usd(spent_month, monthly)} spent this month).")
    return None


def _spend(session: Session, organization_id: int, now: datetime) -> tuple[int, int]:
    """Today's and this month's spend in micro-dollars, in the organization's time zone."""
    clock = org_clock(session, organization_id=organization_id, now=now)
    windows = named_windows(clock, ("today", "month"))
    totals = window_totals(session, organization_id=organization_id, windows=windows)
    return (sum_totals(totals["today"]).cost_micros + _lab_spend(session, organization_id, windows["today"]),
            sum_totals(totals["month"]).cost_micros + _lab_spend(session, organization_id, windows["month"]))


def _lab_spend(session: Session, organization_id: int, window: tuple[datetime, datetime]) -> int:
    """What the Testing Lab's batch tests spent in [start, end): their calls are the org's spend too."""
    item = LabRunItem
    return int(session.scalar(select(func.coalesce(func.sum(item.cost_micros), 0)).where(
        item.organization_id == organization_id, item.finished_at >= window[0], item.finished_at < window[1])) or 0)


class BudgetGuard:
    """Pauses an organization (audited, as system:worker) once today's or this month's spend reaches its budget."""

    def __init__(self, *, engine: Engine | None = None, actor_name: str = "worker") -> None:
        self.engine = engine
        self.actor_name = actor_name

    def check(self, organization_id: int, *, now: datetime | None = None) -> BudgetStatus:
        """Compare spend with the budgets and pause the organization when one is reached."""
        now = now or utcnow()
        with service_session(engine=self.engine) as s:
            cfg = s.get(PipelineConfig, organization_id)
            daily = cfg.daily_budget_micros if cfg else None
            monthly = cfg.monthly_budget_micros if cfg else None
            if cfg is None or (daily is None and monthly is None):
                return BudgetStatus(organization_id, 0, 0, daily, monthly, None, False)
            today, month = _spend(s, organization_id, now)
            reached = budget_reached(spent_today=today, spent_month=month, daily=daily, monthly=monthly)
            if reached is not None and not cfg.paused:
                # Lock the row only to pause it (a check per claim must not queue behind console edits),
                # and look again under the lock: another worker may have paused it meanwhile.
                s.refresh(cfg, with_for_update=True)
            paused_now = reached is not None and not cfg.paused
            if reached is not None and paused_now:
                config_row.auto_pause(s, cfg, kind=reached[0], reason=reached[1], now=now,
                                      actor=Actor.system(self.actor_name, organization_id),
                                      noted={"spent_today_micros": today, "spent_month_micros": month})
        reason = reached[1] if reached is not None else None
        if paused_now:
            log.warning("organization %s paused: %s", organization_id, reason)
            invalidate_live(organization_id)
        return BudgetStatus(organization_id, today, month, daily, monthly, reason, paused_now)

    def resume_if_clear(self, organization_id: int, *, now: datetime | None = None) -> bool:
        """Lift the guard's own budget pause once spend is under the budgets again (a new day, a raised budget)."""
        now = now or utcnow()
        with service_session(engine=self.engine) as s:
            cfg = config_row.lock(s, organization_id)
            if cfg is None or not cfg.paused or cfg.pause_kind not in config_row.BUDGET_KINDS:
                return False
            today, month = _spend(s, organization_id, now)
            if budget_reached(spent_today=today, spent_month=month, daily=cfg.daily_budget_micros,
                              monthly=cfg.monthly_budget_micros) is not None:
                return False
            config_row.auto_resume(s, cfg, actor=Actor.system(self.actor_name, organization_id), now=now,
                                   why="spend is under the budgets again")
        invalidate_live(organization_id)
        return True
