"""Circuit breaker: opens on the primary's errors, the fallback serves, it closes after recovery; without a
fallback the organization pauses itself with the reason and resumes when a probe succeeds."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, AuditLog, PipelineConfig
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import GEMINI_PATH, EmulatorServer

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
# A fixed open period (the cap at the base): these tests are about fallback, pause and recovery; the back-off
# has its own (test_worker_breaker_backoff.py).
BREAKER = {"breaker_min_calls": 4, "breaker_window_s": 30, "breaker_open_s": 2.0, "breaker_max_open_s": 2.0,
           "breaker_error_rate": 0.5, "retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2}


def _results(org: int) -> list[AiProcessingResult]:
    with service_session() as s:
        return list(s.scalars(select(AiProcessingResult).where(AiProcessingResult.organization_id == org)
                              .order_by(AiProcessingResult.id)))


def _gemini_calls(emulator: EmulatorServer) -> int:
    return sum(1 for _, path, _ in emulator.request_log if GEMINI_PATH.match(path))


def test_breaker_opens_fallback_serves_and_breaker_closes_after_recovery(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    primary = emulator_factory(error_rate_503=1.0, latency_ms=(5, 10))
    backup = emulator_factory(latency_ms=(40, 60))  # slow enough that photos remain when the primary recovers
    org = make_org(provider="gemini", endpoint=primary.url, fallback="google-vision", fallback_endpoint=backup.url)
    ids = enqueue(org, 150, settings=any_settings)
    started = time.monotonic()
    with InProcessWorker(concurrency=2, batch_size=4, calls=BREAKER) as worker:
        wait_until(lambda: sum(r.ai_provider == "google-vision" for r in _results(org)) >= 15, timeout_s=60,
                   what="the fallback serving")
        breaker = worker.caller.breaker(org, "gemini")
        assert breaker.state in ("open", "half_open")
        outage_s = time.monotonic()
        calls_during_outage = _gemini_calls(primary)
        primary.configure(error_rate_503=0.0)  # the primary recovers
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=90, what="every photo processed")
        assert breaker.state == "closed"
    results = _results(org)
    assert Counter(results_per_photo(org).values()) == {1: len(ids)}
    assert status_counts(org).get("failed", 0) == 0
    by_provider = Counter(r.ai_provider for r in results)
    assert by_provider["google-vision"] >= 15 and by_provider["gemini"] >= 1
    # Recovery: the last results came from the primary again.
    assert [r.ai_provider for r in results[-5:]] == ["gemini"] * 5
    fallback_route = next(step for step in next(r for r in results if r.ai_provider == "google-vision").trace
                          if step["step"] == "route")
    assert fallback_route["fallback"] is True and "circuit of gemini is open" in fallback_route["reason"]
    # While open, the primary saw the calls that opened it (4, plus 2 already in flight) and one probe per
    # 2 s open period, not the traffic.
    assert calls_during_outage <= 4 + 2 + (outage_s - started) / 2.0 + 1


def test_without_fallback_the_org_pauses_itself_and_a_probe_resumes_it(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    primary = emulator_factory(error_rate_503=1.0)
    org = make_org(provider="gemini", endpoint=primary.url)
    ids = enqueue(org, 30, settings=any_settings)

    def config() -> PipelineConfig:
        with service_session() as s:
            cfg = s.get(PipelineConfig, org)
            assert cfg is not None
            return cfg

    with InProcessWorker(concurrency=2, batch_size=4, resume_check_interval_s=0.2,
                         calls={**BREAKER, "breaker_open_s": 1.0, "breaker_max_open_s": 1.0}) as worker:
        wait_until(lambda: config().paused, timeout_s=60, what="the automatic pause")
        reason = config().pause_reason or ""
        assert reason.startswith("Provider circuit open: gemini failed 100% of recent calls and no fallback")
        assert config().pause_kind == "circuit_open"
        wait_until(lambda: not worker.held_ids(), timeout_s=30, what="the worker to let go of every photo")
        counts = status_counts(org)
        assert counts.get("processing", 0) == 0 and counts.get("failed", 0) == 0
        primary.configure(error_rate_503=0.0)
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="processing after the resume")
    assert not config().paused
    assert Counter(results_per_photo(org).values()) == {1: len(ids)}
    assert status_counts(org).get("failed", 0) == 0
    with service_session() as s:
        entries = s.execute(select(AuditLog.action, AuditLog.actor, AuditLog.summary).where(
            AuditLog.organization_id == org, AuditLog.action.in_(("queue.pause", "queue.resume")))
            .order_by(AuditLog.id)).all()
    assert [(a, who) for a, who, _ in entries] == [("queue.pause", "system:worker"), ("queue.resume", "system:worker")]
    assert "probe of gemini succeeded" in entries[1][2]
