"""Waits longer than 24.8 days (2^31 ms) on PostgreSQL: a photo created 30 days ago is recorded with its true
queue wait by the recorder, the reaper and a running worker, and its batch's other photos (another
organization's included) are recorded beside it; a row PostgreSQL refuses fails its photo alone in a
running worker, which calls the provider once per photo (issue 9 item 1)."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from unit_helpers import load_unit_module
from worker_processes import InProcessWorker, all_terminal, enqueue, make_org, wait_until

from aiconsole.admin import users
from aiconsole.pipeline import reaper
from aiconsole.pipeline.recording import RecordReport, record_batch
from aiconsole.pipeline.worker import Worker
from aiconsole.pipeline.worker_config import WorkerOptions
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, ProcessingRollupHourly
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.settings import Settings
from aiconsole.providers.base import AnalysisRequest, ImageInput, Provider, ProviderResult, ProviderSettings
from aiconsole.providers.registry import build_provider

pytestmark = pytest.mark.postgres

INT32_MAX = 2**31 - 1
THIRTY_DAYS_MS = 30 * 86_400_000


qt = load_unit_module("test_queue")
rt = load_unit_module("test_recording")
T0 = qt.T0


def _results(photo_ids: list[int]) -> dict[int, AiProcessingResult]:
    with service_session() as s:
        return {r.photo_id: r for r in s.scalars(
            select(AiProcessingResult).where(AiProcessingResult.photo_id.in_(photo_ids)))}


def test_a_photo_created_30_days_ago_is_recorded_with_its_true_wait(pg_settings: Settings) -> None:
    old_org = users.create_organization(name="Old photos").id
    other_org = users.create_organization(name="Someone else").id
    claimed_at = T0 + timedelta(days=30)
    (old,) = qt.add_photos(old_org, 1, start=T0, tag="old")
    (fresh,) = qt.add_photos(other_org, 1, start=claimed_at - timedelta(seconds=2), tag="fresh")
    a, b = rt.claim(2, now=claimed_at)
    by_id = {c.id: c for c in (a, b)}
    report = record_batch(worker_id="w1", now=claimed_at + timedelta(seconds=1), outcomes=[
        rt.outcome(by_id[old], rt.result([("cat", 0.9)]), wait=THIRTY_DAYS_MS),
        rt.outcome(by_id[fresh], rt.result([("dog", 0.9)]), wait=2000)])
    assert report == RecordReport(recorded=2, lost_lease=0, retried=0, failed=0, cost_micros=0)
    results = _results([old, fresh])
    assert results[old].queue_wait_time_ms == THIRTY_DAYS_MS > INT32_MAX
    assert results[fresh].queue_wait_time_ms == 2000
    assert (qt.photo(old).status, qt.photo(fresh).status) == ("completed", "completed")
    with service_session() as s:
        roll = s.scalars(select(ProcessingRollupHourly).where(
            ProcessingRollupHourly.organization_id == old_org)).one()
    assert (roll.queue_wait_ms_sum, roll.wait_b9) == (THIRTY_DAYS_MS, 1)


def test_the_reaper_fails_a_30_day_old_photo_with_its_true_wait(pg_settings: Settings) -> None:
    org = users.create_organization(name="Reaped").id
    qt.set_config(org, max_retries=1)
    claimed_at = T0 + timedelta(days=30)
    (old,) = qt.add_photos(org, 1, start=T0, tag="old")
    young = qt.add_photos(org, 3, start=claimed_at - timedelta(minutes=1), tag="young")
    rt.claim(4, now=claimed_at)
    report = reaper.reap_expired(now=claimed_at + timedelta(seconds=61))
    assert report == reaper.ReapReport(requeued=0, failed=4)
    results = _results([old, *young])
    assert set(results) == {old, *young}
    assert results[old].queue_wait_time_ms == THIRTY_DAYS_MS > INT32_MAX
    with service_session() as s:
        assert set(s.scalars(select(Photo.status).where(Photo.organization_id == org))) == {"failed"}


def test_a_worker_records_a_photo_created_30_days_ago(pg_settings: Settings) -> None:
    """Fault drill (issue 9, "Done when"): a photo created 30 days ago is recorded on PostgreSQL."""
    org = make_org(provider="local", prompt=None)
    other = make_org(provider="local", prompt=None)
    ids = enqueue(org, 3, settings=pg_settings)
    other_ids = enqueue(other, 3, start=100, settings=pg_settings)
    thirty_days_ago = utcnow() - timedelta(days=30)
    with service_session() as s:
        s.execute(update(Photo).where(Photo.id == ids[0]).values(created_at=thirty_days_ago))
    with InProcessWorker(concurrency=4, batch_size=16):
        wait_until(lambda: all_terminal(org, 3) and all_terminal(other, 3), timeout_s=60,
                   what="every photo recorded")
    results = _results(ids + other_ids)
    assert set(results) == set(ids + other_ids)
    assert all(r.status != "failed" for r in results.values()), {r.photo_id: r.error for r in results.values()}
    assert results[ids[0]].queue_wait_time_ms >= THIRTY_DAYS_MS > INT32_MAX


class _CountingProvider:
    """The real local provider, counting calls per photo; its answer for one photo names a model too long for
    the model column (String(128)), which PostgreSQL refuses."""

    def __init__(self, inner: Provider, poisoned_sha: str, calls: Counter[str], lock: threading.Lock) -> None:
        self.name, self.inner, self.poisoned_sha, self.calls, self.lock = inner.name, inner, poisoned_sha, calls, lock

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        with self.lock:
            self.calls[image.sha256] += 1
        result = self.inner.analyze(image, request)
        return dataclasses.replace(result, model="m" * 200) if image.sha256 == self.poisoned_sha else result


def test_a_running_worker_fails_a_refused_row_alone_and_calls_the_provider_once_per_photo(
        pg_settings: Settings) -> None:
    org = make_org(provider="local", prompt=None)
    other = make_org(provider="local", prompt=None)
    ids = enqueue(org, 4, settings=pg_settings) + enqueue(other, 4, start=100, settings=pg_settings)
    with service_session() as s:
        shas = {int(i): str(h) for i, h in s.execute(select(Photo.id, Photo.sha256).where(Photo.id.in_(ids)))}
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def factory(name: str, settings: ProviderSettings) -> Provider:
        return _CountingProvider(build_provider(name, settings), shas[ids[1]], calls, lock)

    # A short lease and a busy reaper: a batch that failed would be reaped and its photos called again.
    worker = Worker("isolation-w", 4, 16, 2, 0.05, provider_factory=factory,
                    options=WorkerOptions(install_signal_handlers=False, stop_timeout_s=10, reap_interval_s=0.5))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: all_terminal(org, 4) and all_terminal(other, 4), timeout_s=60,
                   what="every photo recorded")
    finally:
        worker.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    results = _results(ids)
    bad = qt.photo(ids[1])
    assert bad.status == "failed"
    assert bad.last_error == "could not be recorded: value too long for type character varying(128)"
    assert (results[ids[1]].status, results[ids[1]].error_kind) == ("failed", "unrecordable")
    assert all(results[i].status != "failed" and qt.photo(i).status != "failed" for i in ids if i != ids[1])
    assert set(results) == set(ids)
    assert calls == Counter({shas[i]: 1 for i in ids})  # nobody's provider call was repeated
