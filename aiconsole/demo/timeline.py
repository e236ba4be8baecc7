"""The demo's calendar: traffic by local hour and weekday, the degraded Gemini episode, prompt releases and
experiments, provider health every 5 minutes, and the live queue at `now`.

The generator keeps times as integer microseconds since the epoch (numpy handles arrays of them cheaply);
`to_us` and `from_us` convert.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from aiconsole.pipeline.images import store_image
from aiconsole.platform.db.sql import floor_hour
from aiconsole.platform.settings import Settings
from aiconsole.providers import samples

PENDING_PHOTOS = 200
WORKERS = ("demo-worker-1", "demo-worker-2", "demo-worker-3")
MAX_RETRIES = 3
US = 1_000_000  # microseconds per second

# Relative traffic by local hour of day and by weekday (Monday first).
HOUR_OF_DAY = (0.10, 0.07, 0.06, 0.06, 0.08, 0.14, 0.28, 0.50, 0.82, 1.00, 1.08, 1.10,
               1.00, 1.05, 1.10, 1.05, 0.95, 0.78, 0.55, 0.42, 0.35, 0.28, 0.20, 0.14)
DAY_OF_WEEK = (1.00, 1.06, 1.05, 1.00, 0.90, 0.42, 0.33)
# Provider response time: median (ms) and spread. The results and the health probes both draw from it.
LATENCY = {"google-vision": (420.0, 0.35), "gemini": (1900.0, 0.45), "local": (70.0, 0.5)}

PROMPTS: dict[str, dict[str, Any]] = {
    "photo-tagger": {
        "description": "Tags for the photo library: objects, scene and style.",
        "versions": [
            (40, "Initial prompt", 180, "List the main objects in this photo as tags. Answer with JSON: "
             '{"tags": [{"label": str, "confidence": number}]}. At most {max_tags} tags.'),
            (21, "Ask for scene and style tags too", 240, "You tag photos for a searchable library. List up to "
             "{max_tags} tags covering objects, the scene and the photographic style, in {language}. Give each "
             'tag a confidence from 0 to 1. Answer only with JSON: {"tags": [{"label": str, "confidence": '
             "number}]}."),
            (17, "Lower-case labels, no duplicates", 310, "You tag photos for a searchable library. List up to "
             "{max_tags} tags covering objects, the scene and the photographic style, in {language}. Use short "
             "lower-case nouns, no duplicates or synonyms of one another. Give each tag a calibrated confidence "
             'from 0 to 1: 0.9 means you would be wrong one time in ten. Answer only with JSON: {"tags": '
             '[{"label": str, "confidence": number}]}.'),
            (6, "Shorter prompt, calibrated examples", 270, "Tag this photo for search: up to {max_tags} short "
             "lower-case nouns in {language} (objects, scene, style), no synonyms. Confidence 0-1, calibrated: "
             'a clear cat is 0.97, a blurry shape that may be a cat is 0.5. JSON only: {"tags": [{"label": '
             'str, "confidence": number}]}.'),
        ],
        # (days ago, label, version)
        "labels": [(40, "production", 1), (21, "production", 2), (17, "staging", 3), (10, "production", 3),
                   (6, "staging", 4)],
    },
    "product-catalog": {
        "description": "Attributes for product shots: category, colour, material.",
        "versions": [
            (35, "Initial prompt", 150, "Describe the product in this photo with tags for category, colour and "
             'material. JSON: {"tags": [{"label": str, "confidence": number}]}.'),
            (8, "Add packaging and condition", 200, "Describe the product in this photo with up to {max_tags} "
             "tags for category, colour, material, packaging and condition (new/used), in {language}. JSON "
             'only: {"tags": [{"label": str, "confidence": number}]}.'),
        ],
        "labels": [(35, "production", 1), (8, "staging", 2), (3, "production", 2)],
    },
}
# (key, name, hypothesis, control version, treatment version, start days ago, end days ago or None)
EXPERIMENTS = (
    ("scene-tags", "Prompt v3 vs v2", "Lower-case, de-duplicated labels raise confidence without losing recall.",
     2, 3, 16, 12),
    ("short-prompt", "Prompt v4 vs v3", "A shorter prompt with calibration examples is cheaper and more confident.",
     3, 4, 5, 0.125),
)
# Why the last one ended three hours ago rather than running on: a running experiment takes every new photo,
# here to Gemini, which has no key unless `up --emulate` stands in for it; live photos follow the pipeline.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch."""
    return (ts - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int | np.integer) -> datetime:
    """The aware UTC datetime `us` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=int(us))


def traffic_hours(now: datetime, days: int, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Hour start times (us), the traffic weight of each hour and the seconds of it that have happened."""
    start = floor_hour(now - timedelta(days=days))
    n = int((floor_hour(now) - start) / timedelta(hours=1)) + 1
    starts = [start + timedelta(hours=i) for i in range(n)]
    weights = np.empty(n)
    spike_day = (now - timedelta(days=9)).astimezone(tz).date() if days >= 10 else None
    for i, h in enumerate(starts):
        local = h.astimezone(tz)
        w = HOUR_OF_DAY[local.hour] * DAY_OF_WEEK[local.weekday()] * (0.85 + 0.3 * i / max(1, n - 1))
        if local.date() == spike_day and 10 <= local.hour <= 12:
            w *= 3.5  # a customer's bulk import
        weights[i] = w
    spans = np.array([min(3600.0, (now - h).total_seconds()) for h in starts])
    return np.array([to_us(h) for h in starts], dtype=np.int64), weights, spans, n


def gemini_episode(now: datetime, days: int, tz: ZoneInfo) -> tuple[int, int]:
    """The degraded Gemini episode: 100 minutes at 14:00 local two days ago (or mid-history if shorter)."""
    local = (now - timedelta(days=2)).astimezone(tz).replace(hour=14, minute=0, second=0, microsecond=0)
    start = local.astimezone(UTC)
    if start < now - timedelta(days=days) or start > now - timedelta(hours=2):
        start = floor_hour(now - timedelta(hours=days * 12))
    return to_us(start), to_us(start + timedelta(minutes=100))


def prompt_tokens(version: int) -> int:
    """Input tokens of photo-tagger `version`'s prompt text (the image's tokens come on top)."""
    return int(PROMPTS["photo-tagger"]["versions"][version - 1][2])


def prompt_for(ts: int, now_us: int, rng: random.Random) -> tuple[int, str | None, str | None]:
    """(photo-tagger version, experiment key, variant) a Gemini call at `ts` used."""
    days_ago = (now_us - ts) / (86_400 * US)
    for key, _, _, control, treatment, start, end in EXPERIMENTS:
        if start > days_ago >= (end or 0):
            arm = rng.random() < 0.5
            return (treatment, key, "treatment") if arm else (control, key, "control")
    return (1 if days_ago >= 21 else 2 if days_ago >= 10 else 3), None, None


def provider_health(nrng: np.random.Generator, ts: np.ndarray, prov: np.ndarray, failed: np.ndarray,
                    latency: np.ndarray, names: np.ndarray, now: datetime, days: int, ep_start: int, ep_end: int
                    ) -> list[dict[str, Any]]:
    """A sample every 5 minutes per provider, read off that window's results (a probe when there were none)."""
    slot = 300 * US
    start = to_us(floor_hour(now - timedelta(days=days)))
    n_slots = int((to_us(now) - start) // slot) + 1
    rows: list[dict[str, Any]] = []
    for p, provider in enumerate(names):
        mask = prov == p
        bins = ((ts[mask] - start) // slot).astype(np.int64)
        calls = np.bincount(bins, minlength=n_slots)
        errors = np.bincount(bins, weights=failed[mask], minlength=n_slots)
        order = np.lexsort((latency[mask], bins))
        sorted_bins, sorted_lat = bins[order], latency[mask][order]
        uniq, first, count = np.unique(sorted_bins, return_index=True, return_counts=True)
        median = np.full(n_slots, np.nan)
        median[uniq] = sorted_lat[first + count // 2]
        typical = LATENCY[str(provider)][0]
        probes = typical * np.exp(LATENCY[str(provider)][1] * nrng.standard_normal(n_slots))
        for b in range(n_slots):
            at = start + b * slot
            in_episode = provider == "gemini" and ep_start <= at < ep_end
            n_calls = int(calls[b])
            rate = float(errors[b] / n_calls) if n_calls else 0.0
            ms = int(median[b]) if n_calls else int(probes[b])
            status = "healthy"
            # Thresholds need a few calls: one slow or failed call in a quiet night slot is not an outage.
            if in_episode or (n_calls >= 5 and rate >= 0.2) or (n_calls >= 3 and ms > 3 * typical):
                status = "degraded"
            if n_calls >= 5 and rate >= 0.6:
                status = "down"
            details = None
            if status != "healthy":
                details = {"calls": n_calls, "errors": int(errors[b]),
                           "reason": "elevated 5xx responses and timeouts" if in_episode
                           else "error rate or latency above normal"}
            rows.append({"provider_name": str(provider), "status": status, "response_time_ms": ms,
                         "error_rate": round(rate, 4) if n_calls else None, "last_check": from_us(at),
                         "error_details": details})
    return rows


def queue_photos(settings: Settings, now: datetime, first_variant: int, rng: random.Random
                 ) -> list[dict[str, Any]]:
    """Photos waiting in the queue right now: real sample bytes stored in the photo store."""
    names = [s.name for s in samples.list_samples()]
    plan: list[tuple[str, dict[str, Any]]] = []
    for k in range(PENDING_PHOTOS):
        age = timedelta(seconds=rng.uniform(5, 45 * 60))
        extra: dict[str, Any] = {"status": "pending", "created_at": now - age}
        if k % 40 == 7:  # rate limited on the first try; waiting out its backoff
            extra.update(attempts=1, next_attempt_at=now + timedelta(minutes=rng.randint(2, 10)),
                         last_error="429 RESOURCE_EXHAUSTED: quota exceeded; retrying after backoff")
        plan.append(("pending", extra))
    lease = timedelta(seconds=settings.lease_seconds)
    for k in range(4):
        started = now - timedelta(seconds=rng.uniform(1, 20))
        plan.append(("processing", {"status": "processing", "attempts": 1, "lease_owner": WORKERS[k % 2],
                                    "lease_expires_at": started + lease, "started_at": started,
                                    "created_at": started - timedelta(seconds=rng.uniform(5, 120))}))
    for _ in range(3):
        started = now - timedelta(minutes=rng.uniform(15, 50))
        plan.append(("stuck", {"status": "processing", "attempts": 1, "lease_owner": "demo-worker-9",
                               "lease_expires_at": started + lease, "started_at": started,
                               "created_at": started - timedelta(minutes=rng.uniform(1, 5))}))
    for _ in range(4):
        started = now - timedelta(minutes=rng.uniform(20, 180))
        plan.append(("failed", {"status": "failed", "attempts": MAX_RETRIES, "started_at": started,
                                "completed_at": started + timedelta(seconds=31),
                                "created_at": started - timedelta(minutes=2),
                                "last_error": "the request timed out after 30 s (gave up after 3 retries)"}))
    rows = []
    for k, (_, extra) in enumerate(plan):
        name = names[k % len(names)]
        variant = first_variant + k
        data = samples.sample_photo(name, variant)
        demo = samples.demo_photo(name, variant)
        row = {"sha256": demo.sha256, "storage_uri": store_image(data, settings=settings),
               "filename": f"upload_{name}_{variant}.jpg", "content_type": "image/jpeg",
               "byte_size": demo.byte_size, "width": demo.width, "height": demo.height, "source": "upload",
               "priority": 10 if k % 25 == 3 else 0, "attempts": 0}
        row.update(extra)
        row.setdefault("updated_at", row.get("started_at", row["created_at"]))
        rows.append(row)
    return rows
