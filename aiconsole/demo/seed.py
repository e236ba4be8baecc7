"""The demo organization: "Demo Photos Inc." with a month of believable pipeline history.

`seed_demo` writes, in one transaction: the organization (is_demo), one user per role, prompts with
versions and production/staging labels, the pipeline config, provider configs (no secrets), two prompt
experiments, `days` of results across google-vision, gemini and local (busier weekdays and working
hours in the org's time zone, a bulk-import spike, one degraded Gemini episode, failures, retries,
re-queued failures, low-confidence tags, reviewer corrections), the hourly rollups (rebuilt in SQL from
those results), provider health every 5 minutes (derived from the same results), a live queue of real
stored sample photos, and the audit trail. Timestamps are relative to `now`, so the demo always looks
current. Everything random comes from `seed`: the same seed and `now` give the same data.

The history is generated in memory by aiconsole.demo_history on the calendar of aiconsole.demo_timeline
(traffic, prompt releases, provider health, the live queue); this module writes it, in bulk.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import JSON, Boolean, delete, func, insert, select, text
from sqlalchemy.orm import Session

from aiconsole.demo import batch_history, reviews, second_opinions
from aiconsole.demo.history import ACCEPT, GEMINI_MODEL, REJECT, History, generate_history, recent_providers
from aiconsole.demo.timeline import EXPERIMENTS, MAX_RETRIES, PROMPTS, queue_photos
from aiconsole.demo.timeline import PENDING_PHOTOS as PENDING_PHOTOS  # re-exported: tests size the queue by it
from aiconsole.pipeline.rollups import rebuild_rollups
from aiconsole.platform import formatting as fmt
from aiconsole.platform.audit import redact
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import (
    ROLES,
    AiDashboardMetric,
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Correction,
    CorrectionBatch,
    CorrectionBatchItem,
    DoubleReview,
    Experiment,
    GroundTruth,
    Organization,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
    QualitySetting,
    Review,
    ReviewClaim,
    ReviewDecision,
    User,
)
from aiconsole.platform.db.models import Photo as PhotoModel
from aiconsole.platform.db.types import UTCDateTime, utcnow
from aiconsole.platform.errors import ConflictError, ValidationFailed
from aiconsole.platform.money import format_usd, usd_to_micros
from aiconsole.platform.passwords import hash_password
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.pricing import LOCAL_MODEL
from aiconsole.providers.registry import DEFAULT_PROVIDER

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
MAX_DAYS = 90


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


def find_demo_organization(*, settings: Settings | None = None) -> int | None:
    """The demo organization's id, or None when it has not been seeded."""
    with service_session(settings=settings) as s:
        return s.scalar(select(Organization.id).where(Organization.name == DEMO_ORG_NAME))


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
    existing = find_demo_organization(settings=settings)
    if existing is not None and not force:
        raise ConflictError(f"The demo organization '{DEMO_ORG_NAME}' already exists (id {existing}).",
                            hint="Use it as it is, or run `aiconsole demo --force` to replace it "
                                 "(other organizations are not touched).")
    tz = ZoneInfo(DEMO_TIMEZONE)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    history = generate_history(rng, nrng, now, days, tz)
    review_rng = random.Random(seed + 1)  # its own stream: the rest of the demo stays as it was
    reviews.sample_reviews(review_rng, history, now)
    queue = queue_photos(settings, now, history.next_variant, rng)
    password_hash = hash_password(DEMO_PASSWORD)

    with service_session(settings=settings) as s:
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
        ids = _write_setup(s, org.id, now, days, password_hash, recent_providers(history, now))
        summary = _write_history(s, org.id, history, queue, ids, now, review_rng)
        second_opinions.add_second_opinions(s, organization_id=org.id, now=now, summary=summary, seed=seed)
        audit_n = _write_audit(s, org.id, now, days, ids, history, summary)
        rollup_rows = rebuild_rollups(s, organization_id=org.id)
        cost = int(s.scalar(select(func.coalesce(func.sum(AiProcessingResult.api_cost_micros), 0))
                            .where(AiProcessingResult.organization_id == org.id)) or 0)
        org_id = org.id
        if sqlite:
            s.execute(text(f"PRAGMA cache_size={int(cache_pages or -2000)}"))
    # After the commit: the real batch code runs on the written history, in its own transactions.
    batch_history.seed_batches(organization_id=org_id, now=now, tz=tz, settings=settings)
    second_opinions.count_disagreements(organization_id=org_id, settings=settings)
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


def _write_setup(s: Session, org_id: int, now: datetime, days: int, password_hash: str, recent: set[str]) -> _Ids:
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
        organization_id=org_id, active_provider=DEFAULT_PROVIDER, active_model=LOCAL_MODEL,
        active_prompt_id=prompt_ids["photo-tagger"], fallback_provider=None, accept_threshold=ACCEPT,
        reject_threshold=REJECT, label_overrides={}, max_cost_per_photo_micros=usd_to_micros("0.01"),
        daily_budget_micros=usd_to_micros(25), monthly_budget_micros=usd_to_micros(600),
        max_retries=MAX_RETRIES, worker_concurrency=8, paused=False, version=3, updated_by=users["admin"],
        updated_at=now - timedelta(days=12)))
    # Enabled: every provider the recent history used (the settings agree with the traffic on Live Status) and
    # the active one. No keys: the Google ones answer under `up --emulate`, else they say they need a key.
    for provider, rate, timeout, conc in (("google-vision", 1800, 15.0, 16), ("gemini", 500, 30.0, 8),
                                          ("local", 6000, 10.0, 2)):
        enabled = provider in recent or provider == DEFAULT_PROVIDER
        s.add(ProviderConfig(organization_id=org_id, provider=provider, enabled=enabled, encrypted_secret=None,
                             secret_last4=None, rate_limit_per_minute=rate, timeout_seconds=timeout,
                             max_concurrency=conc, price_overrides={}, version=1, updated_by=users["admin"],
                             updated_at=now - timedelta(days=days + 10)))
    s.flush()
    return _Ids(users, versions, prompt_ids, experiments)


def _write_history(s: Session, org_id: int, h: History, queue: list[dict[str, Any]], ids: _Ids,
                   now: datetime, review_rng: random.Random) -> dict[str, int]:
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

    tag_results = {id(t): t["_result"] for t in h.tags}
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
    review_rows, decision_rows, truth_rows = reviews.review_rows(
        review_rng, h, organization_id=org_id, photo_ids=photo_ids, tag_results=tag_results, users=ids.users,
        reserve=lambda n: _reserve_ids(s, "reviews", n))
    _bulk(s, Review, review_rows)
    _bulk(s, ReviewDecision, decision_rows)
    _bulk(s, GroundTruth, truth_rows)
    # After the first reviews are written: on SQLite a reservation reads the table's highest id.
    seconds, second_decisions, doubles = reviews.double_review_rows(
        review_rng, review_rows, decision_rows, organization_id=org_id, users=ids.users, now=now,
        reserve=lambda n: _reserve_ids(s, "reviews", n))
    _bulk(s, Review, seconds)
    _bulk(s, ReviewDecision, second_decisions)
    _bulk(s, DoubleReview, doubles)
    s.add(QualitySetting(organization_id=org_id, double_review_share=reviews.DOUBLE_SHARE, version=1,
                         updated_by=ids.users["admin"], updated_at=now - timedelta(days=20)))
    for row in h.health:
        row["organization_id"] = org_id
    _bulk(s, AiProviderHealth, h.health)

    status = Counter(p["status"] for p in photos)
    stuck = sum(1 for p in queue if p["status"] == "processing" and p["lease_expires_at"] <= now)
    return {"photos": len(photos), "results": len(h.results), "photo_tags": len(h.tags),
            "needs_review_tags": sum(1 for t in h.tags if t["review_state"] == "needs_review"),
            "corrections": len(corrections), "reviews": len(review_rows), "pending": status["pending"],
            "processing": status["processing"] - stuck, "stuck": stuck, "failed_photos": status["failed"],
            "health_rows": len(h.health)}


def _write_audit(s: Session, org_id: int, now: datetime, days: int, ids: _Ids, h: History,
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
        # The same shape prompts.move_label records, so the audit log's Revert works on the latest move of
        # each label (earlier moves were superseded and are recorded as not reversible).
        pid = ids.prompts[name]
        moves = sorted(spec["labels"], key=lambda m: -m[0])
        last = {label: i for i, (_, label, _) in enumerate(moves)}
        previous: dict[str, int] = {}
        for i, (ago, label, number) in enumerate(moves):
            who = admin if label == "production" else developer
            state = {"prompt_id": pid, "label": label, "version_id": ids.versions[(name, number)], "version": number}
            before = None if label not in previous else {
                **state, "version_id": ids.versions[(name, previous[label])], "version": previous[label]}
            add(now - timedelta(days=ago, minutes=-10), who, "prompt.label", "prompt_label", f"{pid}:{label}",
                before, state, f"Moved {label} of {name} to v{number}", last[label] == i)
            previous[label] = number
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
            {"pending": count}, f"Requeued {fmt.plural(count, 'failed photo')} ({day.isoformat()})")
    add(now, (SEED_ACTOR, None), "demo.seed", "organization", org_id, None,
        {"days": days, **summary}, f"Seeded {summary['results']:,} demo results over {fmt.plural(days, 'day')}")
    _bulk(s, AuditLog, rows)
    return len(rows)


# ---------------------------------------------------------------- writing rows in bulk


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
    for model in (CorrectionBatchItem, CorrectionBatch, DoubleReview, QualitySetting, GroundTruth, ReviewDecision,
                  Review, ReviewClaim, Correction, PhotoTag, AiProcessingResult,
                  ProcessingRollupHourly, AiProviderHealth,
                  AiDashboardMetric, AuditLog, PhotoModel, PromptLabel, PromptVersion, Experiment):
        session.execute(delete(model).where(model.organization_id == org_id))
    session.execute(delete(Organization).where(Organization.id == org_id))
