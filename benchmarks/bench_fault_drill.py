"""Fault drill (issue 9 "Done when"): Redis killed mid-run for 60 s; no photo may fail because of it, and
processing must resume by itself.

    .venv/bin/python benchmarks/bench_fault_drill.py                  # 2 workers, 900 photos, Redis down 60 s
    .venv/bin/python benchmarks/bench_fault_drill.py --down-s 10      # a quicker rehearsal

A redis-server of the drill's own on a free port (no persistence) carries the shared rate limit of
`--workers` worker processes (the real `Worker`, default fault back-off: 1 s doubling to 10 s) on a fresh
PostgreSQL database; the emulator answers Vision requests in 30-60 ms behind a 600/min limit, so the run
takes minutes. Once a quarter of the photos are done Redis is SIGKILLed, kept down `--down-s` seconds and
started again on the same port. Measured: how long until every worker reports itself unhealthy; photos
done, failed and attempts used while Redis was down; the time from Redis's return until the first new
result (time to resume) and until the queue is empty; then: exactly one result per photo, none failed,
every photo took one attempt, and what the workers logged (fault lines, tracebacks).

Results go to benchmarks/results/fault_drill.json. PostgreSQL: AICONSOLE_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test); a fresh database is created next to it and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))  # the test suite's worker and redis-server helpers

from bench_queue import create_database, drop_database, use_database  # noqa: E402
from redis_server import RedisServer  # noqa: E402
from sqlalchemy import select  # noqa: E402
from worker_processes import (  # noqa: E402
    enqueue,
    make_org,
    results_per_photo,
    start_workers,
    status_counts,
    stop_workers,
    worker_id_of,
)

from aiconsole.platform import health  # noqa: E402
from aiconsole.platform.db import service_session  # noqa: E402
from aiconsole.platform.db.models import Photo  # noqa: E402
from aiconsole.platform.migrate import upgrade  # noqa: E402
from aiconsole.platform.settings import get_settings  # noqa: E402
from aiconsole.providers.emulator import EmulatorServer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fault_drill.json"
RATE_PER_MINUTE = 600


def log(message: str) -> None:
    """One progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def _done(org: int) -> int:
    counts = status_counts(org)
    return counts.get("completed", 0) + counts.get("needs_review", 0)


def _attempts(org: int) -> Counter[int]:
    with service_session() as s:
        return Counter(int(a) for a in s.scalars(select(Photo.attempts).where(Photo.organization_id == org)))


def _unhealthy(ids: list[str]) -> dict[str, str | None]:
    beats = {b.id: b for b in health.worker_beats(get_settings())}
    return {i: beats[i].last_error for i in ids if i in beats and beats[i].status == "unhealthy"}


def _wait(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> float:
    """Seconds until `predicate()` held; RuntimeError after `timeout_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic() - started


def drill(photos: int, workers: int, down_s: float, logs: Path) -> dict[str, Any]:
    """The drill on the current database; returns its figures."""
    emulator = EmulatorServer(latency_ms=(30, 60)).start()
    out: dict[str, Any] = {"photos": photos, "workers": workers, "redis_down_s": down_s,
                           "rate_per_minute": RATE_PER_MINUTE}
    try:
        with RedisServer() as redis_server:
            redis_server.start()
            org = make_org(provider="google-vision", endpoint=emulator.url, rate_per_minute=RATE_PER_MINUTE)
            ids = enqueue(org, photos)
            procs = start_workers(workers, log_dir=logs, env={"AICONSOLE_REDIS_URL": redis_server.url},
                                  concurrency=8, batch_size=20, lease_seconds=30, poll_interval_s=0.2)
            wids = [worker_id_of(p) for p in procs]
            try:
                started = time.monotonic()
                _wait(lambda: _done(org) >= photos // 4, 600, "a quarter of the photos")
                redis_server.kill()
                killed = time.monotonic()
                done_at_kill = _done(org)
                log(f"  Redis killed after {killed - started:.1f} s with {done_at_kill} of {photos} done")
                out["done_when_killed"] = done_at_kill
                out["seconds_to_all_unhealthy"] = round(
                    _wait(lambda: len(_unhealthy(wids)) == workers, 60, "every worker to report unhealthy"), 2)
                out["unhealthy_reason"] = next(iter(_unhealthy(wids).values()))
                out["health_while_down"] = health.system_health(settings=get_settings()).check("workers").message
                time.sleep(max(0.0, down_s - (time.monotonic() - killed)))
                counts = status_counts(org)
                out["while_down"] = {
                    "done_since_kill": _done(org) - done_at_kill, "failed": counts.get("failed", 0),
                    "processing": counts.get("processing", 0),
                    "pending_with_attempts_used": sum(n for a, n in _attempts(org).items() if a > 0)
                    - _done(org) - counts.get("failed", 0)}
                log(f"  after {down_s:.0f} s down: {out['while_down']}")
                redis_server.start()
                back = time.monotonic()
                before = _done(org)
                out["seconds_to_resume"] = round(_wait(lambda: _done(org) > before, 120, "the first new result",
                                                       interval_s=0.05), 2)
                _wait(lambda: not _unhealthy(wids), 120, "every worker healthy again")
                out["seconds_to_all_healthy"] = round(time.monotonic() - back, 2)
                _wait(lambda: _done(org) + status_counts(org).get("failed", 0) == photos, 900, "the queue to drain")
                out["seconds_from_return_to_drained"] = round(time.monotonic() - back, 1)
                out["total_seconds"] = round(time.monotonic() - started, 1)
            finally:
                codes = stop_workers(procs)
            out["exit_codes"] = codes
    finally:
        emulator.stop()
    per_photo = results_per_photo(org)
    out["failed"] = status_counts(org).get("failed", 0)
    out["exactly_one_result_each"] = Counter(per_photo.values()) == {1: photos} and set(per_photo) == set(ids)
    out["attempts"] = {str(k): v for k, v in sorted(_attempts(org).items())}
    texts = [(logs / f"{w}.log").read_text() for w in wids]
    out["worker_logs"] = [{"worker": w, "lines": len(t.splitlines()), "tracebacks": t.count("Traceback"),
                           "fault_lines": sum("Redis" in line and "unavailable" in line for line in t.splitlines()),
                           "recovered": [line.split(": ", 1)[1] for line in t.splitlines()
                                         if "Redis available again" in line]} for w, t in zip(wids, texts, strict=True)]
    out["passed"] = (out["failed"] == 0 and out["exactly_one_result_each"] and out["attempts"] == {"1": photos}
                     and out["while_down"]["failed"] == 0 and out["while_down"]["pending_with_attempts_used"] == 0
                     and all(x["tracebacks"] == 0 for x in out["worker_logs"]) and codes == [0] * workers)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=900)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--down-s", type=float, default=60.0, help="seconds Redis stays down")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("the drill needs redis-server on PATH")
    out: dict[str, Any] = {"run_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_avg_before": [round(x, 2) for x in os.getloadavg()]}}
    url = create_database("aibench_drill")
    tmp = Path(tempfile.mkdtemp(prefix="aibench_drill_"))
    logs = tmp / "logs"
    logs.mkdir()
    try:
        use_database(url, tmp / "data", redis_url=None)  # the workers get the drill's Redis, this process none
        upgrade(get_settings().resolved_database_url)
        log(f"fault drill: {args.workers} workers, {args.photos} photos at {RATE_PER_MINUTE}/min, "
            f"Redis down {args.down_s:.0f} s")
        out["drill"] = drill(args.photos, args.workers, args.down_s, logs)
    finally:
        out["machine"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        drop_database(url)
        log(f"worker logs in {logs}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    d = out["drill"]
    log(f"  all {args.workers} workers unhealthy {d['seconds_to_all_unhealthy']} s after the kill; while down: "
        f"{d['while_down']['failed']} failed, {d['while_down']['pending_with_attempts_used']} attempts used")
    log(f"  resumed {d['seconds_to_resume']} s after Redis returned, healthy after {d['seconds_to_all_healthy']} s,"
        f" drained {d['seconds_from_return_to_drained']} s after; failed {d['failed']}, one result each: "
        f"{d['exactly_one_result_each']}, attempts {d['attempts']}")
    log(f"  logs: {[(x['fault_lines'], x['tracebacks']) for x in d['worker_logs']]} (fault lines, tracebacks)")
    log(f"{'PASSED' if d['passed'] else 'FAILED'}; results in {RESULTS.relative_to(ROOT)}")
    print(json.dumps(d, indent=2))
    if not d["passed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
