"""A provider failing 38% of calls (HTTP 503 from the emulator, real google-genai client) under a worker: the
circuit backs off instead of pausing and resuming the organization in a tight loop, Live Status can read its
state and next probe from the shared circuit rows, and no photo fails because of the breaker (issue 9 item 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import select

from aiconsole.live import status as live_status
from aiconsole.pipeline import circuits
from aiconsole.pipeline.routing import open_interval
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProviderHealth, AuditLog, Photo, PipelineConfig
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    InProcessWorker,
    all_terminal,
    enqueue,
    make_org,
    results_per_photo,
    status_counts,
    wait_until,
)

pytestmark = pytest.mark.slow
OPEN_S, MAX_OPEN_S = 0.5, 4.0
# Two calls at 50% open it, which a 38% provider reaches within a few calls of three resumes in four (the
# small-sample trips behind the loop); a 20 s window (and so recovery period) keeps every reopening of the
# run on probation, so the period only grows.
BREAKER = {"breaker_min_calls": 2, "breaker_window_s": 20, "breaker_open_s": OPEN_S, "breaker_max_open_s": MAX_OPEN_S,
           "breaker_error_rate": 0.5, "retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2}
FAULTY_S = 20.0


def max_cycles(elapsed_s: float) -> int:
    """The most pauses a backed-off circuit fits into `elapsed_s`: one per open period, periods doubling."""
    n, spent = 1, 0.0
    while spent + open_interval(n - 1, open_s=OPEN_S, max_open_s=MAX_OPEN_S) <= elapsed_s:
        spent += open_interval(n - 1, open_s=OPEN_S, max_open_s=MAX_OPEN_S)
        n += 1
    return n


def _pauses(org: int) -> list[tuple[str, str]]:
    with service_session() as s:
        return [(a, who) for a, who in s.execute(select(AuditLog.action, AuditLog.actor).where(
            AuditLog.organization_id == org, AuditLog.action.in_(("queue.pause", "queue.resume")))
            .order_by(AuditLog.id)).all()]


def _open_rows(org: int) -> list[tuple[datetime, dict]]:  # type: ignore[type-arg]
    with service_session() as s:
        return [(at, d) for at, d in s.execute(select(AiProviderHealth.last_check, AiProviderHealth.error_details)
                                               .where(AiProviderHealth.organization_id == org)
                                               .order_by(AiProviderHealth.id)).all()
                if d and d.get("source") == circuits.SOURCE and d.get("circuit") == "open"]


def _paused(org: int) -> bool:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        return bool(cfg and cfg.paused)


def test_a_38_percent_fault_rate_backs_the_circuit_off_and_fails_no_photo(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    provider = emulator_factory(error_rate_503=1.0, latency_ms=(20, 40))
    org = make_org(provider="gemini", endpoint=provider.url, max_retries=25)  # 0.38^26: no photo runs out
    ids = enqueue(org, 400, settings=any_settings)  # more than the faulty stretch gets through
    seen_on_live_status: list[live_status.StatusCards] = []
    with InProcessWorker(concurrency=2, batch_size=4, resume_check_interval_s=0.2, calls=BREAKER):
        started = time.monotonic()
        hard = True  # down until two probes failed, then failing 38% of calls
        while time.monotonic() - started < FAULTY_S:
            if hard and len(_open_rows(org)) >= 3:
                provider.configure(error_rate_503=0.38)
                hard = False
            if _paused(org):
                cards = live_status.status_cards(organization_id=org)
                if cards.paused_circuit is not None:
                    seen_on_live_status.append(cards)
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        pauses = sum(1 for action, _ in _pauses(org) if action == "queue.pause")
        provider.configure(error_rate_503=0.0)  # the provider recovers
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=90, what="every photo processed")
        wait_until(lambda: not _paused(org), timeout_s=30, what="the last probe's resume")

    # The back-off bounds the pauses by the open periods that fit (a fixed 0.5 s pause: one every ~second).
    assert 1 <= pauses <= max_cycles(elapsed), (pauses, max_cycles(elapsed))
    entries = _pauses(org)
    assert all(who == "system:worker" for _, who in entries)
    assert [a for a, _ in entries] == ["queue.pause", "queue.resume"] * (len(entries) // 2)

    # The shared circuit's open periods double with each reopening (all on probation), probes failed or not,
    # up to the cap: levels 0, 1, 2, ... and each period the level's.
    rows = _open_rows(org)
    levels = [d["level"] for _, d in rows]
    periods = [(datetime.fromisoformat(d["next_probe_at"]) - at).total_seconds() for at, d in rows]
    assert levels == list(range(len(levels))) and len(levels) >= 3, levels  # the first probes failed
    for level, period in zip(levels, periods, strict=True):
        assert period == pytest.approx(open_interval(level, open_s=OPEN_S, max_open_s=MAX_OPEN_S), abs=0.05), \
            (levels, periods)

    # Live Status (another session, as the console reads it) showed the circuit and its next probe.
    assert seen_on_live_status, "Live Status never saw the circuit pause"
    circuit = seen_on_live_status[-1].paused_circuit
    assert circuit is not None and circuit.provider == "gemini" and circuit.state in ("open", "half_open")
    assert any(c.paused_circuit and c.paused_circuit.next_probe_at for c in seen_on_live_status)

    # No photo failed, none twice, none because of the breaker: sent back, its attempt not counted.
    assert status_counts(org).get("failed", 0) == 0
    assert set(results_per_photo(org).values()) == {1} and len(results_per_photo(org)) == len(ids)
    with service_session() as s:
        photos = s.execute(select(Photo.attempts, Photo.last_error).where(Photo.organization_id == org)).all()
    assert not any("circuit" in (error or "").lower() for _, error in photos)
    assert max(attempts for attempts, _ in photos) <= 26
