"""SQLAlchemy 2 typed models: every table of the console.

Ids are integers everywhere (bigint on PostgreSQL). Money is integer micro-dollars (`*_micros`,
1 USD = 1,000,000) so sums are exact on SQLite and PostgreSQL alike; convert with `aiconsole.money`.
Durations (`*_ms`), token and unit counts and every rollup counter are BIGINT: a queue wait passes 2^31 ms
after 24.8 days (migration 0007).
Every org-scoped table carries `organization_id`; on PostgreSQL row-level security enforces it
(see `aiconsole.db.rls`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from aiconsole.platform.db.types import BigIntId, JsonType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("platform_admin", "admin", "developer", "analyst", "reviewer", "viewer")
PHOTO_STATUSES = ("pending", "processing", "completed", "needs_review", "failed")
PROVIDERS = ("google-vision", "gemini", "local")
TAG_REVIEW_STATES = ("accepted", "needs_review", "rejected", "corrected")
# Why an organization is paused: by a person, or by the worker (a budget reached, a provider's circuit open,
# the only provider it could use disabled).
PAUSE_KINDS = ("manual", "daily_budget", "monthly_budget", "circuit_open", "provider_disabled")
# Parallel calls per worker: an organization's setting (pipeline_config.worker_concurrency) and the most any
# setting or provider cap (provider_configs.max_concurrency) may say; a cap at the most is no cap. The one owner
# of both numbers: the worker, the CLI, the rules form and the Providers page read them from here.
DEFAULT_PARALLEL_CALLS = 8
MAX_PARALLEL_CALLS = 64

# Upper bounds (ms) of the rollup histogram buckets; the last bucket is everything above.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
WAIT_BUCKETS_MS = (1000, 5000, 15000, 60000, 300000, 900000, 3600000, 14400000, 86400000)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _id() -> Mapped[int]:
    return mapped_column(BigIntId, primary_key=True, autoincrement=True)


def _org_fk(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=nullable, index=False
    )


def _hot_org() -> Mapped[Any]:
    # The organization of a row written for every recorded photo (results, tags), without a foreign key:
    # each check locked the same organizations row from every worker at once. The row still belongs to
    # its organization through photo_id (ON DELETE CASCADE); RLS's WITH CHECK guards console writes.
    return mapped_column(BigIntId, nullable=False)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = _id()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    slug: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    is_demo: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


class LoginSession(Base):
    """A server-side login session; the browser holds only the random token, we store its hash."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = _id()
    user_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Photo(Base):
    """A photo and its place in the processing queue."""

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint(_in("status", PHOTO_STATUSES), name="status"),
        UniqueConstraint("organization_id", "sha256"),
        # The claim query: pending photos of an org by priority, then age. Partial so it stays small.
        Index(
            "ix_photos_pending_claim",
            "organization_id",
            text("priority DESC"),
            "created_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_photos_processing_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'processing'"),
            postgresql_where=text("status = 'processing'"),
        ),
        Index("ix_photos_organization_id_status", "organization_id", "status"),
        # The workers' cross-organization claim order: a 100-photo claim from 100,000 pending photos takes
        # 51 ms without it, 2.9 ms with it (the org-first index only serves claims for given orgs).
        Index(
            "ix_photos_pending_priority",
            text("priority DESC"),
            "created_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # The review queue's oldest order (quality/queue_next.py).
        Index("ix_photos_needs_review_created", "organization_id", "created_at",
              sqlite_where=text("status = 'needs_review'"), postgresql_where=text("status = 'needs_review'")),
        # Oldest pending photo (Live Status backlog age): 9-15 ms -> 0.5 ms on 1M photos.
        Index(
            "ix_photos_pending_created",
            "organization_id",
            "created_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    storage_uri: Mapped[str] = mapped_column(Text, nullable=False)
    filename: Mapped[str] = mapped_column(String(512), nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    byte_size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False, default="upload")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class PromptVersion(Base):
    """An immutable version of a prompt."""

    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "version"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    prompt_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    variables: Mapped[list[str]] = mapped_column(JsonType, nullable=False, default=list)
    message: Mapped[str] = mapped_column(Text, nullable=False, default="")
    author_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class PromptLabel(Base):
    """A movable label (production, staging, custom) pointing at one version of a prompt."""

    __tablename__ = "prompt_labels"
    __table_args__ = (UniqueConstraint("prompt_id", "label"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    prompt_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False)
    label: Mapped[str] = mapped_column(String(64), nullable=False)
    version_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("prompt_versions.id", ondelete="CASCADE"), nullable=False
    )
    updated_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class PipelineConfig(Base):
    """The org's live pipeline settings; `version` guards against concurrent edits."""

    __tablename__ = "pipeline_config"
    __table_args__ = (
        CheckConstraint(_in("active_provider", PROVIDERS), name="active_provider"),
        CheckConstraint("reject_threshold <= accept_threshold", name="thresholds"),
        CheckConstraint(_in("pause_kind", PAUSE_KINDS), name="pause_kind"),
    )

    organization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    active_provider: Mapped[str] = mapped_column(String(32), nullable=False, default="local")
    active_model: Mapped[str] = mapped_column(String(128), nullable=False, default="local-analyzer-v1")
    active_prompt_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("prompts.id", ondelete="SET NULL"))
    fallback_provider: Mapped[str | None] = mapped_column(String(32))
    accept_threshold: Mapped[float] = mapped_column(Float, nullable=False, default=0.8)
    reject_threshold: Mapped[float] = mapped_column(Float, nullable=False, default=0.4)
    label_overrides: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    max_cost_per_photo_micros: Mapped[int | None] = mapped_column(BigInteger)
    daily_budget_micros: Mapped[int | None] = mapped_column(BigInteger)
    monthly_budget_micros: Mapped[int | None] = mapped_column(BigInteger)
    max_retries: Mapped[int] = mapped_column(Integer, nullable=False, default=3)
    worker_concurrency: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_PARALLEL_CALLS)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    # Last because migration 0005 appended it; None while not paused (one of PAUSE_KINDS while paused).
    pause_kind: Mapped[str | None] = mapped_column(String(32))


class ProviderConfig(Base):
    __tablename__ = "provider_configs"
    __table_args__ = (
        UniqueConstraint("organization_id", "provider"),
        CheckConstraint(_in("provider", PROVIDERS), name="provider"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    encrypted_secret: Mapped[str | None] = mapped_column(Text)
    secret_last4: Mapped[str | None] = mapped_column(String(4))
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, default=600)
    timeout_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=30.0)
    max_concurrency: Mapped[int] = mapped_column(Integer, nullable=False, default=MAX_PARALLEL_CALLS)
    endpoint: Mapped[str | None] = mapped_column(String(512))
    region: Mapped[str | None] = mapped_column(String(64))
    price_overrides: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Experiment(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        CheckConstraint(_in("status", ("draft", "running", "stopped", "completed")), name="status"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    hypothesis: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False, default=list)
    primary_metric: Mapped[str] = mapped_column(String(64), nullable=False, default="avg_confidence")
    created_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AiProcessingResult(Base):
    """One processing attempt's outcome for a photo: tags, cost, timings, trace."""

    __tablename__ = "ai_processing_results"
    __table_args__ = (
        # The guide's performance index, org first so every console query can use it.
        Index("ix_results_org_created_provider", "organization_id", "created_at", "ai_provider"),
        CheckConstraint(_in("status", ("completed", "needs_review", "failed")), name="status"),
    )

    id: Mapped[int] = _id()
    # No foreign key to organizations: see _hot_org() (migration 0004).
    organization_id: Mapped[int] = _hot_org()
    photo_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True
    )
    ai_provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    # Indexed: SET NULL foreign keys are scanned when their parent row is deleted.
    prompt_version_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("prompt_versions.id", ondelete="SET NULL"), index=True
    )
    experiment_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("experiments.id", ondelete="SET NULL"), index=True
    )
    variant: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False, default=list)
    tag_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    avg_confidence: Mapped[float | None] = mapped_column(Float)
    min_confidence: Mapped[float | None] = mapped_column(Float)
    api_cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    queue_wait_time_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    provider_response_time_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    total_processing_time_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    retry_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_kind: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    trace: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False, default=list)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class PhotoTag(Base):
    __tablename__ = "photo_tags"
    __table_args__ = (
        CheckConstraint(_in("source", ("ai", "human")), name="source"),
        CheckConstraint(_in("review_state", TAG_REVIEW_STATES), name="review_state"),
        Index("ix_photo_tags_org_review_state", "organization_id", "review_state"),
        # The review queue's walks (quality/queue_next.py): band tags by confidence.
        Index("ix_photo_tags_undecided_confidence", "organization_id", "confidence", "photo_id",
              sqlite_where=text("reviewed_at IS NULL AND source = 'ai' AND review_state <> 'needs_review'"),
              postgresql_where=text("reviewed_at IS NULL AND source = 'ai' AND review_state <> 'needs_review'")),
        Index("ix_photo_tags_needs_review_confidence", "organization_id", "confidence", "photo_id",
              sqlite_where=text("review_state = 'needs_review' AND reviewed_at IS NULL"),
              postgresql_where=text("review_state = 'needs_review' AND reviewed_at IS NULL")),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _hot_org()
    photo_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True
    )
    result_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("ai_processing_results.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str] = mapped_column(String(200), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    source: Mapped[str] = mapped_column(String(8), nullable=False, default="ai")
    review_state: Mapped[str] = mapped_column(String(16), nullable=False)
    reviewed_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


class QualityAiTag(Base):
    """An AI tag as the AI made it (label, confidence, when): its label is not renamed with the tag's. Written
    and deleted with the tag by triggers on photo_tags (migration 0017); read by quality/tag_rollup.py."""

    __tablename__ = "quality_ai_tags"
    __table_args__ = (
        # A window's partial UTC days, and a threshold off quality_tag_daily's grid read in its one bin.
        Index("ix_quality_ai_tags_org_created", "organization_id", "created_at"),
        Index("ix_quality_ai_tags_org_label_confidence", "organization_id", "ai_label", "confidence"),
    )

    # No foreign key: the triggers delete the row with its tag, after reading its label for the rollup.
    tag_id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=False)
    organization_id: Mapped[int] = _hot_org()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ai_label: Mapped[str] = mapped_column(String(200), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)


class QualityTagDaily(Base):
    """AI tags per organization, UTC day of creation, AI label and confidence bin (the highest k in 0..99 with
    confidence >= k/100), kept by triggers on photo_tags (migration 0017; read by quality/tag_rollup.py)."""

    __tablename__ = "quality_tag_daily"
    __table_args__ = (CheckConstraint("conf_bin >= 0 AND conf_bin < 100", name="conf_bin"),)

    organization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ai_label: Mapped[str] = mapped_column(String(200), primary_key=True)
    conf_bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


def _rollup_org() -> Mapped[int]:
    return mapped_column(BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True,
                         autoincrement=False)


class QualityDecisionDaily(Base):
    """Judged decisions (approve, rename, reject of an AI tag) per organization, UTC day, provider, model, AI
    label, random order, rule verdict accepted and k/100 confidence bin; kept by triggers on review_decisions
    (migration 0018; read by quality/decision_rollup.py). '' stands for an unknown provider, model or label."""

    __tablename__ = "quality_decision_daily"
    __table_args__ = (CheckConstraint("conf_bin >= 0 AND conf_bin < 100", name="conf_bin"),)

    organization_id: Mapped[int] = _rollup_org()
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ai_provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    label: Mapped[str] = mapped_column(String(200), primary_key=True)
    random_order: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    ai_accepted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    conf_bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    conf_sum: Mapped[float] = mapped_column(Float, nullable=False)
    approved: Mapped[int] = mapped_column(BigInteger, nullable=False)
    renamed: Mapped[int] = mapped_column(BigInteger, nullable=False)


class QualityDecisionHourly(Base):
    """Every decision per organization, UTC hour, action, random order, rule verdict accepted and judged (an
    AI tag's decision with a confidence); kept by triggers on review_decisions (migration 0018)."""

    __tablename__ = "quality_decision_hourly"

    organization_id: Mapped[int] = _rollup_org()
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    action: Mapped[str] = mapped_column(String(16), primary_key=True)
    random_order: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    ai_accepted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    judged: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


class QualityTagHourly(Base):
    """AI tags per organization, UTC hour of creation and AI label: all, reviewed, awaiting review; kept by
    triggers on photo_tags (migration 0018; read by quality/decision_rollup.py)."""

    __tablename__ = "quality_tag_hourly"

    organization_id: Mapped[int] = _rollup_org()
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    ai_label: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reviewed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    awaiting: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Correction(Base):
    """A reviewer's fix to a tag: the ground truth later validation runs score against."""

    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_org_created", "organization_id", "created_at"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    photo_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tag_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("photo_tags.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class ValidationRun(Base):
    __tablename__ = "validation_runs"

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    config: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    created_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AiProviderHealth(Base):
    """A provider health sample: per org from its traffic, or platform-wide (organization_id NULL) from probes."""

    __tablename__ = "ai_provider_health"
    __table_args__ = (
        Index("ix_ai_provider_health_provider_checked", "provider_name", "last_check"),
        Index("ix_ai_provider_health_org_checked", "organization_id", "last_check"),
        CheckConstraint(_in("status", ("healthy", "degraded", "down", "unknown")), name="status"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int | None] = _org_fk(nullable=True)
    provider_name: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    response_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    error_rate: Mapped[float | None] = mapped_column(Float)
    last_check: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class AiDashboardMetric(Base):
    """Point-in-time metric samples (queue depth and the like) for charts that need history."""

    __tablename__ = "ai_dashboard_metrics"
    __table_args__ = (Index("ix_ai_dashboard_metrics_lookup", "organization_id", "metric_type", "timestamp"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    metric_type: Mapped[str] = mapped_column(String(64), nullable=False)
    metric_value: Mapped[float] = mapped_column(Float, nullable=False)
    provider: Mapped[str | None] = mapped_column(String(32))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)


class ProcessingRollupHourly(Base):
    """Per org, hour and provider: counts, cost, confidence sums and latency/wait histograms.

    Kept up to date in the same transaction that records a result, so dashboards read a few
    hundred rows instead of millions.
    """

    __tablename__ = "processing_rollups_hourly"

    organization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    ai_provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    results_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    completed_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    needs_review_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    failed_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    retry_count_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    tag_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    confidence_sum: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    confidence_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    queue_wait_ms_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # latency_b{i}: provider response time <= LATENCY_BUCKETS_MS[i]; b9: above the last bound.
    latency_b0: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b1: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b2: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b3: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b4: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b5: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b6: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b7: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b8: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_b9: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # wait_b{i}: queue wait <= WAIT_BUCKETS_MS[i]; b9: above the last bound.
    wait_b0: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b1: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b2: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b3: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b4: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b5: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b6: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b7: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b8: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_b9: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Worker(Base):
    """A worker process and its heartbeat (platform-wide: workers serve every organization)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    processed_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    started_at: Mapped[datetime] = _created()
    last_heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, index=True)
    # Why the worker is 'unhealthy' (Redis or the database down); NULL while it works.
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Who changed what, when, with the before and after state."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_created", "organization_id", "created_at"),
        Index("ix_audit_log_org_entity", "organization_id", "entity_type", "entity_id"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int | None] = _org_fk(nullable=True)
    user_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    reversible: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reverted_by_id: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("audit_log.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


# --- Quality Control (aiconsole.quality): review claims, reviews, their per-tag decisions, ground truth ---

# The order a reviewer's queue hands photos out in; "random" is a uniform sample (unbiased precision).
# "second_review" (migration 0013): a blind second review of a photo routed to double review.
REVIEW_ORDERS = ("lowest_confidence", "oldest", "random", "disagreement", "second_review")
REVIEW_ACTIONS = ("approve", "reject", "rename", "add")
REJECT_REASONS = ("wrong", "too_generic", "duplicate", "offensive", "other")
GROUND_TRUTH_SOURCES = ("review", "import", "adjudication", "batch")  # batch: migration 0010


class ReviewClaim(Base):
    """A reviewer's lease on one photo of the review queue: one claim per photo, live until `expires_at`.

    `token` names this claim; a review submitted with it is recorded once (reviews.claim_token is unique).
    """

    __tablename__ = "review_claims"
    __table_args__ = (
        UniqueConstraint("photo_id"),
        CheckConstraint(_in("queue_order", REVIEW_ORDERS), name="queue_order"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    photo_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False)
    reviewer_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token: Mapped[str] = mapped_column(String(36), nullable=False, unique=True)
    queue_order: Mapped[str] = mapped_column(String(24), nullable=False)
    claimed_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Review(Base):
    """One submitted review of a photo: who, when, from which queue order; its decisions hang off it."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("claim_token"),
        CheckConstraint(_in("queue_order", REVIEW_ORDERS), name="queue_order"),
        Index("ix_reviews_org_submitted", "organization_id", "submitted_at"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    photo_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    claim_token: Mapped[str] = mapped_column(String(36), nullable=False)
    queue_order: Mapped[str] = mapped_column(String(24), nullable=False)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    submitted_at: Mapped[datetime] = _created()


class ReviewDecision(Base):
    """A reviewer's decision on one tag (approve, reject with a reason, rename) or a tag they added.

    The tag's label, confidence, rule verdict and the provider, model and prompt version that produced it
    are kept as they were when decided: calibration reads them without joining tags that may change.
    """

    __tablename__ = "review_decisions"
    __table_args__ = (
        CheckConstraint(_in("action", REVIEW_ACTIONS), name="action"),
        CheckConstraint(_in("reason", REJECT_REASONS), name="reason"),
        CheckConstraint("(action = 'reject') = (reason IS NOT NULL)", name="reject_has_reason"),
        Index("ix_review_decisions_org_created", "organization_id", "created_at"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    review_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False, index=True
    )
    photo_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tag_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("photo_tags.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    label_before: Mapped[str | None] = mapped_column(String(200))
    label_after: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    ai_verdict: Mapped[str | None] = mapped_column(String(16))
    ai_provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_version_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("prompt_versions.id", ondelete="SET NULL"), index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()
    # Made in a random-order review: set from the review by a trigger on insert (migration 0018), kept on the
    # row so the rollups can subtract a decision deleted with its review.
    random_order: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


class GroundTruth(Base):
    """A label a photo truly has: its labels after review (or an import, or an admin's adjudication)."""

    __tablename__ = "ground_truth"
    __table_args__ = (
        UniqueConstraint("photo_id", "label"),
        CheckConstraint(_in("source", GROUND_TRUTH_SOURCES), name="source"),
        Index("ix_ground_truth_org_label", "organization_id", "label"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    photo_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False)
    label: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    review_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("reviews.id", ondelete="SET NULL"), index=True
    )
    set_by: Mapped[int | None] = mapped_column(BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = _created()


# --- Batch corrections (aiconsole.quality.batches): a template run over a selection of tags, and each change ---

BATCH_TEMPLATES = ("rename", "remove", "add", "accept", "reject")
BATCH_STATUSES = ("running", "completed", "failed", "cancelled", "undoing", "undone", "interrupted")
# What one item changed: a tag by one of the templates, or a photo (its status, its ground truth).
BATCH_ITEM_ACTIONS = (*BATCH_TEMPLATES, "photo")
# What undoing an item did: put back its before, or kept the row because someone changed it since.
BATCH_UNDO_RESULTS = ("restored", "kept")


class CorrectionBatch(Base):
    """One run of a batch-correction template over a selection of tags: what, on which, how far it got."""

    __tablename__ = "correction_batches"
    __table_args__ = (
        CheckConstraint(_in("template", BATCH_TEMPLATES), name="template"),
        CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
        Index("ix_correction_batches_org_created", "organization_id", "created_at"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    template: Mapped[str] = mapped_column(String(16), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    selection: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    matched: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    changed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    restored: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    kept: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    # Stamped by every chunk while it runs; a running batch whose stamp went stale has lost its process.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CorrectionBatchItem(Base):
    """One change a batch made (a tag's or a photo's exact values before and after), or a row it could not
    change (`error`); `undo_result` records what undoing it did."""

    __tablename__ = "correction_batch_items"
    __table_args__ = (
        CheckConstraint(_in("action", BATCH_ITEM_ACTIONS), name="action"),
        CheckConstraint(_in("undo_result", BATCH_UNDO_RESULTS), name="undo_result"),
    )

    id: Mapped[int] = _id()
    # No foreign key to organizations (100,000 rows per large batch): see _hot_org(); through batch_id instead.
    organization_id: Mapped[int] = _hot_org()
    batch_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("correction_batches.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tag_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("photo_tags.id", ondelete="SET NULL"), index=True
    )
    photo_id: Mapped[int] = mapped_column(BigIntId, nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)
    undo_result: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()


# --- Golden sets (aiconsole.quality.golden_sets): named, versioned, frozen snapshots of reviewed photos ---


class GoldenSet(Base):
    """One frozen version of a named golden set: how its reviewed photos were chosen, and its counts.

    A new version of a name is a new snapshot; a version's items never change. `label_counts` (label ->
    photos) is counted once, at freeze time.
    """

    __tablename__ = "golden_sets"
    __table_args__ = (
        UniqueConstraint("organization_id", "name", "version"),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    selection: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    photo_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    label_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    label_counts: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    created_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()


class GoldenSetItem(Base):
    """A photo of a golden set with its ground-truth labels when the set was frozen.

    sha256 and filename are copied so the snapshot still names a photo deleted since (photo_id SET NULL).
    """

    __tablename__ = "golden_set_items"
    __table_args__ = (UniqueConstraint("golden_set_id", "photo_id"),)

    id: Mapped[int] = _id()
    # No foreign key to organizations (a set freezes up to 100,000 rows at once): through golden_set_id.
    organization_id: Mapped[int] = _hot_org()
    golden_set_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("golden_sets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    photo_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="SET NULL"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(512), nullable=False)
    labels: Mapped[list[str]] = mapped_column(JsonType, nullable=False, default=list)


class GoldenSetRun(Base):
    """A validation run registered on a golden set: until `released_at` the set is locked (not deletable).

    Deleting the run releases it (CASCADE). golden_sets.delete_golden_set locks the set's row before it looks
    for runs, and registering a run takes a share lock on it (FOR SHARE), so neither slips past the other.
    """

    __tablename__ = "golden_set_runs"
    __table_args__ = (UniqueConstraint("golden_set_id", "validation_run_id"),)

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    golden_set_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("golden_sets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    validation_run_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("validation_runs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    registered_at: Mapped[datetime] = _created()
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- Reviewer agreement (aiconsole.quality.double_review, second_review, agreement): migration 0013 ---

DEFAULT_DOUBLE_REVIEW_SHARE = 0.05
DOUBLE_REVIEW_STATUSES = ("waiting", "reviewed", "adjudicated")
# A photo disagrees when the Jaccard similarity of two sources' label sets falls below this (migration 0014).
DEFAULT_DISAGREEMENT_THRESHOLD = 0.5


class QualitySetting(Base):
    """An organization's quality settings, versioned: the share of reviewed photos sent to a second reviewer.

    No row means the defaults (version 0 to the code that checks versions)."""

    __tablename__ = "quality_settings"
    __table_args__ = (
        CheckConstraint("double_review_share >= 0 AND double_review_share <= 1", name="double_review_share"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint("disagreement_threshold >= 0 AND disagreement_threshold <= 1",
                        name="disagreement_threshold"),
    )

    organization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    double_review_share: Mapped[float] = mapped_column(Float, nullable=False, default=DEFAULT_DOUBLE_REVIEW_SHARE)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = _created()
    # Migration 0014 (added last, as the migration does): the disagreement order's "Jaccard below" value.
    disagreement_threshold: Mapped[float] = mapped_column(Float, nullable=False,
                                                          default=DEFAULT_DISAGREEMENT_THRESHOLD,
                                                          server_default=str(DEFAULT_DISAGREEMENT_THRESHOLD))


class DoubleReview(Base):
    """A photo routed to a second, blind reviewer after its first review, and its adjudication.

    waiting: no second review yet; reviewed: both decided; adjudicated: an admin's labels are its ground truth.
    """

    __tablename__ = "double_reviews"
    __table_args__ = (
        UniqueConstraint("photo_id"),
        CheckConstraint(_in("status", DOUBLE_REVIEW_STATUSES), name="status"),
        Index("ix_double_reviews_org_status", "organization_id", "status"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    photo_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), nullable=False)
    first_review_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False, index=True
    )
    second_review_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("reviews.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="waiting")
    created_at: Mapped[datetime] = _created()
    adjudicated_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    adjudicated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PhotoDisagreement(Base):
    """How far apart a photo's sources (provider, model, prompt version) are: the lowest Jaccard similarity of
    two sources' label sets and which two results those were (quality/disagreement.py keeps it, migration 0014).

    The result ids carry no foreign key: a result goes only with its photo, and this row goes with it too."""

    __tablename__ = "photo_disagreements"
    __table_args__ = (
        CheckConstraint("jaccard >= 0 AND jaccard <= 1", name="jaccard"),
        CheckConstraint("sources >= 2", name="sources"),
        # The disagreement order's walk: lowest Jaccard first, ties by photo id.
        Index("ix_photo_disagreements_org_jaccard", "organization_id", "jaccard", "photo_id"),
    )

    photo_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[int] = _org_fk()
    jaccard: Mapped[float] = mapped_column(Float, nullable=False)
    sources: Mapped[int] = mapped_column(Integer, nullable=False)
    result_a_id: Mapped[int] = mapped_column(BigIntId, nullable=False)
    result_b_id: Mapped[int] = mapped_column(BigIntId, nullable=False)
    computed_at: Mapped[datetime] = _created()


class DisagreementRefresh(Base):
    """How far an organization's disagreement facts are counted: every result stamped before
    (`through_created_at`, `through_result_id`) is in them (quality/disagreement.py, migration 0014)."""

    __tablename__ = "disagreement_refresh"

    organization_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    through_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    through_result_id: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    refreshed_at: Mapped[datetime] = _created()


# --- Batch tests of the Testing Lab (aiconsole.lab.batch_runs, batch_runner, batch_results): migration 0019 ---

LAB_RUN_SOURCES = ("sample", "golden", "filter", "shadow")
LAB_RUN_STATUSES = ("running", "completed", "cancelled", "interrupted", "failed")
LAB_ITEM_STATUSES = ("pending", "done", "failed")


class LabRun(Base):
    """One batch test: a prompt version or draft x provider/model over a set of photos; what it cost, how far."""

    __tablename__ = "lab_runs"
    __table_args__ = (
        CheckConstraint(_in("source", LAB_RUN_SOURCES), name="source"),
        CheckConstraint(_in("status", LAB_RUN_STATUSES), name="status"),
        Index("ix_lab_runs_org_created", "organization_id", "created_at"),
    )

    id: Mapped[int] = _id()
    organization_id: Mapped[int] = _org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    selection: Mapped[dict[str, Any]] = mapped_column(JsonType, nullable=False, default=dict)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    prompt_version_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("prompt_versions.id", ondelete="SET NULL"), index=True
    )
    draft: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    estimate_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_by: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class LabRunItem(Base):
    """One photo of a batch test: its tags with the current rules' verdicts beside production's labels."""

    __tablename__ = "lab_run_items"
    __table_args__ = (
        CheckConstraint(_in("status", LAB_ITEM_STATUSES), name="status"),
        UniqueConstraint("run_id", "photo_id"),
        # Lab spend in a window (the budget guard): items by organization and when their call finished.
        Index("ix_lab_run_items_org_finished", "organization_id", "finished_at"),
    )

    id: Mapped[int] = _id()
    # No foreign key to organizations (a run writes many rows): through run_id instead, as batch items do.
    organization_id: Mapped[int] = _hot_org()
    run_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("lab_runs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    photo_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("photos.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False, default=list)
    production_labels: Mapped[list[str]] = mapped_column(JsonType, nullable=False, default=list)
    tag_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    accepted_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    jaccard: Mapped[float | None] = mapped_column(Float)
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    latency_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# Tables whose rows belong to one organization; row-level security covers each of them.
ORG_SCOPED_TABLES: tuple[str, ...] = tuple(
    t.name for t in Base.metadata.sorted_tables if "organization_id" in t.c
)
