"""Four worker processes, 2,000 photos: every photo exactly one result, none lost, none doubled.

The real google-cloud-vision client talks to the emulator; the queue is PostgreSQL (SKIP LOCKED) and
SQLite (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, PhotoTag, ProcessingRollupHourly
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
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("n_photos", [pytest.param(2000, id="2000")])
def test_four_workers_record_every_photo_exactly_once(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer], tmp_path: Path, n_photos: int,
) -> None:
    emulator = emulator_factory(latency_ms=(0, 2))
    org = make_org(provider="google-vision", endpoint=emulator.url)
    other = make_org(provider="google-vision", endpoint=emulator.url)  # a second tenant sharing the workers
    ids = enqueue(org, n_photos - 100, settings=any_settings)
    other_ids = enqueue(other, 100, start=n_photos, settings=any_settings)
    procs = start_workers(4, log_dir=tmp_path, concurrency=8, batch_size=50, lease_seconds=30,
                          poll_interval_s=0.1)
    try:
        wait_until(lambda: all_terminal(org, len(ids)) and all_terminal(other, len(other_ids)),
                   timeout_s=240, interval_s=1.0, what=f"{n_photos} photos processed")
    finally:
        codes = stop_workers(procs)
    assert codes == [0, 0, 0, 0], [p.read_text()[-2000:] for p in tmp_path.glob("*.log")]

    assert status_counts(org).get("failed", 0) == 0
    per_photo = results_per_photo(org)
    assert set(per_photo) == set(ids)                       # none lost
    assert Counter(per_photo.values()) == {1: len(ids)}     # none doubled
    assert Counter(results_per_photo(other).values()) == {1: len(other_ids)}
    with service_session() as s:
        workers = dict(s.execute(select(AiProcessingResult.worker_id, func.count()).where(
            AiProcessingResult.organization_id == org).group_by(AiProcessingResult.worker_id)).all())
        tags = s.scalar(select(func.count()).select_from(PhotoTag).where(PhotoTag.organization_id == org))
        tag_sum = s.scalar(select(func.sum(AiProcessingResult.tag_count)).where(
            AiProcessingResult.organization_id == org))
        rolled = s.scalar(select(func.sum(ProcessingRollupHourly.results_count)).where(
            ProcessingRollupHourly.organization_id == org))
    assert len(workers) == 4 and all(n > 0 for n in workers.values())  # every process did a share
    assert tags == tag_sum and (tags or 0) > 0
    assert rolled == len(ids)  # the hourly rollup counted each result once
    # Every photo reached the emulator at least once (retries would add more, there were no faults).
    assert len([1 for _, path, status in emulator.request_log if status == 200]) == n_photos
