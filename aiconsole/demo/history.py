"""The demo's history, generated in memory: photos, results, tags and reviewer corrections over `days`.

`generate_history` draws each call's provider, latency, failure or answer, its retries, the re-queued
failures and the reviews from the seeded generators, on the calendar of aiconsole.demo_timeline;
aiconsole.demo writes the rows. History photos are `demo://` photos (see aiconsole.samples): their sha256
and size are those of the bytes the URI renders. Costs come from aiconsole.providers.pricing: the Vision
free tier per calendar month (counted from the start of the history), Gemini tokens including image tokens.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from aiconsole.demo.timeline import (
    LATENCY,
    MAX_RETRIES,
    US,
    WORKERS,
    from_us,
    gemini_episode,
    prompt_for,
    prompt_tokens,
    provider_health,
    to_us,
    traffic_hours,
)
from aiconsole.providers import samples
from aiconsole.providers.pricing import (
    VISION_PRICES,
    gemini_cost_micros,
    gemini_image_tokens,
    vision_cost_micros,
)
from aiconsole.providers.registry import PROVIDER_NAMES, capabilities, default_model

RESULTS_PER_DAY = 1_780
RECENT = timedelta(hours=24)  # Live Status's throughput chart: what the demo's settings must agree with
# Every provider runs its default model in the demo's history.
MODELS = {p: default_model(p) for p in PROVIDER_NAMES}
GEMINI_MODEL = MODELS["gemini"]
# The demo's rules. Measured on the 17 samples x 12 looks with the offline local analyzer (EfficientNet-
# Lite0 object tags, descriptors at 0.35 and under): 7.8 % of the looks have a tag in [0.5, 0.6), 9.9 %
# weighted as the demo's traffic picks samples; the share stays within 5.9-15 % for either threshold moved
# by 0.02. Wider bands (0.8 / 0.4: 33-40 %) would send most photos to review.
ACCEPT, REJECT = 0.6, 0.5
# Provider behaviour: failure probability and timeout (ms); response times are demo_timeline.LATENCY.
FAILURE_RATE = {"google-vision": 0.012, "gemini": 0.022, "local": 0.006}
TIMEOUT_MS = {"google-vision": 15_000, "gemini": 30_000, "local": 10_000}
# (kind, weight, retryable, message)
FAILURES: dict[str, tuple[tuple[str, float, bool, str], ...]] = {
    "google-vision": (
        ("rate_limited", 0.40, True, "429 RESOURCE_EXHAUSTED: quota exceeded for 'Requests per minute' "
                                     "(gave up after {n} retries)"),
        ("server_error", 0.25, True, "503 UNAVAILABLE: the service is currently unavailable "
                                     "(gave up after {n} retries)"),
        ("timeout", 0.20, True, "DEADLINE_EXCEEDED after 15 s (gave up after {n} retries)"),
        ("invalid_argument", 0.15, False, "400 INVALID_ARGUMENT: Bad image data."),
    ),
    "gemini": (
        ("rate_limited", 0.35, True, "429 RESOURCE_EXHAUSTED: you exceeded your current quota "
                                     "(gave up after {n} retries)"),
        ("server_error", 0.25, True, "500 INTERNAL: an internal error has occurred (gave up after {n} retries)"),
        ("timeout", 0.20, True, "the request timed out after 30 s (gave up after {n} retries)"),
        ("bad_response", 0.20, False, "the model's answer was not valid JSON for the tag schema"),
    ),
    "local": (
        ("image_decode", 0.6, False, "the image could not be decoded by the local analyzer"),
        ("internal", 0.4, False, "the local analyzer crashed: out of memory"),
    ),
}
EPISODE_FAILURES = (
    ("server_error", 0.6, True, "503 UNAVAILABLE: the model is overloaded, please try again later "
                                "(gave up after {n} retries)"),
    ("timeout", 0.4, True, "the request timed out after 30 s (gave up after {n} retries)"),
)
# Tag quality per provider: Beta(a, b) of (1 - confidence) for true labels, Beta(a, b) of confidence
# for wrong ones, probabilities of 0/1/2 wrong labels, and how many true labels an answer has. Tuned so
# that between REJECT and ACCEPT fall the tags of 5-15 % of answers (local ~13 %, Vision ~8 %, Gemini
# ~7 %, fewer with each prompt version), as the local analyzer's real confidences do on the samples.
QUALITY = {
    "google-vision": ((1.2, 10.0), (2.0, 3.0), (0.60, 0.32, 0.08), (2, 4)),
    "gemini": ((1.1, 10.0), (2.0, 3.0), (0.75, 0.23, 0.02), (3, 5)),
    "local": ((1.4, 10.0), (2.5, 3.5), (0.45, 0.40, 0.15), (2, 3)),
}
GEMINI_TRUE_B = {1: 8.0, 2: 9.0, 3: 10.0, 4: 12.0}  # later prompt versions answer more confidently
SAMPLE_WEIGHTS = {"chelsea": 3.0, "coffee": 3.0, "motorcycle": 3.0, "astronaut": 2.5, "rocket": 2.0,
                  "camera": 2.0, "coins": 1.5, "colorwheel": 1.0}


@dataclass
class History:
    """Everything generate_history made, with in-memory links (`_photo`, `_result`, ...) still to resolve."""

    photos: list[dict[str, Any]]
    results: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    corrections: list[dict[str, Any]]
    health: list[dict[str, Any]]
    retries_by_day: dict[date, tuple[datetime, int]]
    next_variant: int


def recent_providers(h: History, now: datetime) -> set[str]:
    """The providers with results in the history's last RECENT: the demo's settings must have them enabled."""
    since = now - RECENT
    return {r["ai_provider"] for r in h.results if r["created_at"] >= since}


def _weighted(u: float, *options: tuple[Any, float]) -> Any:
    """The first option whose cumulative probability exceeds u (0 <= u < 1)."""
    for value, cumulative in options:
        if u < cumulative:
            return value
    return options[-1][0]


@lru_cache(maxsize=64)
def _vision_segment_cost(segment_start: int) -> int:
    return vision_cost_micros(1, month_units_before=segment_start)


def _vision_unit_cost(month_units_before: int) -> int:
    """The pricing table's cost of one more Vision unit this month, asked once per price segment."""
    price = VISION_PRICES["LABEL_DETECTION"]
    # Segments of constant unit price: the free tier, then each tier up to its bound.
    bounds = [price.free_units_per_month] + [b for b, _ in price.tiers if b is not None]
    start = max([0] + [b for b in bounds if b <= month_units_before])
    return _vision_segment_cost(start)


@lru_cache(maxsize=65_536)
def _gemini_cost(input_tokens: int, output_tokens: int) -> int:
    return gemini_cost_micros(GEMINI_MODEL, input_tokens=input_tokens, output_tokens=output_tokens)


def _pick(rng: random.Random, options: tuple[tuple[str, float, bool, str], ...]) -> tuple[str, bool, str]:
    kind, _, retryable, message = rng.choices(options, weights=[o[1] for o in options])[0]
    return kind, retryable, message


class _BetaPool:
    """Beta draws made by numpy in blocks (Python's betavariate is the seed's slowest line otherwise)."""

    def __init__(self, nrng: np.random.Generator) -> None:
        self._nrng = nrng
        self._pools: dict[tuple[float, float], tuple[list[float], int]] = {}

    def draw(self, a: float, b: float) -> float:
        """One Beta(a, b) sample."""
        values, at = self._pools.get((a, b), ([], 0))
        if at >= len(values):
            values, at = self._nrng.beta(a, b, 50_000).tolist(), 0
        self._pools[(a, b)] = (values, at + 1)
        return values[at]


def _tags(rng: random.Random, beta: _BetaPool, sample: samples.Sample, provider: str, version: int | None
          ) -> list[tuple[str, float, bool]]:
    """(label, confidence, is_true) of one answer, most confident first."""
    (ta, tb), (fa, fb), n_false_p, (lo, hi) = QUALITY[provider]
    if capabilities(provider).takes_prompt and version is not None:
        tb = GEMINI_TRUE_B[version]
    k = lo + int(rng.random() * (min(hi, len(sample.labels)) - lo + 1))
    labels = list(sample.labels)
    rng.shuffle(labels)
    out = [(label, 1.0 - beta.draw(ta, tb), True) for label in labels[:k]]
    u = rng.random()
    n_false = 0 if u < n_false_p[0] else 1 if u < n_false_p[0] + n_false_p[1] else 2
    if n_false:
        wrong = list(sample.distractors)
        rng.shuffle(wrong)
        out += [(label, beta.draw(fa, fb), False) for label in wrong[:n_false]]
    out = [(label, round(min(0.999, max(0.01, c)), 4), ok) for label, c, ok in out]
    return sorted(out, key=lambda t: -t[1])


def _state(confidence: float) -> str:
    if confidence >= ACCEPT:
        return "accepted"
    return "rejected" if confidence < REJECT else "needs_review"


def generate_history(rng: random.Random, nrng: np.random.Generator, now: datetime, days: int, tz: ZoneInfo,
                     ) -> History:
    """`days` of history up to `now`, hours read in time zone `tz`, every random choice from `rng` and `nrng`."""
    now_us = to_us(now)
    hour_us, weights, spans, n_hours = traffic_hours(now, days, tz)
    base = RESULTS_PER_DAY * days / weights.sum()
    counts = nrng.poisson(base * weights * spans / 3600.0)
    hidx = np.repeat(np.arange(n_hours), counts)
    ts = hour_us[hidx] + (nrng.random(len(hidx)) * spans[hidx] * US).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ts, hidx = np.minimum(ts[order], now_us - 1), hidx[order]
    n = len(ts)
    load = (weights / weights.max())[hidx]

    # Providers: Gemini's share grows over the month as the new prompts roll out.
    frac = (ts - ts[0]) / max(1, now_us - ts[0])
    gemini_share = 0.22 + 0.16 * frac
    u = nrng.random(n)
    prov = np.where(u < gemini_share, 1, np.where(u < gemini_share + 0.22, 2, 0))
    names = np.array(["google-vision", "gemini", "local"])
    ep_start, ep_end = gemini_episode(now, days, tz)
    in_episode = (prov == 1) & (ts >= ep_start) & (ts < ep_end)

    medians = np.array([LATENCY[p][0] for p in names])
    sigmas = np.array([LATENCY[p][1] for p in names])
    latency = medians[prov] * np.exp(sigmas[prov] * nrng.standard_normal(n))
    latency = np.where(in_episode, latency * 3.5, latency).clip(5, 29_000)
    fail_p = np.array([FAILURE_RATE[p] for p in names])[prov]
    failed = nrng.random(n) < np.where(in_episode, 0.30, fail_p)
    recovered = nrng.random(n) < np.where(in_episode, 0.25, 0.04)
    wait = 900.0 * (1 + 8 * load**2) * np.exp(1.1 * nrng.standard_normal(n))
    backlog = nrng.random(n) < 0.003  # after a pause or an outage some photos waited much longer
    wait = np.where(backlog, nrng.uniform(300_000, 3 * 3_600_000, n), wait).clip(20, 20 * 3_600_000)
    overhead = 40.0 * np.exp(0.4 * nrng.standard_normal(n))

    # Failed photos are re-queued ("retry failed"): older failures almost always, recent ones less often.
    photo_of = np.arange(n)
    retried_from = np.full(n, -1)
    retries_by_day: dict[date, tuple[datetime, int]] = {}
    for f in np.flatnonzero(failed):
        age_h = (now_us - ts[f]) / (3600 * US)
        if rng.random() >= (0.92 if age_h > 24 else 0.2):
            continue
        j = int(np.searchsorted(ts, ts[f] + int(rng.uniform(0.5, 20) * 3600 * US)))
        while j < n and (failed[j] or retried_from[j] >= 0 or photo_of[j] != j):
            j += 1
        if j >= n:
            continue
        photo_of[j] = photo_of[f]
        retried_from[j] = f
        day = from_us(ts[j]).astimezone(tz).date()
        first, count = retries_by_day.get(day, (from_us(ts[j]), 0))
        retries_by_day[day] = (min(first, from_us(ts[j])), count + 1)

    # One photo per first result; its sample and variant (so its bytes) chosen once.
    firsts = np.flatnonzero(photo_of == np.arange(n))
    photo_index = {int(r): k for k, r in enumerate(firsts)}
    sample_names = [s.name for s in samples.list_samples()]
    sample_w = [SAMPLE_WEIGHTS.get(name, 1.0) for name in sample_names]
    chosen = rng.choices(sample_names, weights=sample_w, k=len(firsts))
    photos: list[dict[str, Any]] = []
    for k, name in enumerate(chosen):
        demo = samples.demo_photo(name, k + 1)
        photos.append({
            "sha256": demo.sha256, "storage_uri": demo.uri, "filename": f"{name}_{k + 1:06d}.jpg",
            "content_type": "image/jpeg", "byte_size": demo.byte_size, "width": demo.width,
            "height": demo.height, "source": _weighted(rng.random(), ("api", 0.7), ("upload", 0.9), ("cli", 1)),
            "priority": _weighted(rng.random(), (0, 0.9), (5, 0.98), (10, 1)), "attempts": 0, "_sample": name,
            "_last": -1, "_review_open": 0,
        })

    results: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    vision_month: Counter[tuple[int, int]] = Counter()
    beta = _BetaPool(nrng)
    thinking = nrng.gamma(2.0, 60.0, n).astype(int).tolist()
    # Plain Python lists: indexing numpy arrays element by element is several times slower.
    ts_l, prov_l, photo_l, lat_l, wait_l = (ts.tolist(), prov.tolist(), photo_of.tolist(),
                                            latency.astype(int).tolist(), wait.astype(int).tolist())
    failed_l, recovered_l, episode_l, overhead_l = (failed.tolist(), recovered.tolist(), in_episode.tolist(),
                                                    overhead.astype(int).tolist())
    provider_names = [str(x) for x in names]
    for i in range(n):
        p = prov_l[i]
        provider = provider_names[p]
        pk = photo_index[photo_l[i]]
        photo = photos[pk]
        sample = samples.SAMPLES[photo["_sample"]]
        t_us = ts_l[i]
        created = from_us(t_us)
        lat = lat_l[i]
        version, experiment, variant = prompt_for(t_us, now_us, rng) if p == 1 else (None, None, None)
        row: dict[str, Any] = {
            "_photo": pk, "ai_provider": provider, "model": MODELS[provider],
            "_version": version, "_experiment": experiment, "variant": variant,
            "queue_wait_time_ms": wait_l[i], "worker_id": WORKERS[(t_us // US) % len(WORKERS)],
            "created_at": created, "input_tokens": 0, "output_tokens": 0, "units": 0, "api_cost_micros": 0,
            "error_kind": None, "error": None, "tags": [], "tag_count": 0, "avg_confidence": None,
            "min_confidence": None,
        }
        answer: list[tuple[str, float, bool]] = []
        if failed_l[i]:
            kind, retryable, message = _pick(rng, EPISODE_FAILURES if episode_l[i] else FAILURES[provider])
            retries = MAX_RETRIES if retryable else 0
            if kind == "timeout":
                lat = TIMEOUT_MS[provider] + rng.randint(0, 250)
            elif kind in ("rate_limited", "invalid_argument", "image_decode"):
                lat = rng.randint(60, 240)
            row.update(status="failed", error_kind=kind, error=message.format(n=retries))
            if kind == "bad_response" and version is not None:  # Gemini bills a malformed answer too
                row["input_tokens"] = prompt_tokens(version) + gemini_image_tokens(photo["width"],
                                                                                   photo["height"])
                row["output_tokens"] = rng.randint(40, 400)
        else:
            retries = (1 if rng.random() < 0.7 else 2) if recovered_l[i] else 0
            answer = _tags(rng, beta, sample, provider, version)
            confs = [c for _, c, _ in answer]
            states = [_state(c) for c in confs]
            row.update(status="needs_review" if "needs_review" in states else "completed",
                       tags=[{"label": label, "confidence": c} for label, c, _ in answer],
                       tag_count=len(answer), avg_confidence=round(sum(confs) / len(confs), 6),
                       min_confidence=min(confs))
            if version is not None:
                row["input_tokens"] = prompt_tokens(version) + gemini_image_tokens(photo["width"],
                                                                                   photo["height"])
                row["output_tokens"] = 24 + 14 * len(answer) + thinking[i]
        if p == 0 and row["status"] != "failed":
            month = (created.year, created.month)
            row["units"] = 1
            row["api_cost_micros"] = _vision_unit_cost(vision_month[month])
            vision_month[month] += 1
        elif p == 1 and row["input_tokens"]:
            row["api_cost_micros"] = _gemini_cost(row["input_tokens"], row["output_tokens"])
        backoff = sum(1000 * 2**k for k in range(retries))
        total = lat * (1 + retries) + overhead_l[i] + backoff
        row.update(provider_response_time_ms=lat, retry_count=retries, total_processing_time_ms=total,
                   trace=_trace(provider, row["model"], lat, retries, overhead_l[i], row, answer))
        results.append(row)

        # The photo follows its latest result.
        photo["attempts"] += 1
        if photo["_last"] < 0:
            photo["created_at"] = from_us(t_us - (wait_l[i] + total) * 1000)
        photo["_last"] = len(results) - 1
        photo["started_at"] = from_us(t_us - total * 1000)
        photo["completed_at"] = created
        photo["status"] = row["status"]
        photo["last_error"] = row["error"]
        for label, conf, is_true in answer:
            tags.append({"_photo": pk, "_result": len(results) - 1, "label": label, "confidence": conf,
                         "source": "ai", "review_state": _state(conf), "reviewed_by": None,
                         "reviewed_at": None, "created_at": created, "_true": is_true})
        if row["status"] == "needs_review":
            _review(rng, tags, corrections, photo, sample, answer, created, now, pk)

    for photo in photos:
        last = results[photo.pop("_last")]
        if photo["status"] == "needs_review" and photo.pop("_review_open") == 0:
            photo["status"] = "completed"  # every doubtful tag has been reviewed
        photo.pop("_review_open", None)
        photo["updated_at"] = max(last["created_at"], photo.get("_reviewed_at", last["created_at"]))
        photo.pop("_reviewed_at", None)
        photo.pop("_sample")
    health = provider_health(nrng, ts, prov, failed, latency, names, now, days, ep_start, ep_end)
    return History(photos, results, tags, corrections, health, retries_by_day, len(photos) + 1)


def _trace(provider: str, model: str, lat: int, retries: int, overhead: int, row: dict[str, Any],
           answer: list[tuple[str, float, bool]]) -> list[dict[str, Any]]:
    """The worker's step-by-step record: load, each provider call, the rules' verdicts, save."""
    steps: list[dict[str, Any]] = [{"step": "load_image", "ms": max(1, overhead // 3)},
                                   {"step": "request", "provider": provider, "model": model}]
    for attempt in range(1, retries + 1):
        steps.append({"step": "call", "attempt": attempt, "ms": lat, "outcome": "retryable_error",
                      "backoff_ms": 1000 * 2 ** (attempt - 1)})
    if row["status"] == "failed":
        steps.append({"step": "call", "attempt": retries + 1, "ms": lat, "outcome": row["error_kind"]})
        return steps
    steps.append({"step": "call", "attempt": retries + 1, "ms": lat, "outcome": "ok", "tags": len(answer)})
    accepted = sum(1 for _, c, _ in answer if c >= ACCEPT)
    rejected = sum(1 for _, c, _ in answer if c < REJECT)
    steps.append({"step": "rules", "accepted": accepted, "needs_review": len(answer) - accepted - rejected,
                  "rejected": rejected})
    steps.append({"step": "save", "ms": max(1, overhead // 2)})
    return steps


def _review(rng: random.Random, tags: list[dict[str, Any]], corrections: list[dict[str, Any]],
            photo: dict[str, Any], sample: samples.Sample, answer: list[tuple[str, float, bool]],
            created: datetime, now: datetime, pk: int) -> None:
    """Reviewers work through doubtful photos: most within hours, the newest still waiting. One review decides
    every tag of the photo awaiting one, as the review queue has it, or the photo waits with all of them."""
    present = {label for label, _, _ in answer}
    missing = [label for label in sample.labels if label not in present]
    band = [tag for tag in tags[len(tags) - len(answer):] if tag["review_state"] == "needs_review"]
    if not band:
        return
    at = created + timedelta(hours=rng.expovariate(1 / 6.0), minutes=1)
    if at >= now - timedelta(minutes=1) or rng.random() < 0.1:
        photo["_review_open"] += len(band)
        return
    who = "reviewer" if rng.random() < 0.85 else "admin"
    for tag in band:
        before = {"label": tag["label"], "confidence": tag["confidence"], "review_state": "needs_review"}
        if tag["_true"]:
            action, after_state, label = ("accept", "accepted", tag["label"]) if rng.random() < 0.95 else (
                "reject", "rejected", tag["label"])
        elif missing and rng.random() < 0.35:
            action, after_state, label = "correct", "corrected", missing.pop(rng.randrange(len(missing)))
        else:
            action, after_state, label = "reject", "rejected", tag["label"]
        tag.update(label=label, review_state=after_state, reviewed_by=who, reviewed_at=at)
        corrections.append({"_photo": pk, "_tag": tag, "action": action, "before": before,
                            "after": {"label": label, "review_state": after_state}, "user_id": who,
                            "created_at": at})
        photo["_reviewed_at"] = max(photo.get("_reviewed_at", at), at)
        at += timedelta(seconds=rng.randint(2, 9))
    if missing and rng.random() < 0.15:
        at = photo["_reviewed_at"] + timedelta(seconds=rng.randint(5, 90))
        label = missing.pop()
        added = {"_photo": pk, "_result": None, "label": label, "confidence": 1.0, "source": "human",
                 "review_state": "accepted", "reviewed_by": who, "reviewed_at": at, "created_at": at,
                 "_true": True}
        tags.append(added)
        corrections.append({"_photo": pk, "_tag": added, "action": "add", "before": None,
                            "after": {"label": label, "review_state": "accepted"}, "user_id": who,
                            "created_at": at})
        photo["_reviewed_at"] = at
