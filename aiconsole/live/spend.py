"""Spend per organization-local day and provider for Live Status's cost chart.

The days are calendar days in the organization's time zone, so their windows are read through the same
`window_totals` query as today and this month (whole hours from the rollups, partial hours from results):
adding them to a refresh costs no extra query.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta

import pandas as pd

from aiconsole.pipeline.health_report import ordered_providers
from aiconsole.pipeline.rollups import Totals
from aiconsole.platform.clock import Clock, Window

SPEND_DAYS = 14
_PREFIX = "day:"


def day_windows(clock: Clock, days: int = SPEND_DAYS) -> dict[str, Window]:
    """The last `days` local calendar days up to now (today last), named 'day:YYYY-MM-DD', as [start, end)."""
    today = clock.now.astimezone(clock.tz).date()
    windows: dict[str, Window] = {}
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(0), tzinfo=clock.tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.tz).astimezone(UTC)
        windows[f"{_PREFIX}{day.isoformat()}"] = (start, min(end, clock.now))
    return windows


def daily_spend(totals: Mapping[str, Mapping[str, Totals]], clock: Clock, days: int = SPEND_DAYS) -> pd.DataFrame:
    """day (a local date), provider, cost_micros: every day, for each provider with spend in any of them."""
    names = list(day_windows(clock, days))
    providers = ordered_providers({p for n in names for p, t in totals.get(n, {}).items() if t.cost_micros})
    rows = [(pd.Timestamp(name.removeprefix(_PREFIX)), p, int(totals.get(name, {}).get(p, Totals()).cost_micros))
            for p in providers for name in names]
    return pd.DataFrame(rows, columns=["day", "provider", "cost_micros"]).astype({"cost_micros": "int64"})
