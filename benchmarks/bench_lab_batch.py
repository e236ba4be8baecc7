"""A 200-photo batch test through the emulator at 200 ms latency behind a 20 req/s limit (issue 12 section 5).

The limit allows 200 calls in 10 s; the goal is to finish within 1.15x of that (11.5 s). A fresh SQLite database
in a temporary data directory, the real Gemini client against the local emulator, the in-process rate limiter.
Prints the figure; results go to benchmarks/results/lab_batch.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

RESULTS = Path(__file__).resolve().parent / "results" / "lab_batch.json"
PHOTOS, LATENCY_MS, PER_SECOND, GOAL = 200, 200, 20, 1.15


def _png(i: int) -> bytes:
    im = Image.new("RGB", (8, 8), ((i >> 16) & 255, (i >> 8) & 255, i & 255))
    im.putpixel((0, 0), (i % 251, 3, 5))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def main() -> int:
    """Run the benchmark once and write its JSON."""
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    for key in [k for k in os.environ if k.startswith("AICONSOLE_") and not k.startswith("AICONSOLE_TEST_")]:
        del os.environ[key]
    os.environ["AICONSOLE_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-lab-")
    from aiconsole.admin import users
    from aiconsole.lab import batch_runner, batch_runs
    from aiconsole.pipeline import intake
    from aiconsole.platform.actor import Actor
    from aiconsole.platform.db import service_session
    from aiconsole.platform.db.models import PipelineConfig, ProviderConfig
    from aiconsole.platform.migrate import upgrade
    from aiconsole.providers.emulator import EmulatorServer
    from aiconsole.providers.registry import default_model

    upgrade()
    emulator = EmulatorServer(latency_ms=(LATENCY_MS, LATENCY_MS)).start()
    try:
        org = users.create_organization(name="Lab batch bench").id
        with service_session() as s:
            s.add(PipelineConfig(organization_id=org, active_provider="gemini", active_model=default_model("gemini")))
            s.add(ProviderConfig(organization_id=org, provider="gemini", enabled=True, endpoint=emulator.url,
                                 rate_limit_per_minute=PER_SECOND * 60, timeout_seconds=10.0))
        actor = Actor.system("bench", org)
        report = intake.enqueue_files(actor, [(f"p{i}.png", _png(i)) for i in range(PHOTOS)])
        assert report.count("queued") == PHOTOS, report.summary
        run = batch_runs.create_run(actor, source="sample", n=PHOTOS, provider="gemini")
        started = time.perf_counter()
        status = batch_runner.execute(actor, run_id=run.id)
        seconds = time.perf_counter() - started
        done = batch_runs.get_run(actor, run_id=run.id)
        arrivals = sorted(t for t, _, _ in emulator.request_log)
    finally:
        emulator.stop()
    allowed = PHOTOS / PER_SECOND
    ratio = seconds / allowed
    out = {"photos": PHOTOS, "latency_ms": LATENCY_MS, "limit_per_s": PER_SECOND, "status": status,
           "processed": done.processed, "failed": done.failed, "seconds": round(seconds, 3),
           "allowed_s": allowed, "ratio": round(ratio, 3), "goal_ratio": GOAL, "ok": ratio <= GOAL,
           "cost_micros": done.cost_micros, "in_flight": batch_runner.in_flight(PER_SECOND * 60),
           "first_to_last_call_s": round(arrivals[-1] - arrivals[0], 3) if arrivals else None}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"batch test: {PHOTOS} photos in {seconds:.2f} s = {ratio:.3f}x the {allowed:g} s the limit allows "
          f"(goal <= {GOAL}x); {done.failed} failed; first to last call {out['first_to_last_call_s']} s")
    # The figure is the result, printed and written; a goal missed is reported there, not as a failure to run.
    return 0 if done.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
