"""Test support for the worker: organizations wired to the emulator, tiny photos, worker processes.

Run as a script it is one worker process: `python tests/worker_processes.py '<json>'` builds a Worker
from the JSON (id, concurrency, batch, lease, poll and WorkerOptions/CallOptions fields) and runs it until
SIGTERM/SIGINT, with the database, data dir and Redis taken from the AICONSOLE_* environment, exactly as
`aiconsole worker` does.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.pipeline import intake
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    Photo,
    PipelineConfig,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
)

HERE = Path(__file__).resolve()
TERMINAL = ("completed", "needs_review", "failed")
GEMINI_MODEL = "gemini-2.5-flash"
PROMPT = ('Tag this photo with up to {max_tags} labels in {language}. JSON only: {"tags": [{"label": str, '
          '"confidence": number}]}.')


def tiny_png(i: int, side: int = 8) -> bytes:
    """A distinct small PNG for every `i` (different pixels, so a different sha256)."""
    im = Image.new("RGB", (side, side))
    im.putdata([((i >> 16) & 255, (i >> 8) & 255, i & 255)] + [(x * 7 % 256, 90, 200) for x in range(side * side - 1)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def make_org(*, provider: str = "google-vision", endpoint: str | None = None, fallback: str | None = None,
             fallback_endpoint: str | None = None, rate_per_minute: int = 600_000, timeout_s: float = 10.0,
             max_retries: int = 3, daily_budget_micros: int | None = None, prompt: str | None = PROMPT,
             name: str | None = None) -> int:
    """An organization whose active (and fallback) provider points at the emulator; returns its id."""
    org = users.create_organization(name=name or f"Worker test {uuid.uuid4().hex[:8]}").id
    model = {"google-vision": "builtin/stable", "gemini": GEMINI_MODEL, "local": "local-analyzer-v1"}[provider]
    with service_session() as s:
        prompt_id = None
        if prompt is not None:
            p = Prompt(organization_id=org, name="tagger")
            s.add(p)
            s.flush()
            v = PromptVersion(organization_id=org, prompt_id=p.id, version=1, content=prompt,
                              variables=["max_tags", "language"])
            s.add(v)
            s.flush()
            s.add(PromptLabel(organization_id=org, prompt_id=p.id, label="production", version_id=v.id))
            prompt_id = p.id
        s.add(PipelineConfig(organization_id=org, active_provider=provider, active_model=model,
                             active_prompt_id=prompt_id, fallback_provider=fallback, max_retries=max_retries,
                             daily_budget_micros=daily_budget_micros))
        for name_, url in ((provider, endpoint), (fallback, fallback_endpoint)):
            if name_ is not None:
                s.add(ProviderConfig(organization_id=org, provider=name_, enabled=True, endpoint=url,
                                     rate_limit_per_minute=rate_per_minute, timeout_seconds=timeout_s))
    return org


def enqueue(org: int, n: int, *, start: int = 0, settings: Any = None) -> list[int]:
    """Queue `n` distinct tiny photos through intake (validation, store, audit); returns their ids."""
    ids: list[int] = []
    actor = Actor.system("test", org)
    for lo in range(start, start + n, 500):
        files = [(f"p{i}.png", tiny_png(i)) for i in range(lo, min(start + n, lo + 500))]
        report = intake.enqueue_files(actor, files, settings=settings)
        assert report.count("queued") == len(files), report.summary
        ids.extend(v.photo_id for v in report.verdicts if v.photo_id is not None)
    return ids


def status_counts(org: int) -> dict[str, int]:
    """Photos per status."""
    with service_session() as s:
        return {k: int(v) for k, v in s.execute(select(Photo.status, func.count()).where(
            Photo.organization_id == org).group_by(Photo.status)).all()}


def results_per_photo(org: int) -> dict[int, int]:
    """How many result rows each photo of the org has (photos without one are absent)."""
    with service_session() as s:
        return {int(k): int(v) for k, v in s.execute(
            select(AiProcessingResult.photo_id, func.count()).where(AiProcessingResult.organization_id == org)
            .group_by(AiProcessingResult.photo_id)).all()}


def wait_until(predicate: Any, *, timeout_s: float, interval_s: float = 0.25, what: str = "condition") -> None:
    """Poll `predicate` until true; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def all_terminal(org: int, total: int) -> bool:
    """Whether every photo of the org reached completed, needs_review or failed."""
    counts = status_counts(org)
    return sum(counts.get(s, 0) for s in TERMINAL) == total


def start_workers(n: int, *, log_dir: Path, env: dict[str, str] | None = None,
                  **config: Any) -> list[subprocess.Popen[bytes]]:
    """Start `n` worker processes (this file as a script) with the current AICONSOLE_* environment and `env`."""
    procs = []
    for i in range(n):
        cfg = {"worker_id": f"w{i}-{uuid.uuid4().hex[:6]}", **config}
        with open(log_dir / f"{cfg['worker_id']}.log", "wb") as log:  # the child keeps its own copy of the fd
            procs.append(subprocess.Popen([sys.executable, str(HERE), json.dumps(cfg)], stdout=log, stderr=log,
                                          env={**os.environ, **(env or {})}, cwd=str(HERE.parent.parent)))
    return procs


def worker_id_of(proc: subprocess.Popen[bytes]) -> str:
    """The worker id a process from `start_workers` registers under."""
    return str(json.loads(str(proc.args[2]))["worker_id"])  # type: ignore[index]


def stop_workers(procs: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 30.0) -> list[int]:
    """SIGTERM every worker and wait for it; returns their exit codes (killing any that hang)."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=timeout_s))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def _main(raw: str) -> None:
    import logging

    from aiconsole.pipeline.calls import CallOptions
    from aiconsole.pipeline.worker import Worker
    from aiconsole.pipeline.worker_config import WorkerOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = json.loads(raw)
    calls = CallOptions(**cfg.pop("calls", {}))
    shape = {k: cfg.pop(k) for k in ("worker_id", "concurrency", "batch_size", "lease_seconds", "poll_interval_s")}
    worker = Worker(shape["worker_id"], shape["concurrency"], shape["batch_size"], shape["lease_seconds"],
                    shape["poll_interval_s"], options=WorkerOptions(calls=calls, **cfg))
    report = worker.run()
    print(json.dumps({"report": report.__dict__}), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1])


class InProcessWorker:
    """A Worker running on a thread of the test process (`with InProcessWorker(...) as w:`), stopped on exit."""

    def __init__(self, *, concurrency: int = 4, batch_size: int = 8, lease_seconds: int = 30,
                 poll_interval_s: float = 0.05, stop_timeout_s: float = 10.0, **options: Any) -> None:
        import threading

        from aiconsole.pipeline.calls import CallOptions
        from aiconsole.pipeline.worker import Worker
        from aiconsole.pipeline.worker_config import WorkerOptions

        calls = CallOptions(**options.pop("calls", {}))
        self.worker = Worker(f"inproc-{uuid.uuid4().hex[:6]}", concurrency, batch_size, lease_seconds,
                             poll_interval_s, options=WorkerOptions(calls=calls, install_signal_handlers=False,
                                                                    stop_timeout_s=stop_timeout_s, **options))
        self.thread = threading.Thread(target=self.worker.run, name="test-worker", daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the worker did not stop"
