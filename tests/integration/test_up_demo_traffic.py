"""`aiconsole up` keeps the demo moving (issue 10 item 6): a real `up` process (console, worker and demo
traffic) on a free port and a SQLite database in a temporary folder, with a seeded demo organization.

With default arguments, sample photos keep arriving after the seeded queue has drained, and the worker
processes them; with --no-demo-traffic none arrive. `--demo-traffic-rate` speeds the stream up so the test
takes seconds, and the organization's zone is set to one where it is midday now (the rate follows the
organization's time of day).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from aiconsole.demo.seed import seed_demo
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Organization, Photo
from aiconsole.platform.settings import Settings

pytestmark = pytest.mark.slow

RATE = 24.0  # x the realistic rate: about one photo a second at midday on a weekday, 0.3 on a Sunday


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _midday_zone() -> str:
    """An Etc/GMT zone where the local time is between 11:30 and 12:30 now (Etc/GMT-3 is UTC+3)."""
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def _wait(check: Callable[[], bool], *, timeout_s: float, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"aiconsole up exited early ({proc.returncode}) while waiting for {what}"
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@pytest.fixture
def demo(settings: Settings) -> Iterator[tuple[int, int]]:
    """A one-day demo seed whose queue is cut to 20 pending photos due now (the seed's others wait out a
    back-off of minutes); (organization id, last seeded photo id)."""
    org = seed_demo(settings=settings, days=1).organization_id
    with service_session() as s:
        pending = list(s.scalars(select(Photo.id).where(Photo.organization_id == org, Photo.status == "pending")
                                 .order_by(Photo.next_attempt_at.is_not(None), Photo.id)))
        s.execute(update(Photo).where(Photo.id.in_(pending[20:])).values(status="completed"))
        s.execute(update(Organization).where(Organization.id == org).values(timezone=_midday_zone()))
        last = int(s.scalar(select(func.max(Photo.id))) or 0)
    yield org, last


def _counts(org: int, last_seeded: int) -> tuple[int, int, int]:
    """(seeded photos still pending, photos the traffic added, of those processed)."""
    with service_session() as s:
        seeded = s.scalar(select(func.count()).select_from(Photo).where(
            Photo.organization_id == org, Photo.id <= last_seeded, Photo.status == "pending")) or 0
        added = s.execute(select(func.count(), func.count().filter(Photo.status.in_(("completed", "needs_review"))))
                          .where(Photo.organization_id == org, Photo.id > last_seeded)).one()
    return int(seeded), int(added[0]), int(added[1])


def _up(settings: Settings, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    env = {**os.environ, "AICONSOLE_DATA_DIR": str(settings.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "aiconsole", "up", "--port", str(port), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output


def test_up_keeps_adding_demo_photos_after_the_seeded_queue_drains(settings: Settings, demo: tuple[int, int]) -> None:
    org, last_seeded = demo
    proc, port = _up(settings, "--demo-traffic-rate", str(RATE))
    try:
        _wait(lambda: _healthy(port), timeout_s=90, what="the console", proc=proc)
        _wait(lambda: _counts(org, last_seeded)[0] == 0, timeout_s=180, what="the seeded queue to drain", proc=proc)
        _, at_drain, _ = _counts(org, last_seeded)
        _wait(lambda: _counts(org, last_seeded)[1] >= at_drain + 5, timeout_s=90,
              what="demo photos after the seeded queue drained", proc=proc)
        _wait(lambda: _counts(org, last_seeded)[2] >= 3, timeout_s=90, what="the worker to process demo photos",
              proc=proc)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_stop(proc)[-4000:]}") from None
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output[-3000:]
    assert "Demo traffic: sample photos arrive" in output and "--no-demo-traffic" in output
    _, added, _ = _counts(org, last_seeded)
    batches = [line for line in output.splitlines() if "demo traffic: Demo Photos Inc.: " in line]
    # One line per batch, each saying how many it queued (a slow tick may queue one photo: count, not lines).
    queued = [int(m.group(1)) for line in batches if (m := re.search(r": (\d+) queued", line))]
    assert batches and len(queued) == len(batches) and sum(queued) == added
    assert "Traceback" not in output, output[-3000:]
    with service_session() as s:
        sources = set(s.scalars(select(Photo.source).where(Photo.organization_id == org, Photo.id > last_seeded)))
    assert sources == {"api"}


def test_no_demo_traffic_adds_nothing(settings: Settings, demo: tuple[int, int]) -> None:
    org, last_seeded = demo
    proc, port = _up(settings, "--no-demo-traffic", "--workers", "0", "--demo-traffic-rate", str(RATE))
    try:
        _wait(lambda: _healthy(port), timeout_s=90, what="the console", proc=proc)
        time.sleep(12)  # at RATE, a dozen photos would have arrived by now
        assert proc.poll() is None
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output[-3000:]
    assert _counts(org, last_seeded)[1] == 0
    assert "Demo traffic" not in output and "demo traffic" not in output
