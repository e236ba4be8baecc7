"""review_sql's binary-search CASEs (bin_sql, window_index) answer as the Python rules do, on SQLite and
PostgreSQL: every bin edge k/n, a hair either side of it, 0, 1, NULL; every window start and the moments
around it; and the read session turns PostgreSQL's JIT off for its transaction only."""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import literal, select, text, union_all

from aiconsole.platform.db import org_session, service_session
from aiconsole.platform.settings import Settings
from aiconsole.quality.review_sql import bin_sql, read_session, window_index
from aiconsole.quality.stats import bin_index


def _values(n: int) -> list[float]:
    edges = [k / n for k in range(n + 1)]
    return sorted({0.0, 1.0, 0.58, 0.29, *edges, *(math.nextafter(e, 2) for e in edges),
                   *(math.nextafter(e, -1) for e in edges if e > 0)})


def _column(values: list[Any]) -> Any:
    rows = union_all(*(select(literal(i).label("i"), literal(v).label("v")) for i, v in enumerate(values)))
    return rows.subquery()


@pytest.mark.parametrize("n_bins", [2, 7, 10, 20, 50, 100])
def test_bins_match_the_python_rule(any_settings: Settings, n_bins: int) -> None:
    values = _values(n_bins)
    rows = _column([*values, None])
    with service_session(settings=any_settings) as s:
        got: dict[int, int] = dict(s.execute(select(rows.c.i, bin_sql(rows.c.v, n_bins))).all())
    # stats.bin_index's floor(c x n) is off by one where c x n rounds across an integer; the SQL compares
    # with the edge k/n itself, as the tag rule compares a confidence with its threshold.
    want = {i: max(k for k in range(n_bins) if k == 0 or v >= k / n_bins) for i, v in enumerate(values)}
    assert {i: got[i] for i in want} == want
    assert got[len(values)] == 0  # NULL falls to the first bin, as the flat CASE's ELSE did
    assert [got[i] for i, v in enumerate(values) if abs(v * n_bins - round(v * n_bins)) > 1e-9] == [
        bin_index(v, n_bins) for v in values if abs(v * n_bins - round(v * n_bins)) > 1e-9]


@pytest.mark.parametrize("windows", [1, 2, 3, 30, 90])
def test_windows_match_bisect(any_settings: Settings, windows: int) -> None:
    start = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    starts = [start + timedelta(days=i) for i in range(windows)]
    moments = sorted({start - timedelta(days=1), *starts, *(s - timedelta(microseconds=1) for s in starts),
                      *(s + timedelta(hours=7) for s in starts)})
    rows = _column(moments)
    with service_session(settings=any_settings) as s:
        got: dict[int, int] = dict(s.execute(select(rows.c.i, window_index(rows.c.v, starts))).all())
    assert [got[i] for i in range(len(moments))] == [max(0, bisect.bisect_right(starts, m) - 1) for m in moments]


def test_read_session_turns_jit_off_for_its_transaction(pg_settings: Settings) -> None:
    with read_session(1, settings=pg_settings) as s:
        assert s.execute(text("SHOW jit")).scalar_one() == "off"
    with org_session(1, settings=pg_settings) as s:
        assert s.execute(text("SHOW jit")).scalar_one() == "on"
