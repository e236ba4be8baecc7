"""The Testing Lab statistics engine's speed (issue 12 section 5): analyse 1,000 comparisons in <= 1 s.

Each comparison is parsed from its JSON dict (comparison_from_json, as the CLI and the experiments page
do) and analysed (frequentist, sequential, Bayesian); a mix of proportion, mean and ratio metrics,
relative and absolute, from seeded random summaries. Pure CPU, no database. Reports the best and median
of --repeats passes, prints the figures and writes benchmarks/results/bench_lab_engine.json.

    python benchmarks/bench_lab_engine.py [--comparisons 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiconsole.lab import stats_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_lab_engine.json"
GOAL_S = 1.0


def comparisons(count: int, seed: int = 12) -> list[dict[str, Any]]:
    """Seeded comparison dicts: a third each proportion, mean and ratio."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        kind = ("proportion", "mean", "ratio")[i % 3]
        sides = {}
        for side in ("control", "treatment"):
            n = int(rng.integers(500, 50_000))
            if kind == "proportion":
                sides[side] = {"n": n, "sum": int(rng.binomial(n, 0.4))}
                continue
            x = rng.gamma(2.0, 1.5, size=200)
            scale = n / 200
            v: dict[str, Any] = {"n": n, "sum": float(x.sum() * scale), "sum_squares": float((x * x).sum() * scale)}
            if kind == "ratio":
                d = rng.poisson(3, size=200) + 1.0
                v |= {"denominator_sum": float(d.sum() * scale),
                      "denominator_sum_squares": float((d * d).sum() * scale),
                      "sum_products": float((x * d).sum() * scale)}
            sides[side] = v
        out.append({"metric_type": kind, "difference": ("relative", "absolute")[i % 2], "alpha": 0.05,
                    "sequential_tuning": 5000, **sides})
    return out


def one_pass(data: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for item in data:
        stats_engine.analyze(stats_engine.comparison_from_json(item))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = comparisons(args.comparisons)
    one_pass(data[:50])  # warm imports and caches
    times = [one_pass(data) for _ in range(args.repeats)]
    best, median = min(times), statistics.median(times)
    per_item_us = median / len(data) * 1e6
    print(f"lab engine: {len(data):,} comparisons in {median * 1000:.0f} ms median, {best * 1000:.0f} ms best "
          f"({per_item_us:.0f} us each); goal <= {GOAL_S * 1000:.0f} ms: {'met' if median <= GOAL_S else 'MISSED'}")
    result = {
        "benchmark": "lab_engine",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "comparisons": len(data),
        "repeats": args.repeats,
        "median_s": round(median, 4),
        "best_s": round(best, 4),
        "per_comparison_us": round(per_item_us, 1),
        "goal_s": GOAL_S,
        "goal_met": median <= GOAL_S,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
