"""kill -9 a worker mid-batch: after its leases expire, every photo ends with exactly one result.

Also the graceful side: SIGTERM finishes what is in flight within the timeout and releases the rest.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, Worker
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    all_terminal,
    enqueue,
    make_org,
    results_per_photo,
    start_workers,
    status_counts,
    stop_workers,
    wait_until,
    worker_id_of,
)

pytestmark = pytest.mark.slow


def _held_by(worker_id: str) -> dict[int, int]:
    with service_session() as s:
        return {int(i): int(a) for i, a in s.execute(select(Photo.id, Photo.attempts).where(
            Photo.lease_owner == worker_id, Photo.status == "processing")).all()}


def _recorded_by(worker_id: str) -> int:
    with service_session() as s:
        return len(s.scalars(select(AiProcessingResult.id).where(AiProcessingResult.worker_id == worker_id)).all())


def test_killed_worker_leaves_nothing_lost_or_doubled(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    emulator = emulator_factory(latency_ms=(300, 500))
    org = make_org(provider="google-vision", endpoint=emulator.url)
    ids = enqueue(org, 60, settings=any_settings)
    [victim] = start_workers(1, log_dir=tmp_path, concurrency=8, batch_size=8, lease_seconds=3,
                             poll_interval_s=0.1)
    vid = worker_id_of(victim)
    try:
        wait_until(lambda: _recorded_by(vid) >= 8 and len(_held_by(vid)) >= 4, timeout_s=60,
                   interval_s=0.05, what="the victim to record some photos and hold others")
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        killed_at = time.monotonic()
        orphans = _held_by(vid)
        assert orphans, "the victim held no photos when it died"
    finally:
        if victim.poll() is None:
            victim.kill()
    rescuers = start_workers(1, log_dir=tmp_path, concurrency=8, batch_size=8, lease_seconds=3,
                             poll_interval_s=0.1, reap_interval_s=0.5)
    try:
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=90, what="every photo processed")
        rescued_after = time.monotonic() - killed_at
    finally:
        assert stop_workers(rescuers) == [0]

    per_photo = results_per_photo(org)
    assert Counter(per_photo.values()) == {1: len(ids)} and set(per_photo) == set(ids)
    assert status_counts(org).get("failed", 0) == 0
    rid = worker_id_of(rescuers[0])
    with service_session() as s:
        rows = {int(r.photo_id): r for r in s.execute(
            select(AiProcessingResult.photo_id, AiProcessingResult.worker_id, AiProcessingResult.retry_count)
            .where(AiProcessingResult.photo_id.in_(list(orphans)))).all()}
        attempts = dict(s.execute(select(Photo.id, Photo.attempts).where(Photo.id.in_(list(orphans)))).all())
        victim_row = s.get(Worker, vid)
    # The orphans were recorded once, by the rescuer, on their second attempt (the dead one counted).
    assert {r.worker_id for r in rows.values()} == {rid}
    assert all(attempts[pid] == orphans[pid] + 1 for pid in orphans)
    assert all(rows[pid].retry_count == orphans[pid] for pid in orphans)
    assert victim_row is not None and victim_row.status == "running"  # it never said goodbye
    assert rescued_after >= 1.0  # the leases (3 s, last extended <= 1 s before the kill) had to expire first


def test_sigterm_finishes_in_flight_work_and_releases_the_rest(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    emulator = emulator_factory(latency_ms=(1500, 1500))
    org = make_org(provider="google-vision", endpoint=emulator.url)
    ids = enqueue(org, 40, settings=any_settings)
    [proc] = start_workers(1, log_dir=tmp_path, concurrency=4, batch_size=8, lease_seconds=30, poll_interval_s=0.1,
                           stop_timeout_s=10.0)
    wid = worker_id_of(proc)
    wait_until(lambda: len(emulator.request_log) >= 0 and len(_held_by(wid)) >= 8, timeout_s=60, interval_s=0.05,
               what="the worker to hold a full hand of photos")
    time.sleep(0.3)  # 4 calls in flight, 4 more waiting for a thread
    assert stop_workers([proc], timeout_s=30) == [0]
    counts = status_counts(org)
    recorded = results_per_photo(org)
    assert counts.get("processing", 0) == 0          # nothing left leased to a stopped worker
    assert counts.get("pending", 0) + len(recorded) == len(ids)
    assert 4 <= len(recorded) < len(ids)              # the in-flight calls were finished and recorded
    assert Counter(recorded.values()) == {1: len(recorded)}
    with service_session() as s:
        pending_attempts = set(s.scalars(select(Photo.attempts).where(Photo.organization_id == org,
                                                                       Photo.status == "pending")))
        row = s.get(Worker, wid)
    assert pending_attempts == {0}                    # released photos keep their attempt budget
    assert row is not None and row.status == "stopped"


def test_sigterm_timeout_releases_calls_still_running(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path) -> None:
    emulator = emulator_factory(latency_ms=(20_000, 20_000))
    org = make_org(provider="google-vision", endpoint=emulator.url, timeout_s=60)
    ids = enqueue(org, 6, settings=any_settings)
    [proc] = start_workers(1, log_dir=tmp_path, concurrency=4, batch_size=8, lease_seconds=30, poll_interval_s=0.1,
                           stop_timeout_s=1.0)
    wait_until(lambda: len(emulator.request_log) >= 4 or len(_held_by(worker_id_of(proc))) == 6, timeout_s=60,
               interval_s=0.05, what="calls in flight")
    time.sleep(0.5)
    started = time.monotonic()
    assert stop_workers([proc], timeout_s=30) == [0]
    assert time.monotonic() - started < 8  # 1 s for in-flight calls, not the 20 s they would take
    counts = status_counts(org)
    assert counts == {"pending": len(ids)} and results_per_photo(org) == {}
