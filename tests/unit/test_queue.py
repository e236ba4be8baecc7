"""The queue on SQLite and PostgreSQL: claim order, paused orgs, due times, leases, release, retries, the
reaper, and no double claims by concurrent threads and processes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from aiconsole.admin import users
from aiconsole.pipeline import queue, reaper
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, PipelineConfig, ProcessingRollupHourly, Worker
from aiconsole.platform.db.sql import floor_hour
from aiconsole.platform.settings import Settings

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def add_photos(org: int, n: int, *, priority: int = 0, start: datetime = T0, step_s: float = 1.0,
               tag: str = "p", **extra: Any) -> list[int]:
    """n pending photos of `org`, created `step_s` apart from `start`; returns their ids in creation order."""
    rows = [{"organization_id": org, "sha256": hashlib.sha256(f"{tag}/{org}/{priority}/{i}".encode()).hexdigest(),
             "storage_uri": f"mem://{tag}/{i}", "filename": f"{tag}{i}.jpg", "content_type": "image/jpeg",
             "byte_size": 1000, "width": 640, "height": 480, "source": "api", "status": "pending",
             "priority": priority, "attempts": 0, "created_at": start + timedelta(seconds=i * step_s),
             "updated_at": start, **extra} for i in range(n)]
    with service_session() as s:
        s.execute(insert(Photo), rows)
        return list(s.scalars(select(Photo.id).where(Photo.organization_id == org,
                                                     Photo.storage_uri.like(f"mem://{tag}/%"))
                              .order_by(Photo.created_at, Photo.id)))


def photo(pid: int) -> Photo:
    with service_session() as s:
        p = s.get(Photo, pid)
        assert p is not None
        return p


def set_config(org: int, **values: Any) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        if cfg is None:
            s.add(PipelineConfig(organization_id=org, **values))
        else:
            for k, v in values.items():
                setattr(cfg, k, v)


@pytest.fixture
def org(any_settings: Settings) -> int:
    return users.create_organization(name="Queue Org").id


def test_claims_by_priority_then_age_with_a_lease(org: int) -> None:
    low = add_photos(org, 3, priority=0, tag="low")
    high = add_photos(org, 2, priority=5, start=T0 + timedelta(hours=1), tag="high")
    now = T0 + timedelta(days=1)
    first = queue.claim_batch(worker_id="w1", limit=3, lease_seconds=60, now=now)
    assert [c.id for c in first] == [high[0], high[1], low[0]]
    c = first[0]
    assert (c.organization_id, c.attempts, c.width, c.height, c.content_type) == (org, 1, 640, 480, "image/jpeg")
    assert c.lease_expires_at == now + timedelta(seconds=60)
    assert c.created_at == T0 + timedelta(hours=1)
    p = photo(c.id)
    assert (p.status, p.lease_owner, p.attempts, p.started_at) == ("processing", "w1", 1, now)
    second = queue.claim_batch(worker_id="w2", limit=10, lease_seconds=60, now=now)
    assert [c.id for c in second] == low[1:]
    assert queue.claim_batch(worker_id="w3", limit=10, lease_seconds=60, now=now) == []


def test_paused_orgs_are_never_claimed_and_the_org_filter_applies(org: int) -> None:
    other = users.create_organization(name="Other Org").id
    mine = add_photos(org, 2, tag="a")
    theirs = add_photos(other, 2, tag="b")
    set_config(org, paused=True, pause_reason="Daily budget of $5.00 reached")
    now = T0 + timedelta(hours=1)
    assert queue.claim_batch(worker_id="w", limit=10, lease_seconds=60, now=now, organization_ids=[org]) == []
    got = queue.claim_batch(worker_id="w", limit=10, lease_seconds=60, now=now)
    assert sorted(c.id for c in got) == theirs
    assert queue.claim_batch(worker_id="w", limit=10, lease_seconds=60, now=now, organization_ids=[]) == []
    set_config(org, paused=False)
    got = queue.claim_batch(worker_id="w", limit=10, lease_seconds=60, now=now, organization_ids=[org])
    assert sorted(c.id for c in got) == mine


def test_a_photo_waits_for_its_next_attempt_time(org: int) -> None:
    later = T0 + timedelta(minutes=10)
    (pid,) = add_photos(org, 1, next_attempt_at=later)
    assert queue.claim_batch(worker_id="w", limit=5, lease_seconds=60, now=later - timedelta(seconds=1)) == []
    assert [c.id for c in queue.claim_batch(worker_id="w", limit=5, lease_seconds=60, now=later)] == [pid]


def test_heartbeat_inserts_then_refreshes_the_worker_row(org: int) -> None:
    queue.heartbeat(worker_id="host-1:42", hostname="host-1", pid=42, concurrency=8, processed=0, now=T0)
    queue.heartbeat(worker_id="host-1:42", hostname="host-1", pid=42, concurrency=8, processed=120,
                    status="stopping", now=T0 + timedelta(seconds=15))
    with service_session() as s:
        rows = list(s.scalars(select(Worker)))
    assert len(rows) == 1
    w = rows[0]
    assert (w.processed_count, w.status, w.started_at, w.last_heartbeat_at) == (
        120, "stopping", T0, T0 + timedelta(seconds=15))


def test_leases_extend_and_release_only_for_their_holder(org: int) -> None:
    ids = add_photos(org, 3)
    now = T0 + timedelta(hours=1)
    claimed = [c.id for c in queue.claim_batch(worker_id="w1", limit=2, lease_seconds=30, now=now)]
    later = now + timedelta(seconds=20)
    assert queue.extend_leases(worker_id="w2", photo_ids=claimed, lease_seconds=30, now=later) == 0
    assert queue.extend_leases(worker_id="w1", photo_ids=[*claimed, ids[2]], lease_seconds=30, now=later) == 2
    assert photo(claimed[0]).lease_expires_at == later + timedelta(seconds=30)
    assert queue.release(worker_id="w2", photo_ids=claimed) == 0
    assert queue.release(worker_id="w1", photo_ids=claimed) == 2
    p = photo(claimed[0])
    assert (p.status, p.attempts, p.lease_owner, p.lease_expires_at) == ("pending", 0, None, None)
    again = queue.claim_batch(worker_id="w3", limit=5, lease_seconds=30, now=later)
    assert sorted(c.id for c in again) == ids and {c.attempts for c in again} == {1}


def test_reaper_requeues_expired_leases_and_fails_exhausted_photos(org: int) -> None:
    set_config(org, max_retries=2, active_provider="gemini", active_model="gemini-2.5-flash")
    a, b, c = add_photos(org, 3)
    now = T0 + timedelta(hours=1)
    queue.claim_batch(worker_id="w1", limit=3, lease_seconds=30, now=now)
    # c's worker is alive: its lease was extended; a and b belong to a worker that died.
    queue.extend_leases(worker_id="w1", photo_ids=[c], lease_seconds=300, now=now)
    with service_session() as s:
        s.execute(update(Photo).where(Photo.id == b).values(attempts=2, last_error="server_error: HTTP 500"))
    assert reaper.reap_expired(now=now + timedelta(seconds=29)) == reaper.ReapReport(requeued=0, failed=0)
    reap_at = now + timedelta(seconds=31)
    assert reaper.reap_expired(now=reap_at) == reaper.ReapReport(requeued=1, failed=1)
    pa, pb, pc = photo(a), photo(b), photo(c)
    assert (pa.status, pa.attempts, pa.lease_owner) == ("pending", 1, None)
    assert pa.last_error == "Lease expired on attempt 1 (its worker stopped heartbeating)"
    assert pb.status == "failed" and pb.completed_at == reap_at
    assert pb.last_error == ("Lease expired on attempt 2 of 2 (its worker stopped heartbeating); no attempts left"
                             "; previous error: server_error: HTTP 500")
    assert (pc.status, pc.lease_owner) == ("processing", "w1")
    with service_session() as s:
        results = list(s.scalars(select(AiProcessingResult)))
        rollup = s.get(ProcessingRollupHourly, (org, floor_hour(reap_at), "gemini"))
    assert [(r.photo_id, r.status, r.error_kind, r.error, r.retry_count, r.ai_provider, r.model)
            for r in results] == [(b, "failed", "lease_expired", pb.last_error, 1, "gemini", "gemini-2.5-flash")]
    assert rollup is not None and (rollup.results_count, rollup.failed_count) == (1, 1)
    # Nothing left to reap; a second pass changes nothing.
    assert reaper.reap_expired(now=reap_at) == reaper.ReapReport(requeued=0, failed=0)


def test_reaper_uses_the_default_attempt_budget_without_a_config(org: int) -> None:
    (pid,) = add_photos(org, 1)
    now = T0 + timedelta(hours=1)
    for attempt in range(1, 4):
        (c,) = queue.claim_batch(worker_id="w", limit=1, lease_seconds=10, now=now)
        assert c.attempts == attempt
        now += timedelta(seconds=11)
        report = reaper.reap_expired(now=now, max_attempts_default=3)
        assert report == (reaper.ReapReport(0, 1) if attempt == 3 else reaper.ReapReport(1, 0))
    p = photo(pid)
    assert p.status == "failed" and p.last_error is not None
    # Each lease expiry is kept: the final message carries the two before it.
    assert p.last_error.count("Lease expired on attempt") == 3


def test_reaper_works_through_a_large_backlog_in_chunks(org: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reaper, "REAP_CHUNK", 3)
    set_config(org, max_retries=1)
    add_photos(org, 5, tag="done")  # these exhaust their single attempt
    now = T0 + timedelta(hours=1)
    queue.claim_batch(worker_id="w", limit=5, lease_seconds=10, now=now)
    set_config(org, max_retries=2)
    add_photos(org, 3, tag="more", start=T0 + timedelta(minutes=30))
    queue.claim_batch(worker_id="w", limit=3, lease_seconds=10, now=now)
    with service_session() as s:
        s.execute(update(Photo).where(Photo.storage_uri.like("mem://done/%")).values(attempts=2))
    assert reaper.reap_expired(now=now + timedelta(seconds=11)) == reaper.ReapReport(requeued=3, failed=5)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(AiProcessingResult)) == 5
        assert s.scalar(select(func.count()).select_from(Photo).where(Photo.status == "processing")) == 0


def _claim_all(worker_id: str, seen: list[int], errors: list[BaseException]) -> None:
    try:
        while batch := queue.claim_batch(worker_id=worker_id, limit=7, lease_seconds=60):
            seen.extend(c.id for c in batch)
    except BaseException as exc:  # surfaced by the test thread
        errors.append(exc)


def test_concurrent_threads_never_claim_a_photo_twice(org: int) -> None:
    ids = add_photos(org, 300)
    seen: list[int] = []
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_claim_all, args=(f"t{i}", seen, errors)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(seen) == ids  # every photo claimed, none twice
    with service_session() as s:
        owners = Counter(s.scalars(select(Photo.lease_owner).where(Photo.organization_id == org)))
        attempts = set(s.scalars(select(Photo.attempts).where(Photo.organization_id == org)))
    assert len(owners) >= 2 and attempts == {1}


# Each process imports everything, reports ready and waits for the go file, so they really run side by side.
START_BARRIER = """
import os, sys, time
open(sys.argv[3] + "." + sys.argv[1], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
"""

CLAIM_SCRIPT = """
import json, sys
from aiconsole.pipeline import queue
""" + START_BARRIER + """
worker_id = sys.argv[1]
seen = []
while batch := queue.claim_batch(worker_id=worker_id, limit=int(sys.argv[2]), lease_seconds=60):
    seen.extend(c.id for c in batch)
print(json.dumps(seen))
"""


def run_processes(settings: Settings, script: str, n_processes: int, limit: int) -> list[Any]:
    """Run `script` in `n_processes` Python processes started together; each one's JSON output."""
    env = {**os.environ, "AICONSOLE_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["AICONSOLE_DATABASE_URL"] = settings.database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    go = settings.data_dir / f"go-{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-c", script, f"proc{i}", str(limit), str(go)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n_processes)]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.proc{i}").exists() for i in range(n_processes)):
        dead = [p.communicate()[1] for p in procs if p.poll() is not None]
        assert time.monotonic() < deadline and not dead, f"a process did not start: {dead}"
        time.sleep(0.01)
    go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout))
    return out


def test_concurrent_processes_never_claim_a_photo_twice(org: int, any_settings: Settings) -> None:
    ids = add_photos(org, 600)
    claimed = run_processes(any_settings, CLAIM_SCRIPT, 3, limit=5)
    flat = [i for part in claimed for i in part]
    assert sorted(flat) == ids
    if any_settings.database_url:  # SQLite's busy waiters back off, so one process may take every batch there
        assert sum(1 for part in claimed if part) >= 2  # they really ran side by side
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Photo).where(Photo.status == "processing")) == 600


def test_write_session_holds_the_sqlite_write_lock_from_its_first_statement(settings: Settings) -> None:
    """Read-then-write transactions (rules, then the fenced UPDATE) must not be overtaken by another writer."""
    other = sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///"), timeout=0.2,
                            isolation_level=None)
    try:
        with queue.write_session() as s:
            s.execute(select(func.count()).select_from(PipelineConfig))  # only a read so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after commit
        other.execute("ROLLBACK")
    finally:
        other.close()
