"""The demo organization: "Demo Photos Inc." with a month of believable pipeline history.

`seed_demo` writes, in one transaction: the organization (is_demo), one user per role, prompts with
versions and production/staging labels, the pipeline config, provider configs (no secrets), two prompt
experiments, `days` of results across google-vision, gemini and local (busier weekdays and working
hours in the org's time zone, a bulk-import spike, one degraded Gemini episode, failures, retries,
re-queued failures, low-confidence tags, reviewer corrections), the hourly rollups (rebuilt in SQL from
those results), provider health every 5 minutes (derived from the same results), a live queue of real
stored sample photos, and the audit trail. Timestamps are relative to `now`, so the demo always looks
current. Everything random comes from `seed`: the same seed and `now` give the same data.

History photos are `demo://` photos (see aiconsole.samples): their sha256 and size are those of the
bytes the URI renders. Costs come from aiconsole.providers.pricing: the Vision free tier per calendar
month (counted from the start of the history), Gemini tokens including image tokens.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import JSON, Boolean, delete, func, insert, select, text
from sqlalchemy.orm import Session

from aiconsole import samples
from aiconsole.audit import redact
from aiconsole.config import Settings, get_settings
from aiconsole.db.engine import get_engine, service_session
from aiconsole.db.models import (
    ROLES,
    AiDashboardMetric,
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Correction,
    Experiment,
    Organization,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
    User,
)
from aiconsole.db.models import Photo as PhotoModel
from aiconsole.db.sql import floor_hour
from aiconsole.db.types import UTCDateTime, utcnow
from aiconsole.errors import ConflictError, ValidationFailed
from aiconsole.images import store_image
from aiconsole.money import format_usd, usd_to_micros
from aiconsole.passwords import hash_password
from aiconsole.providers.pricing import (
    LOCAL_MODEL,
    VISION_PRICES,
    gemini_cost_micros,
    gemini_image_tokens,
    vision_cost_micros,
)
from aiconsole.rollups import rebuild_rollups

DEMO_ORG_NAME = "Demo Photos Inc."
DEMO_ORG_SLUG = "demo-photos-inc"
DEMO_TIMEZONE = "America/New_York"
# A published demo password (README, `aiconsole up`): these accounts exist only in the demo org.
DEMO_PASSWORD = "demo-console"  # noqa: S105
_PEOPLE = {
    "platform_admin": ("platform-admin", "Pat Platform"),
    "admin": ("admin", "Alex Admin"),
    "developer": ("developer", "Dana Developer"),
    "analyst": ("analyst", "Ana Analyst"),
    "reviewer": ("reviewer", "Riley Reviewer"),
    "viewer": ("viewer", "Val Viewer"),
}
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (f"{_PEOPLE[role][0]}@demo.aiconsole.dev", DEMO_PASSWORD, role) for role in ROLES
]
SEED_ACTOR = "system:demo"

RESULTS_PER_DAY = 1_780
PENDING_PHOTOS = 200
MAX_DAYS = 90
VISION_MODEL = "builtin/stable"
GEMINI_MODEL = "gemini-2.5-flash"
MODELS = {"google-vision": VISION_MODEL, "gemini": GEMINI_MODEL, "local": LOCAL_MODEL}
WORKERS = ("demo-worker-1", "demo-worker-2", "demo-worker-3")
ACCEPT, REJECT = 0.8, 0.4
MAX_RETRIES = 3
US = 1_000_000  # microseconds per second

# Relative traffic by local hour of day and by weekday (Monday first).
HOUR_OF_DAY = (0.10, 0.07, 0.06, 0.06, 0.08, 0.14, 0.28, 0.50, 0.82, 1.00, 1.08, 1.10,
               1.00, 1.05, 1.10, 1.05, 0.95, 0.78, 0.55, 0.42, 0.35, 0.28, 0.20, 0.14)
DAY_OF_WEEK = (1.00, 1.06, 1.05, 1.00, 0.90, 0.42, 0.33)
# Provider behaviour: median and spread of response time (ms), failure probability, timeout (ms).
LATENCY = {"google-vision": (420.0, 0.35), "gemini": (1900.0, 0.45), "local": (70.0, 0.5)}
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
# for wrong ones, probabilities of 0/1/2 wrong labels, and how many true labels an answer has.
QUALITY = {
    "google-vision": ((1.2, 18.0), (2.0, 7.0), (0.60, 0.32, 0.08), (2, 4)),
    "gemini": ((1.1, 22.0), (2.0, 8.0), (0.75, 0.23, 0.02), (3, 5)),
    "local": ((1.4, 14.0), (2.5, 6.0), (0.45, 0.40, 0.15), (2, 3)),
}
GEMINI_TRUE_B = {1: 18.0, 2: 20.0, 3: 22.0, 4: 27.0}  # later prompt versions answer more confidently
SAMPLE_WEIGHTS = {"chelsea": 3.0, "coffee": 3.0, "motorcycle": 3.0, "astronaut": 2.5, "rocket": 2.0,
                  "camera": 2.0, "coins": 1.5, "colorwheel": 1.0}

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
     3, 4, 5, None),
)


@dataclass(frozen=True)
class DemoSummary:
    """What seed_demo wrote, and how long it took."""

    organization_id: int
    users: int
    photos: int
    results: int
    photo_tags: int
    needs_review_tags: int
    corrections: int
    pending: int
    processing: int
    stuck: int
    failed_photos: int
    health_rows: int
    rollup_rows: int
    audit_entries: int
    cost_micros: int
    seconds: float
    logins: list[tuple[str, str, str]] = field(default_factory=lambda: list(DEMO_LOGINS))

    def __str__(self) -> str:
        return (f"Seeded {DEMO_ORG_NAME} (organization {self.organization_id}) in {self.seconds:.1f} s: "
                f"{self.results:,} results, {self.photos:,} photos ({self.pending} pending, {self.processing} "
                f"processing, {self.stuck} stuck, {self.failed_photos} failed), {self.photo_tags:,} tags "
                f"({self.needs_review_tags:,} awaiting review), {self.corrections:,} corrections, "
                f"{format_usd(self.cost_micros)} of provider spend, {len(self.logins)} demo logins.")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int | np.integer) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def find_demo_organization(*, settings: Settings | None = None) -> int | None:
    """The demo organization's id, or None when it has not been seeded."""
    with service_session(engine=get_engine(settings)) as s:
        return s.scalar(select(Organization.id).where(Organization.name == DEMO_ORG_NAME))


# ---------------------------------------------------------------- the history, generated without the database


@dataclass
class _History:
    photos: list[dict[str, Any]]
    results: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    corrections: list[dict[str, Any]]
    health: list[dict[str, Any]]
    retries_by_day: dict[date, tuple[datetime, int]]
    next_variant: int


def _hours(now: datetime, days: int, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
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
    return np.array([_us(h) for h in starts], dtype=np.int64), weights, spans, n


def _episode(now: datetime, days: int, tz: ZoneInfo) -> tuple[int, int]:
    """The degraded Gemini episode: 100 minutes at 14:00 local two days ago (or mid-history if shorter)."""
    local = (now - timedelta(days=2)).astimezone(tz).replace(hour=14, minute=0, second=0, microsecond=0)
    start = local.astimezone(UTC)
    if start < now - timedelta(days=days) or start > now - timedelta(hours=2):
        start = floor_hour(now - timedelta(hours=days * 12))
    return _us(start), _us(start + timedelta(minutes=100))


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


def _prompt_tokens(version: int) -> int:
    return int(PROMPTS["photo-tagger"]["versions"][version - 1][2])


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
    if provider == "gemini" and version is not None:
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


def _prompt_for(ts: int, now_us: int, rng: random.Random) -> tuple[int, str | None, str | None]:
    """(photo-tagger version, experiment key, variant) a Gemini call at `ts` used."""
    days_ago = (now_us - ts) / (86_400 * US)
    for key, _, _, control, treatment, start, end in EXPERIMENTS:
        if start > days_ago >= (end or 0):
            arm = rng.random() < 0.5
            return (treatment, key, "treatment") if arm else (control, key, "control")
    return (1 if days_ago >= 21 else 2 if days_ago >= 10 else 3), None, None


def _generate(rng: random.Random, nrng: np.random.Generator, now: datetime, days: int, tz: ZoneInfo,
) -> _History:
    now_us = _us(now)
    hour_us, weights, spans, n_hours = _hours(now, days, tz)
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
    ep_start, ep_end = _episode(now, days, tz)
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
        day = _dt(ts[j]).astimezone(tz).date()
        first, count = retries_by_day.get(day, (_dt(ts[j]), 0))
        retries_by_day[day] = (min(first, _dt(ts[j])), count + 1)

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
        created = _dt(t_us)
        lat = lat_l[i]
        version, experiment, variant = _prompt_for(t_us, now_us, rng) if p == 1 else (None, None, None)
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
                row["input_tokens"] = _prompt_tokens(version) + gemini_image_tokens(photo["width"],
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
                row["input_tokens"] = _prompt_tokens(version) + gemini_image_tokens(photo["width"],
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
            photo["created_at"] = _dt(t_us - (wait_l[i] + total) * 1000)
        photo["_last"] = len(results) - 1
        photo["started_at"] = _dt(t_us - total * 1000)
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
    health = _health(nrng, ts, prov, failed, latency, names, now, days, ep_start, ep_end)
    return _History(photos, results, tags, corrections, health, retries_by_day, len(photos) + 1)


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
    """Reviewers work through doubtful tags: most within hours, the newest still waiting."""
    present = {label for label, _, _ in answer}
    missing = [label for label in sample.labels if label not in present]
    reviewed_any = False
    for tag in tags[len(tags) - len(answer):]:
        if tag["review_state"] != "needs_review":
            continue
        at = created + timedelta(hours=rng.expovariate(1 / 6.0), minutes=1)
        if at >= now - timedelta(minutes=1) or rng.random() < 0.1:
            photo["_review_open"] += 1
            continue
        who = "reviewer" if rng.random() < 0.85 else "admin"
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
        reviewed_any = True
    if reviewed_any and missing and rng.random() < 0.15:
        at = photo["_reviewed_at"] + timedelta(seconds=rng.randint(5, 90))
        label = missing.pop()
        added = {"_photo": pk, "_result": None, "label": label, "confidence": 1.0, "source": "human",
                 "review_state": "accepted", "reviewed_by": "reviewer", "reviewed_at": at, "created_at": at,
                 "_true": True}
        tags.append(added)
        corrections.append({"_photo": pk, "_tag": added, "action": "add", "before": None,
                            "after": {"label": label, "review_state": "accepted"}, "user_id": "reviewer",
                            "created_at": at})
        photo["_reviewed_at"] = at


def _health(nrng: np.random.Generator, ts: np.ndarray, prov: np.ndarray, failed: np.ndarray,
            latency: np.ndarray, names: np.ndarray, now: datetime, days: int, ep_start: int, ep_end: int
            ) -> list[dict[str, Any]]:
    """A sample every 5 minutes per provider, read off that window's results (a probe when there were none)."""
    slot = 300 * US
    start = _us(floor_hour(now - timedelta(days=days)))
    n_slots = int((_us(now) - start) // slot) + 1
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
                         "error_rate": round(rate, 4) if n_calls else None, "last_check": _dt(at),
                         "error_details": details})
    return rows


# ---------------------------------------------------------------- writing it


def _reserve_ids(session: Session, table: str, n: int) -> list[int]:
    """n fresh primary keys for `table`, taken so that concurrent inserts elsewhere cannot collide."""
    if n == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        # Drawing from the table's own sequence keeps later ordinary inserts collision-free.
        return list(session.scalars(text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                         "FROM generate_series(1, :n)"), {"n": n}))
    # SQLite: this transaction already holds the write lock (it wrote the organization), so no one
    # else can insert between reading the maximum and using the ids above it.
    top = session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0
    return list(range(int(top) + 1, int(top) + 1 + n))


def _sqlite_datetime(value: datetime | None) -> str | None:
    """UTCDateTime's SQLite storage: naive UTC text in SQLAlchemy's format, 2026-01-31 23:59:59.000001."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_converter(column: Any) -> Any:
    """How SQLAlchemy binds this column's Python values on SQLite, as one plain function."""
    if isinstance(column.type, UTCDateTime):
        return _sqlite_datetime
    if isinstance(column.type, JSON):
        return json.dumps  # None becomes JSON null, as SQLAlchemy's JSON type stores it
    if isinstance(column.type, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def _bulk(session: Session, model: Any, rows: list[dict[str, Any]], chunk: int = 20_000) -> None:
    """Insert many rows with executemany; every row gets every key (missing ones NULL)."""
    if not rows:
        return
    table = model.__table__
    present = set().union(*rows)
    columns = [c for c in table.columns if c.name in present]
    keys = [c.name for c in columns]
    if session.get_bind().dialect.name == "sqlite":
        # SQLAlchemy's per-value bind processing costs more than SQLite's insert itself at this
        # volume; the values are converted exactly as its SQLite types would (see _sqlite_converter).
        sql = f"INSERT INTO {table.name} ({', '.join(keys)}) VALUES ({', '.join('?' for _ in keys)})"
        convert = [(k, _sqlite_converter(c)) for k, c in zip(keys, columns, strict=True)]
        conn = session.connection()
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            # Column by column, then zip into row tuples: far fewer Python frames than row by row.
            values = []
            for key, fn in convert:
                column_values = [r.get(key) for r in part]
                values.append(column_values if fn is None else list(map(fn, column_values)))
            conn.exec_driver_sql(sql, list(zip(*values, strict=True)))
        return
    for row in rows:
        for key in keys:
            row.setdefault(key, None)
    for i in range(0, len(rows), chunk):
        session.execute(insert(table), rows[i:i + chunk])


def _delete_organization(session: Session, org_id: int) -> None:
    # Children first, table by table: one set-based DELETE each instead of a cascade that checks
    # every foreign key row by row.
    for model in (Correction, PhotoTag, AiProcessingResult, ProcessingRollupHourly, AiProviderHealth,
                  AiDashboardMetric, AuditLog, PhotoModel, PromptLabel, PromptVersion, Experiment):
        session.execute(delete(model).where(model.organization_id == org_id))
    session.execute(delete(Organization).where(Organization.id == org_id))


def _queue_photos(settings: Settings, now: datetime, first_variant: int, rng: random.Random
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


def seed_demo(*, settings: Settings | None = None, force: bool = False, seed: int = 42, days: int = 30,
              now: datetime | None = None) -> DemoSummary:
    """Create the demo organization with `days` of history (refuses if it exists, unless `force`)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"{days} days of demo history is out of range.", hint=f"Use 1 to {MAX_DAYS}.")
    settings = settings or get_settings()
    now = now or utcnow()
    if now.tzinfo is None:
        raise ValidationFailed("`now` must be timezone-aware.", hint="Pass datetime.now(UTC).")
    clock = time.perf_counter()
    engine = get_engine(settings)
    existing = find_demo_organization(settings=settings)
    if existing is not None and not force:
        raise ConflictError(f"The demo organization '{DEMO_ORG_NAME}' already exists (id {existing}).",
                            hint="Use it as it is, or run `aiconsole demo --force` to replace it "
                                 "(other organizations are not touched).")
    tz = ZoneInfo(DEMO_TIMEZONE)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    history = _generate(rng, nrng, now, days, tz)
    queue = _queue_photos(settings, now, history.next_variant, rng)
    password_hash = hash_password(DEMO_PASSWORD)

    with service_session(engine=engine) as s:
        existing = s.scalar(select(Organization.id).where(Organization.name == DEMO_ORG_NAME))
        if existing is not None:
            if not force:
                raise ConflictError(f"The demo organization '{DEMO_ORG_NAME}' was created meanwhile "
                                    f"(id {existing}).", hint="Use it, or seed again with --force.")
            _delete_organization(s, existing)
        emails = [email for email, _, _ in DEMO_LOGINS]
        taken = list(s.scalars(select(User.email).where(User.email.in_(emails))))
        if taken:
            raise ConflictError(f"Demo login {taken[0]} already belongs to another organization.",
                                hint="Rename or remove that user, then seed the demo again.")
        sqlite = s.get_bind().dialect.name == "sqlite"
        if sqlite:
            # A bigger page cache for this connection while it writes ~100 MB of rows and indexes.
            cache_pages = s.execute(text("PRAGMA cache_size")).scalar()
            s.execute(text("PRAGMA cache_size=-131072"))
        org = Organization(name=DEMO_ORG_NAME, slug=DEMO_ORG_SLUG, timezone=DEMO_TIMEZONE, is_demo=True,
                           created_at=now - timedelta(days=days + 14))
        s.add(org)
        s.flush()
        ids = _write_setup(s, org.id, now, days, password_hash)
        summary = _write_history(s, org.id, history, queue, ids, now)
        audit_n = _write_audit(s, org.id, now, days, ids, history, summary)
        rollup_rows = rebuild_rollups(s, organization_id=org.id)
        cost = int(s.scalar(select(func.coalesce(func.sum(AiProcessingResult.api_cost_micros), 0))
                            .where(AiProcessingResult.organization_id == org.id)) or 0)
        org_id = org.id
        if sqlite:
            s.execute(text(f"PRAGMA cache_size={int(cache_pages or -2000)}"))
    return DemoSummary(
        organization_id=org_id, users=len(DEMO_LOGINS), photos=summary["photos"], results=summary["results"],
        photo_tags=summary["photo_tags"], needs_review_tags=summary["needs_review_tags"],
        corrections=summary["corrections"], pending=summary["pending"], processing=summary["processing"],
        stuck=summary["stuck"], failed_photos=summary["failed_photos"], health_rows=summary["health_rows"],
        rollup_rows=rollup_rows, audit_entries=audit_n, cost_micros=cost,
        seconds=round(time.perf_counter() - clock, 2))


@dataclass
class _Ids:
    users: dict[str, int]
    versions: dict[tuple[str, int], int]
    prompts: dict[str, int]
    experiments: dict[str, int]


def _write_setup(s: Session, org_id: int, now: datetime, days: int, password_hash: str) -> _Ids:
    users = {}
    for email, _, role in DEMO_LOGINS:
        user = User(organization_id=org_id, email=email, display_name=_PEOPLE[role][1], role=role,
                    password_hash=password_hash, is_active=True, created_at=now - timedelta(days=days + 13))
        s.add(user)
        s.flush()
        users[role] = user.id
    versions: dict[tuple[str, int], int] = {}
    prompt_ids: dict[str, int] = {}
    for name, spec in PROMPTS.items():
        first_days = spec["versions"][0][0]
        prompt = Prompt(organization_id=org_id, name=name, description=spec["description"],
                        created_by=users["developer"], created_at=now - timedelta(days=first_days))
        s.add(prompt)
        s.flush()
        prompt_ids[name] = prompt.id
        for number, (ago, message, _, content) in enumerate(spec["versions"], start=1):
            version = PromptVersion(organization_id=org_id, prompt_id=prompt.id, version=number, content=content,
                                    variables=["max_tags", "language"] if "{language}" in content else ["max_tags"],
                                    message=message, author_id=users["developer"],
                                    created_at=now - timedelta(days=ago))
            s.add(version)
            s.flush()
            versions[(name, number)] = version.id
        final: dict[str, tuple[int, int]] = {}
        for ago, label, number in spec["labels"]:
            final[label] = (ago, number)
        for label, (ago, number) in final.items():
            s.add(PromptLabel(organization_id=org_id, prompt_id=prompt.id, label=label,
                              version_id=versions[(name, number)],
                              updated_by=users["admin" if label == "production" else "developer"],
                              updated_at=now - timedelta(days=ago)))
    experiments: dict[str, int] = {}
    for key, title, hypothesis, control, treatment, start, end in EXPERIMENTS:
        exp = Experiment(
            organization_id=org_id, name=title, hypothesis=hypothesis,
            status="completed" if end is not None else "running",
            variants=[{"name": "control", "provider": "gemini", "model": GEMINI_MODEL,
                       "prompt_version_id": versions[("photo-tagger", control)], "weight": 50},
                      {"name": "treatment", "provider": "gemini", "model": GEMINI_MODEL,
                       "prompt_version_id": versions[("photo-tagger", treatment)], "weight": 50}],
            primary_metric="avg_confidence", created_by=users["developer"],
            created_at=now - timedelta(days=start, hours=2), started_at=now - timedelta(days=start),
            ended_at=None if end is None else now - timedelta(days=end))
        s.add(exp)
        s.flush()
        experiments[key] = exp.id
    s.add(PipelineConfig(
        organization_id=org_id, active_provider="local", active_model=LOCAL_MODEL,
        active_prompt_id=prompt_ids["photo-tagger"], fallback_provider=None, accept_threshold=ACCEPT,
        reject_threshold=REJECT, label_overrides={}, max_cost_per_photo_micros=usd_to_micros("0.01"),
        daily_budget_micros=usd_to_micros(25), monthly_budget_micros=usd_to_micros(600),
        max_retries=MAX_RETRIES, worker_concurrency=8, paused=False, version=3, updated_by=users["admin"],
        updated_at=now - timedelta(days=12)))
    for provider, rate, timeout, conc, enabled in (("google-vision", 1800, 15.0, 16, False),
                                                   ("gemini", 500, 30.0, 8, False),
                                                   ("local", 6000, 10.0, 2, True)):
        s.add(ProviderConfig(organization_id=org_id, provider=provider, enabled=enabled, encrypted_secret=None,
                             secret_last4=None, rate_limit_per_minute=rate, timeout_seconds=timeout,
                             max_concurrency=conc, price_overrides={}, version=1, updated_by=users["admin"],
                             updated_at=now - timedelta(days=days + 10)))
    s.flush()
    return _Ids(users, versions, prompt_ids, experiments)


def _write_history(s: Session, org_id: int, h: _History, queue: list[dict[str, Any]], ids: _Ids,
                   now: datetime) -> dict[str, int]:
    photos = h.photos + queue
    photo_ids = _reserve_ids(s, "photos", len(photos))
    for pid, row in zip(photo_ids, photos, strict=True):
        row.update(id=pid, organization_id=org_id)
    _bulk(s, PhotoModel, photos)

    result_ids = _reserve_ids(s, "ai_processing_results", len(h.results))
    for rid, row in zip(result_ids, h.results, strict=True):
        version = row.pop("_version")
        experiment = row.pop("_experiment")
        row.update(id=rid, organization_id=org_id, photo_id=photo_ids[row.pop("_photo")],
                   prompt_version_id=None if version is None else ids.versions[("photo-tagger", version)],
                   experiment_id=None if experiment is None else ids.experiments[experiment])
    _bulk(s, AiProcessingResult, h.results)

    tag_ids = _reserve_ids(s, "photo_tags", len(h.tags))
    for tid, row in zip(tag_ids, h.tags, strict=True):
        result = row.pop("_result")
        row.pop("_true")
        row.update(id=tid, organization_id=org_id, photo_id=photo_ids[row.pop("_photo")],
                   result_id=None if result is None else result_ids[result],
                   reviewed_by=None if row["reviewed_by"] is None else ids.users[row["reviewed_by"]])
    _bulk(s, PhotoTag, h.tags)

    corrections = []
    for c in h.corrections:
        corrections.append({"organization_id": org_id, "photo_id": photo_ids[c["_photo"]], "tag_id": c["_tag"]["id"],
                            "action": c["action"], "before": c["before"], "after": c["after"],
                            "user_id": ids.users[c["user_id"]], "created_at": c["created_at"]})
    _bulk(s, Correction, corrections)
    for row in h.health:
        row["organization_id"] = org_id
    _bulk(s, AiProviderHealth, h.health)

    status = Counter(p["status"] for p in photos)
    stuck = sum(1 for p in queue if p["status"] == "processing" and p["lease_expires_at"] <= now)
    return {"photos": len(photos), "results": len(h.results), "photo_tags": len(h.tags),
            "needs_review_tags": sum(1 for t in h.tags if t["review_state"] == "needs_review"),
            "corrections": len(corrections), "pending": status["pending"],
            "processing": status["processing"] - stuck, "stuck": stuck, "failed_photos": status["failed"],
            "health_rows": len(h.health)}


def _write_audit(s: Session, org_id: int, now: datetime, days: int, ids: _Ids, h: _History,
                 summary: dict[str, int]) -> int:
    admin = ("admin@demo.aiconsole.dev", ids.users["admin"])
    developer = ("developer@demo.aiconsole.dev", ids.users["developer"])
    rows: list[dict[str, Any]] = []

    def add(at: datetime, who: tuple[str, int | None], action: str, entity: str, entity_id: Any,
            before: dict[str, Any] | None, after: dict[str, Any] | None, text_: str, reversible: bool = False
            ) -> None:
        rows.append({"organization_id": org_id, "user_id": who[1], "actor": who[0], "action": action,
                     "entity_type": entity, "entity_id": None if entity_id is None else str(entity_id),
                     "before": None if before is None else redact(before),
                     "after": None if after is None else redact(after), "summary": text_,
                     "reversible": reversible, "created_at": at})

    setup = now - timedelta(days=days + 14)
    add(setup, (SEED_ACTOR, None), "organization.create", "organization", org_id, None,
        {"name": DEMO_ORG_NAME, "timezone": DEMO_TIMEZONE, "is_demo": True}, f"Created organization {DEMO_ORG_NAME}")
    for k, (email, _, role) in enumerate(DEMO_LOGINS):
        add(setup + timedelta(minutes=5 + k), admin, "user.create", "user", ids.users[role], None,
            {"email": email, "role": role}, f"Added {email} as {role}")
    for name, spec in PROMPTS.items():
        for number, (ago, message, _, _) in enumerate(spec["versions"], start=1):
            add(now - timedelta(days=ago), developer, "prompt.version", "prompt", ids.prompts[name], None,
                {"prompt": name, "version": number, "message": message}, f"{name} v{number}: {message}")
        for ago, label, number in spec["labels"]:
            who = admin if label == "production" else developer
            add(now - timedelta(days=ago, minutes=-10), who, "prompt.label", "prompt", ids.prompts[name], None,
                {"prompt": name, "label": label, "version": number}, f"Moved {label} of {name} to v{number}", True)
    for key, title, _, _, _, start, end in EXPERIMENTS:
        add(now - timedelta(days=start), developer, "experiment.start", "experiment", ids.experiments[key],
            {"status": "draft"}, {"status": "running"}, f"Started experiment '{title}'")
        if end is not None:
            add(now - timedelta(days=end), developer, "experiment.stop", "experiment", ids.experiments[key],
                {"status": "running"}, {"status": "completed"}, f"Completed experiment '{title}'")
    add(now - timedelta(days=12), admin, "pipeline.configure", "pipeline_config", org_id,
        {"daily_budget_micros": usd_to_micros(20)}, {"daily_budget_micros": usd_to_micros(25)},
        "Raised the daily budget from $20.00 to $25.00", True)
    for day, (first, count) in sorted(h.retries_by_day.items()):
        add(first - timedelta(minutes=2), admin, "queue.retry_failed", "photos", None, {"failed": count},
            {"pending": count}, f"Requeued {count} failed photo(s) ({day.isoformat()})")
    add(now, (SEED_ACTOR, None), "demo.seed", "organization", org_id, None,
        {"days": days, **summary}, f"Seeded {summary['results']:,} demo results over {days} day(s)")
    _bulk(s, AuditLog, rows)
    return len(rows)
