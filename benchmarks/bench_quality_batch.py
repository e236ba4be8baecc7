"""Batch-correction benchmark: a 100,000-tag batch's rate, and the workers' throughput during it vs without it.

    .venv/bin/python benchmarks/bench_quality_batch.py                   # 100,000 tags, 2 workers (a few minutes)
    .venv/bin/python benchmarks/bench_quality_batch.py --tags 20000 --baseline-seconds 8   # quicker

On a fresh PostgreSQL database next to AICONSOLE_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test; dropped afterwards unless --keep), one organization gets `--tags`
processed photos awaiting review, each with a 'tabby' tag in the review band (the batch's rows) and an
accepted 'sky', and a queue of pending photos. `--workers` real worker processes (bench_queue's: the
zero-latency provider, the full recording of results, tags, statuses and rollups, concurrency 8, batches of
100) drain the queue of that same organization throughout. Phases, each timed on the workers' recorded results
(the hourly rollups): workers alone; workers while `quality.batches.run_batch` renames every 'tabby' to
'tabby cat' in chunks of `--chunk` (2,000); workers while the batch is undone; workers alone again. Reported:
the batch's and the undo's rows per second, each chunk's transaction time (p50, max: how long a chunk holds
its photos), and the workers' photos per second in each phase with the ratio to the mean of the two alone
phases. Checked: every tag renamed, then every tag back, no row failed or kept.

Results go to benchmarks/results/quality_batch.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_queue import (  # noqa: E402
    create_database,
    fill_photos,
    log,
    make_org,
    set_paused,
    start_children,
    stop_children,
    tear_down,
    tiny_png,
    use_database,
    wait_heartbeats,
    write_results,
)
from sqlalchemy import func, select, text  # noqa: E402

from aiconsole.platform.actor import Actor  # noqa: E402
from aiconsole.platform.db import service_session  # noqa: E402
from aiconsole.platform.db.models import Photo, PhotoTag, ProcessingRollupHourly  # noqa: E402
from aiconsole.platform.migrate import upgrade  # noqa: E402
from aiconsole.platform.settings import get_settings  # noqa: E402

RESULTS_FILE = ROOT / "benchmarks" / "results" / "quality_batch.json"
LABEL, RENAMED = "tabby", "tabby cat"
SEED_CHUNK = 50_000


def seed_reviewable(org: int, n: int, uri: str, size: int) -> None:
    """n photos awaiting review, each with one result, a band 'tabby' and an accepted 'sky', in SQL (on a fresh
    database: photo and result ids run from 1, so a chunk is an id range)."""
    for lo in range(1, n + 1, SEED_CHUNK):
        params = {"org": org, "lo": lo, "hi": min(n, lo + SEED_CHUNK - 1), "uri": uri, "size": size}
        with service_session() as s:
            s.execute(text(
                "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
                " height, source, status, priority, attempts, created_at, completed_at, updated_at)"
                " SELECT :org, md5('r' || i::text) || md5(i::text || 'r'), :uri, 'r' || i || '.png', 'image/png',"
                " :size, 8, 8, 'benchmark-review', 'needs_review', 0, 1, now() - interval '2 days',"
                " now() - interval '2 days', now() - interval '2 days'"
                " FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS i"), params)
            s.execute(text(
                "INSERT INTO ai_processing_results (organization_id, photo_id, ai_provider, model, status, tags,"
                " tag_count, api_cost_micros, input_tokens, output_tokens, units, queue_wait_time_ms,"
                " provider_response_time_ms, total_processing_time_ms, retry_count, trace, created_at)"
                " SELECT :org, p.id, 'local', 'local-analyzer-v1', 'needs_review', '[]'::json, 2, 0, 0, 0, 0, 0, 0,"
                " 0, 0, '[]'::json, p.created_at FROM photos p"
                " WHERE p.organization_id = :org AND p.id BETWEEN :lo AND :hi"), params)
            s.execute(text(
                "INSERT INTO photo_tags (organization_id, photo_id, result_id, label, confidence, source,"
                " review_state, created_at)"
                " SELECT r.organization_id, r.photo_id, r.id, t.label, t.confidence + (r.id % 97) / 10000.0, 'ai',"
                " t.state, r.created_at FROM ai_processing_results r"
                " CROSS JOIN (VALUES ('tabby', 0.5, 'needs_review'), ('sky', 0.9, 'accepted')) AS t(label,"
                " confidence, state) WHERE r.organization_id = :org AND r.id BETWEEN :lo AND :hi"), params)
        log(f"  {params['hi']:,} photos awaiting review seeded")
    with service_session() as s:
        s.execute(text("ANALYZE"))


def recorded(org: int) -> int:
    """Results the workers recorded so far (their rollups: a small table, cheap to read every half second)."""
    with service_session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(ProcessingRollupHourly.results_count), 0))
                            .where(ProcessingRollupHourly.organization_id == org)) or 0)


def pending(org: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(Photo).where(Photo.organization_id == org,
                                                                          Photo.status == "pending")) or 0)


def labelled(org: int, label: str) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(PhotoTag).where(PhotoTag.organization_id == org,
                                                                             PhotoTag.label == label)) or 0)


def top_up(org: int, at_least: int, uri: str, size: int) -> None:
    """Keep the workers' queue from running dry during a phase."""
    short = at_least - pending(org)
    if short > 0:
        fill_photos(org, short, uri, size)


def worker_phase(org: int, name: str, run: Any = None, seconds: float = 0.0) -> dict[str, Any]:
    """The workers' throughput while `run()` runs in this thread (or for `seconds` when there is none)."""
    before, started = recorded(org), time.perf_counter()
    out: dict[str, Any] = {}
    if run is not None:
        out = run()
    else:
        time.sleep(seconds)
    elapsed = time.perf_counter() - started
    done = recorded(org) - before
    rate = done / elapsed
    left = pending(org)
    log(f"  workers {name}: {rate:,.0f} photos/s ({done:,} in {elapsed:.1f} s; {left:,} still pending)")
    return {"phase": name, "seconds": round(elapsed, 2), "photos": done, "photos_per_s": round(rate, 1),
            "queue_ran_dry": left == 0, **out}


class Chunks:
    """The progress callback: when each chunk committed, so the gaps are the chunks' transaction times."""

    def __init__(self) -> None:
        self.marks: list[float] = [time.perf_counter()]
        self.lock = threading.Lock()

    def __call__(self, _progress: Any) -> None:
        with self.lock:
            self.marks.append(time.perf_counter())

    def summary(self) -> dict[str, Any]:
        gaps = [1000 * (b - a) for a, b in zip(self.marks, self.marks[1:], strict=False)]
        return {"chunks": len(gaps), "chunk_ms_p50": round(statistics.median(gaps), 1) if gaps else None,
                "chunk_ms_max": round(max(gaps), 1) if gaps else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=100_000, help="tags the batch renames (one per photo)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=2000, help="tags per batch transaction")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--queue", type=int, default=250_000, help="pending photos kept ahead of the workers")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    from aiconsole.quality import batch_undo, batches
    from aiconsole.quality.batch_select import BatchFilter

    load_before = os.getloadavg()
    out: dict[str, Any] = {"run_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_avg_before": [round(x, 2) for x in load_before]},
                           "tags": args.tags, "workers": args.workers, "chunk": args.chunk}
    url = create_database("aibench_batch")
    tmp = Path(tempfile.mkdtemp(prefix="aibench_batch_"))
    logs = tmp / "logs"
    logs.mkdir()
    procs: list[Any] = []
    try:
        use_database(url, tmp / "data", redis_url=None)
        upgrade(get_settings().resolved_database_url)
        from aiconsole.pipeline.images import store_image

        tiny = tiny_png()
        uri = store_image(tiny)
        org = make_org("Bench batch corrections", provider="local", model="local-analyzer-v1",
                       rate_per_minute=60_000_000)
        log(f"seeding {args.tags:,} photos awaiting review and {args.queue:,} pending photos")
        seed_reviewable(org, args.tags, uri, len(tiny))
        fill_photos(org, args.queue, uri, len(tiny))
        procs = start_children(args.workers, mode="zero", concurrency=8, batch=100, logs=logs)
        wait_heartbeats([wid for wid, _ in procs])
        set_paused(org, False)
        time.sleep(3)  # past the workers' first claims
        admin = Actor.system("benchmark", org)
        phases = [worker_phase(org, "alone (before)", seconds=args.baseline_seconds)]

        def run() -> dict[str, Any]:
            chunks, t = Chunks(), time.perf_counter()
            done = batches.run_batch(admin, filters=BatchFilter(label=LABEL), template="rename",
                                     params={"from_label": LABEL, "to_label": RENAMED}, chunk_size=args.chunk,
                                     progress=chunks)
            elapsed = time.perf_counter() - t
            out["batch"] = {"id": done.id, "status": done.status, "matched": done.matched, "changed": done.changed,
                            "failed": done.failed, "seconds": round(elapsed, 2),
                            "tags_per_s": round(done.changed / elapsed, 1), **chunks.summary()}
            log(f"  batch: {done.changed:,} tags renamed in {elapsed:.1f} s = {done.changed / elapsed:,.0f} tags/s "
                f"({done.failed} failed); chunk p50 {out['batch']['chunk_ms_p50']} ms, max "
                f"{out['batch']['chunk_ms_max']} ms")
            return {}

        def undo() -> dict[str, Any]:
            chunks, t = Chunks(), time.perf_counter()
            back = batch_undo.undo_batch(admin, batch_id=out["batch"]["id"], chunk_size=args.chunk, progress=chunks)
            elapsed = time.perf_counter() - t
            out["undo"] = {"restored": back.restored, "kept": back.kept, "seconds": round(elapsed, 2),
                           "items_per_s": round(back.restored / elapsed, 1), **chunks.summary()}
            log(f"  undo: {back.restored:,} changes restored in {elapsed:.1f} s = {back.restored / elapsed:,.0f}/s "
                f"({back.kept} kept); chunk p50 {out['undo']['chunk_ms_p50']} ms, max {out['undo']['chunk_ms_max']} ms")
            return {}

        top_up(org, args.queue, uri, len(tiny))
        phases.append(worker_phase(org, "during the batch", run=run))
        out["renamed_ok"] = labelled(org, RENAMED) == args.tags and labelled(org, LABEL) == 0
        top_up(org, args.queue, uri, len(tiny))
        phases.append(worker_phase(org, "during the undo", run=undo))
        out["restored_ok"] = labelled(org, LABEL) == args.tags and labelled(org, RENAMED) == 0
        top_up(org, args.queue, uri, len(tiny))
        phases.append(worker_phase(org, "alone (after)", seconds=args.baseline_seconds))
        alone = statistics.mean(p["photos_per_s"] for p in phases if p["phase"].startswith("alone"))
        for p in phases:
            p["vs_alone"] = round(p["photos_per_s"] / alone, 3) if alone else None
        out["worker_phases"] = phases
        log(f"workers alone {alone:,.0f} photos/s; during the batch x{phases[1]['vs_alone']}, during the undo "
            f"x{phases[2]['vs_alone']}; renamed exactly: {out['renamed_ok']}, restored exactly: {out['restored_ok']}")
    finally:
        if procs:
            stop_children(procs)
        tear_down(out, tmp=tmp, logs=logs, url=url, keep=args.keep)
    write_results(out, RESULTS_FILE)


if __name__ == "__main__":
    main()
