"""Two workers (two Callers and HealthReporters, real google-genai clients, the emulator) share one circuit:
one probe at a time, the back-off level carried across them, and a breaker that another worker's probe made
stale closes instead of pausing the organization again (issue 9 item 4)."""

from __future__ import annotations

import threading
import time

import pytest

from aiconsole.pipeline import circuits, config_row
from aiconsole.pipeline.calls import Caller, CallOptions
from aiconsole.pipeline.context import ContextCache
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.provider_health import HealthReporter
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import GEMINI_PATH, EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import make_org, wait_until  # noqa: E402

OPTIONS = CallOptions(breaker_min_calls=2, breaker_window_s=30, breaker_open_s=0.3, breaker_max_open_s=5.0)


def _worker(name: str, settings: Settings) -> HealthReporter:
    caller = Caller(worker_id=name, settings=settings, metrics=WorkerMetrics(), options=OPTIONS)
    return HealthReporter(worker_id=name, caller=caller, contexts=ContextCache(ttl_s=60), idle_probe_interval_s=900)


def _circuit(org: int) -> circuits.Circuit:
    with service_session() as s:
        found = circuits.latest_one(s, org, "gemini", now=utcnow())
    assert found is not None
    return found


def _paused(org: int) -> bool:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        return bool(cfg and cfg.paused)


def _trip(reporter: HealthReporter, org: int) -> None:
    """What a worker does when its breaker opens and a photo finds no route: open the circuit, pause."""
    breaker = reporter.caller.breaker(org, "gemini")
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "open"
    if reporter.circuit_opened(org, "gemini"):
        config_row.auto_pause_org(org, kind=config_row.CIRCUIT_OPEN, reason="Provider circuit open: gemini")


def test_workers_share_the_circuit_its_probe_and_its_back_off(any_settings: Settings,
                                                             emulator: EmulatorServer) -> None:
    emulator.configure(error_rate_503=1.0, latency_ms=(600, 600))
    org = make_org(provider="gemini", endpoint=emulator.url)
    a, b = _worker("worker-a", any_settings), _worker("worker-b", any_settings)

    _trip(a, org)
    assert _paused(org)
    first = _circuit(org)
    assert (first.state, first.level, first.worker) == ("open", 0, "worker-a")
    assert not b.probe_circuit(org)  # not due yet: B follows the shared schedule, not its own closed breaker

    time.sleep(0.35)
    before = sum(1 for _, path, _ in emulator.request_log if GEMINI_PATH.match(path))
    probing = threading.Thread(target=b.probe_circuit, args=(org,))
    probing.start()
    wait_until(lambda: _circuit(org).state == "half_open", timeout_s=10, interval_s=0.02, what="B's claim")
    assert _circuit(org).worker == "worker-b"
    assert not a.probe_circuit(org)  # B's probe is out: one at a time across workers
    probing.join(timeout=30)
    assert sum(1 for _, path, _ in emulator.request_log if GEMINI_PATH.match(path)) == before + 1
    failed = _circuit(org)
    assert (failed.state, failed.level, failed.error_kind) == ("open", 1, "server_error")  # doubled: 0.6 s
    assert (failed.next_probe_at - failed.at).total_seconds() == pytest.approx(0.6, abs=0.02)  # type: ignore[operator]

    emulator.configure(error_rate_503=0.0, latency_ms=(0, 0))
    time.sleep(0.65)
    assert b.probe_circuit(org)  # due again; this one succeeds and resumes the organization
    assert not _paused(org) and _circuit(org).state == "closed" and _circuit(org).level == 1

    # A's breaker still holds its old opening: a photo that finds no route there must not pause again.
    assert a.caller.breaker(org, "gemini").state != "closed"
    assert not a.circuit_opened(org, "gemini")
    assert a.caller.breaker(org, "gemini").state == "closed" and not _paused(org)

    # Opening again on probation (well within the 30 s window) doubles once more, across workers.
    _trip(a, org)
    again = _circuit(org)
    assert (again.state, again.level) == ("open", 2) and _paused(org)
    assert (again.next_probe_at - again.at).total_seconds() == pytest.approx(1.2, abs=0.02)  # type: ignore[operator]


def test_a_breaker_that_opens_while_routing_to_a_fallback_is_written_once_per_change(any_settings: Settings) -> None:
    org = make_org(provider="gemini", endpoint="http://127.0.0.1:9", fallback="local")
    a = _worker("worker-a", any_settings)
    breaker = a.caller.breaker(org, "gemini")
    assert a.write_health() == 0  # nothing changed: a closed breaker is not news
    breaker.record(False)
    breaker.record(False)
    assert a.write_health() == 1
    opened = _circuit(org)
    assert (opened.state, opened.level, opened.failure_rate, opened.worker) == ("open", 0, 1.0, "worker-a")
    assert a.write_health() == 0  # still the same opening
    time.sleep(0.35)
    assert breaker.allow()
    breaker.record(True)  # a photo's half-open probe closed it
    assert a.write_health() == 1 and _circuit(org).state == "closed"
