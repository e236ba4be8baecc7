"""The organization's pipeline settings: active provider/model and fallback, switching with undo, and what
each choice would cost and how it has performed.

Every change locks the pipeline_config row, refuses a stale `expected_version` (ConflictError naming who
changed it), bumps the version and writes the audit log in the same transaction. `revert_audit` restores a
model switch or a rules change (or a revert of one) when the fields it changed still hold what it wrote
(pause/resume entries are aiconsole.queue_control's). Workers pick a change up when their context cache
reloads (a few seconds).

Projections and quality figures are aggregated in the database from the last N days of results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from aiconsole.control.provider_choices import choice_states
from aiconsole.control.rules_config import RULE_COLUMNS, RulesConfig, current_rules, rules_from_columns
from aiconsole.pipeline import config_row
from aiconsole.platform import audit, cache
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import AuditRow
from aiconsole.platform.db.engine import org_session
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    AiProcessingResult,
    AuditLog,
    Photo,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
)
from aiconsole.platform.db.sql import bucket_counts, percentile_from_histogram, user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.providers.pricing import (
    GEMINI_TOKENS_PER_TILE,
    VISION_PRICES,
    gemini_cost_micros,
    vision_cost_micros,
)
from aiconsole.providers.registry import DEFAULT_PROVIDER, PROVIDER_MODELS, capabilities, default_model, provider_names

MODEL_COLUMNS = ("active_provider", "active_model", "fallback_provider")
REVERTIBLE = frozenset(MODEL_COLUMNS + RULE_COLUMNS)  # pause/resume entries are queue_control's to revert
SWITCH_ACTION = "model.switch"
CACHE_PREFIX = "pipeline_choices"
CACHE_TTL_S = 60.0
MAX_DAYS = 90
# Used only when the org has no Gemini results to learn from: a short tagging prompt and a JSON list of tags.
ESTIMATED_PROMPT_TOKENS = 100
ESTIMATED_OUTPUT_TOKENS = 200


@dataclass(frozen=True)
class PipelineView:
    """What the Pipeline page shows about the org's live settings."""

    organization_id: int
    active_provider: str
    active_model: str
    fallback_provider: str | None
    prompt_name: str | None
    production_version: int | None
    rules: RulesConfig
    paused: bool
    version: int  # 0 while the org has no pipeline_config row yet
    updated_at: datetime | None
    updated_by: str | None


@dataclass(frozen=True)
class SwitchReport:
    """The settings after a switch or an undo, with a message for the user."""

    message: str
    active_provider: str
    active_model: str
    fallback_provider: str | None
    version: int


@dataclass(frozen=True)
class CostProjection:
    """Projected cost of 1,000 photos on one provider/model, and what the projection rests on."""

    provider: str
    model: str
    cost_per_1000_micros: int
    basis: str
    short_basis: str = ""  # a few words of `basis`, for a table column


@dataclass(frozen=True)
class QualityRow:
    """How one provider/model did on the org's recent photos."""

    provider: str
    model: str
    photos: int
    avg_confidence: float | None
    needs_review_rate: float | None
    error_rate: float | None
    p95_latency_ms: float | None


def model_choices() -> list[tuple[str, str]]:
    """Every (provider, model) the pipeline can run, in display order."""
    return [(p, m) for p, models in PROVIDER_MODELS.items() for m in models]


def current_settings(actor: Actor) -> PipelineView:
    """The org's active provider/model, fallback, production prompt and rules."""
    actor.require("pipeline.view")
    org = actor.organization_id
    with org_session(org) as s:
        cfg = s.get(PipelineConfig, org)
        if cfg is None:
            return PipelineView(org, DEFAULT_PROVIDER, default_model(DEFAULT_PROVIDER), None, None, None,
                                RulesConfig(), False, 0, None, None)
        prompt = version = None
        if cfg.active_prompt_id is not None:
            prompt = s.scalar(select(Prompt.name).where(Prompt.id == cfg.active_prompt_id,
                                                        Prompt.organization_id == org))
            version = s.scalar(
                select(PromptVersion.version).join(PromptLabel, PromptLabel.version_id == PromptVersion.id)
                .where(PromptLabel.prompt_id == cfg.active_prompt_id, PromptLabel.label == "production",
                       PromptLabel.organization_id == org))
        return PipelineView(org, cfg.active_provider, cfg.active_model, cfg.fallback_provider, prompt, version,
                            current_rules(cfg), cfg.paused, cfg.version, cfg.updated_at, user_email(s, cfg.updated_by))


def _check_choice(s: Session, organization_id: int, provider: str, model: str, fallback: str | None) -> None:
    if provider not in PROVIDER_MODELS:
        raise ValidationFailed(f"There is no provider '{provider}'.",
                               hint=f"Choose one of {', '.join(PROVIDER_MODELS)}.")
    if model not in PROVIDER_MODELS[provider]:
        raise ValidationFailed(f"'{model}' is not a model of {provider}.",
                               hint=f"{provider} offers: {', '.join(PROVIDER_MODELS[provider])}.")
    if fallback is not None and fallback not in PROVIDER_MODELS:
        raise ValidationFailed(f"There is no provider '{fallback}' to fall back to.",
                               hint=f"Choose one of {', '.join(PROVIDER_MODELS)}, or no fallback.")
    if fallback == provider:
        raise ValidationFailed(f"The fallback provider is the active provider ({provider}).",
                               hint="A fallback serves when the active provider is down, so it must be another one.")
    states = choice_states(s, organization_id)
    states[provider].refuse("active")
    if fallback is not None:
        states[fallback].refuse("fallback")


def switch_model(actor: Actor, *, provider: str, model: str, fallback_provider: str | None,
                 expected_version: int) -> SwitchReport:
    """Make `provider`/`model` active with `fallback_provider` (pipeline.configure); audited and undoable."""
    actor.require("pipeline.configure")
    fallback_provider = fallback_provider or None
    with org_session(actor.organization_id) as s:
        cfg = config_row.lock_at_version(s, actor.organization_id, expected_version=expected_version)
        _check_choice(s, actor.organization_id, provider, model, fallback_provider)
        before = {c: getattr(cfg, c) for c in MODEL_COLUMNS}
        after = {"active_provider": provider, "active_model": model, "fallback_provider": fallback_provider}
        if before == after:
            raise ValidationFailed(f"{provider} / {model} with fallback {fallback_provider or 'none'} is already "
                                   "active.",
                                   hint="Pick another model or fallback to switch.")
        for key, value in after.items():
            setattr(cfg, key, value)
        config_row.stamp(cfg, by=actor.user_id, now=utcnow())
        summary = (f"Switched model {before['active_provider']}/{before['active_model']} -> {provider}/{model}, "
                   f"fallback {before['fallback_provider'] or 'none'} -> {fallback_provider or 'none'}")
        audit.record(s, actor=actor, action=SWITCH_ACTION, entity_type="pipeline_config",
                     entity_id=str(actor.organization_id), before=before, after=after, summary=summary,
                     reversible=True)
        return SwitchReport(summary + ".", provider, model, fallback_provider, cfg.version)


def revert_audit(session: Session, *, actor: Actor, entry: AuditRow) -> int:
    """Restore entry.before in the caller's transaction; return the id of the new audit entry it recorded."""
    actor.require("pipeline.configure")
    if entry.organization_id != actor.organization_id or entry.entity_type != "pipeline_config":
        raise NotFound(f"Audit entry #{entry.id} is not a pipeline setting of this organization.")
    before, after = entry.before or {}, entry.after or {}
    if not after or set(after) - REVERTIBLE or set(before) != set(after):
        raise ValidationFailed(f"Audit entry #{entry.id} ({entry.action}) can't be reverted automatically.",
                               hint="Change the settings by hand on the Pipeline page.")
    cfg = config_row.lock(session, actor.organization_id)
    if cfg is None or any(getattr(cfg, k) != v for k, v in after.items()):
        raise ConflictError(f"The settings entry #{entry.id} changed have been changed again since; nothing was "
                            "reverted.",
                            hint="Revert the later change first.")
    if set(before) & set(MODEL_COLUMNS):
        merged = {c: before.get(c, getattr(cfg, c)) for c in MODEL_COLUMNS}
        _check_choice(session, actor.organization_id, merged["active_provider"], merged["active_model"],
                      merged["fallback_provider"])
    if set(before) & set(RULE_COLUMNS):
        rules_from_columns({c: before.get(c, getattr(cfg, c)) for c in RULE_COLUMNS})
    for key, value in before.items():
        setattr(cfg, key, value)
    config_row.stamp(cfg, by=actor.user_id, now=utcnow())
    return audit.record(session, actor=actor, action="revert", entity_type="pipeline_config",
                        entity_id=str(actor.organization_id), before=dict(after), after=dict(before),
                        summary=f"Reverted #{entry.id}: {entry.summary}", reversible=True)


def undo_last_switch(actor: Actor) -> SwitchReport:
    """Revert the newest model switch not yet reverted (pipeline.configure); the undo is audited too."""
    actor.require("pipeline.configure")
    with org_session(actor.organization_id) as s:
        entry = s.scalars(select(AuditLog).where(
            AuditLog.organization_id == actor.organization_id, AuditLog.entity_type == "pipeline_config",
            AuditLog.action == SWITCH_ACTION, AuditLog.reverted_by_id.is_(None))
            .order_by(AuditLog.id.desc()).limit(1)).first()
        if entry is None:
            raise NotFound("There is no model switch to undo.", hint="Every switch has been undone already.")
        entry.reverted_by_id = revert_audit(s, actor=actor, entry=audit.to_row(entry))
        cfg = s.get(PipelineConfig, actor.organization_id)
        assert cfg is not None  # revert_audit found it
        message = (f"Undid the switch of {entry.created_at:%Y-%m-%d %H:%M}: back to {cfg.active_provider}/"
                   f"{cfg.active_model}, fallback {cfg.fallback_provider or 'none'}.")
        return SwitchReport(message, cfg.active_provider, cfg.active_model, cfg.fallback_provider, cfg.version)


# --------------------------------------------------------------------------------- choices: cost, quality


def _since(days: int, now: datetime | None) -> datetime:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed(f"The window of {days} days is outside 1..{MAX_DAYS}.", hint="Pick fewer days.")
    return (now or utcnow()) - timedelta(days=days)


def _cached(actor: Actor, name: str, days: int, now: datetime | None, fn: Any) -> Any:
    if now is not None:  # a pinned clock (tests, reports) is never served from the cache
        return fn()
    return cache.cached((CACHE_PREFIX, actor.organization_id, name, days), CACHE_TTL_S, fn)


def _per_1000(total: int, photos: int) -> int:
    """total * 1000 / photos rounded half up, in integers."""
    return (total * 2000 + photos) // (2 * photos)


def _image_tokens_sql() -> Any:
    # pricing.gemini_image_tokens in SQL: 258 for a small image, else 258 per started 768x768 tile.
    tiles = ((Photo.width + 767) // 768) * ((Photo.height + 767) // 768)
    return case((and_(Photo.width <= 384, Photo.height <= 384), 1), else_=tiles) * GEMINI_TOKENS_PER_TILE


def _projections(actor: Actor, since: datetime, now: datetime) -> list[CostProjection]:
    org = actor.organization_id
    r = AiProcessingResult
    with org_session(org) as s:
        usage = {row.ai_provider: row for row in s.execute(
            select(r.ai_provider, func.count().label("n"), func.sum(r.input_tokens).label("inp"),
                   func.sum(r.output_tokens).label("out"), func.sum(r.units).label("units"))
            .where(r.organization_id == org, r.created_at >= since, r.status != "failed")
            .group_by(r.ai_provider))}
        photos, image_tokens = s.execute(
            select(func.count(), func.coalesce(func.sum(_image_tokens_sql()), 0))
            .where(Photo.organization_id == org, Photo.created_at >= since)).one()
        month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        month_units = int(s.scalar(select(func.coalesce(func.sum(ProcessingRollupHourly.units), 0)).where(
            ProcessingRollupHourly.organization_id == org,
            ProcessingRollupHourly.ai_provider.in_(provider_names(free_tier=True)),
            ProcessingRollupHourly.hour >= month_start)) or 0)
        overrides = {p: dict(o or {}) for p, o in s.execute(
            select(ProviderConfig.provider, ProviderConfig.price_overrides)
            .where(ProviderConfig.organization_id == org))}
    out: list[CostProjection] = []
    gem = usage.get("gemini")
    if gem is not None and gem.n:
        inp, outp = _per_1000(int(gem.inp or 0), gem.n), _per_1000(int(gem.out or 0), gem.n)
        gem_basis = f"average tokens of {fmt.plural(gem.n, 'Gemini photo')} in the window"
        gem_short = f"avg of {fmt.plural(gem.n, 'photo')}"
    else:
        inp = _per_1000(int(image_tokens), int(photos)) if photos else GEMINI_TOKENS_PER_TILE * 1000
        inp += ESTIMATED_PROMPT_TOKENS * 1000
        outp = ESTIMATED_OUTPUT_TOKENS * 1000
        gem_basis = (f"estimate: no Gemini results in the window; image tokens of {fmt.plural(photos, 'recent photo')}"
                     f", ~{ESTIMATED_PROMPT_TOKENS} prompt and ~{ESTIMATED_OUTPUT_TOKENS} output tokens")
        gem_short = "estimate (no Gemini results)"
    vis = usage.get("google-vision")
    units = _per_1000(int(vis.units or 0), vis.n) if vis is not None and vis.n else 1000
    if vis is not None and vis.n:
        vis_basis = f"average units of {fmt.plural(vis.n, 'Vision photo')} in the window"
        vis_short = f"avg of {fmt.plural(vis.n, 'photo')}"
    else:
        vis_basis, vis_short = "estimate: 1 unit (label detection) per photo", "estimate (1 unit/photo)"
    # Priced past the monthly free tier: it covers only the first units of a month, not a steady rate.
    free = VISION_PRICES["LABEL_DETECTION"].free_units_per_month
    vision_cost = vision_cost_micros(units, month_units_before=max(month_units, free),
                                     overrides=overrides.get("google-vision"))
    for provider, model in model_choices():
        billing = capabilities(provider).billing
        if billing == "tokens":
            cost = gemini_cost_micros(model, input_tokens=inp, output_tokens=outp, overrides=overrides.get(provider))
            out.append(CostProjection(provider, model, cost, gem_basis, gem_short))
        elif billing == "units":
            out.append(CostProjection(provider, model, vision_cost, vis_basis, vis_short))
        else:
            out.append(CostProjection(provider, model, 0, "runs on the worker: no API cost", "no API cost"))
    return out


def projected_cost_per_1000(actor: Actor, *, days: int = 7, now: datetime | None = None) -> list[CostProjection]:
    """Cost of 1,000 photos on each choice, from the price tables and the org's usage in the last `days` days."""
    actor.require("pipeline.view")
    since = _since(days, now)
    result: list[CostProjection] = _cached(actor, "cost", days, now,
                                           lambda: _projections(actor, since, now or utcnow()))
    return result


def _quality(actor: Actor, since: datetime) -> list[QualityRow]:
    org = actor.organization_id
    r = AiProcessingResult
    ok = r.status != "failed"
    latency = case((ok, r.provider_response_time_ms), else_=None)  # a failed call has no answer time
    with org_session(org) as s:
        rows = s.execute(
            select(r.ai_provider, r.model, func.count(), func.sum(case((r.status == "needs_review", 1), else_=0)),
                   func.sum(case((ok, 0), else_=1)), func.avg(r.avg_confidence),
                   *bucket_counts(latency, LATENCY_BUCKETS_MS))
            .where(r.organization_id == org, r.created_at >= since)
            .group_by(r.ai_provider, r.model).order_by(r.ai_provider, r.model)).all()
    out = []
    for provider, model, n, review, failed, conf, *buckets in rows:
        p95 = percentile_from_histogram([int(b) for b in buckets], LATENCY_BUCKETS_MS, 0.95)
        out.append(QualityRow(provider, model, int(n), None if conf is None else float(conf),
                              int(review) / n, int(failed) / n, None if p95 is None else p95.value))
    return out


def recent_quality(actor: Actor, *, days: int = 7, now: datetime | None = None) -> list[QualityRow]:
    """Photos, average confidence, needs-review and error rates and p95 latency per provider/model (last `days`)."""
    actor.require("pipeline.view")
    since = _since(days, now)
    result: list[QualityRow] = _cached(actor, "quality", days, now, lambda: _quality(actor, since))
    return result
