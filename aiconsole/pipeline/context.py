"""What a worker needs to know about an organization to process its photos, cached for a few seconds.

One `OrgContext` per organization: the pipeline config (provider, model, fallback, retries, cost limit,
budgets), its provider configs, the production version of the active prompt, the running experiment
(with the prompt versions its variants use) and this month's Vision units (for the free tier). The
worker reloads a context after `ttl_s`, so a change in the console reaches every worker within seconds
without a query per photo. Stored provider keys are decrypted here (aiconsole.secrets_box); a key that
cannot be decrypted (the secret key changed) makes that provider's calls fail with an auth error naming
the provider, never the worker. Prompts are rendered by `aiconsole.prompts.render`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aiconsole.pipeline.experiments import ExperimentPlan, running_experiment
from aiconsole.platform import secrets_box
from aiconsole.platform.db.engine import service_session
from aiconsole.platform.db.models import (
    DEFAULT_PARALLEL_CALLS,
    PipelineConfig,
    ProcessingRollupHourly,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
)
from aiconsole.platform.errors import ConfigError
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.prompts.render import PromptSpec
from aiconsole.providers.base import ProviderSettings, provider_error
from aiconsole.providers.emulation import EMULATOR_KEY, emulator_url, is_demo_org
from aiconsole.providers.endpoints import endpoint_refusal
from aiconsole.providers.registry import DEFAULT_PROVIDER, default_model, provider_names

PRODUCTION_LABEL = "production"
# Providers without a provider_configs row still work with these (local needs no key; the others use the
# environment's credentials, e.g. GEMINI_API_KEY or Application Default Credentials).
DEFAULT_RATE_PER_MINUTE = 600
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProviderSetup:
    """One provider's connection and limits for an organization."""

    provider: str
    enabled: bool = True
    rate_limit_per_minute: int = DEFAULT_RATE_PER_MINUTE
    timeout_s: float = DEFAULT_TIMEOUT_S
    endpoint: str | None = None
    price_overrides: Mapping[str, Any] = field(default_factory=dict)
    has_stored_key: bool = False
    # The decrypted stored key (never in a repr); None: the worker's environment credentials apply.
    api_key: str | None = field(default=None, repr=False)
    key_error: str | None = None
    endpoint_refused: str | None = None  # why the stored endpoint may not receive the key (nothing is sent)
    emulated: bool = False  # a demo organization's call goes to the local emulator (aiconsole.emulation)
    parallel_cap: int | None = None  # most of the org's parallel calls it gets at once (pipeline.parallel)

    def settings(self) -> ProviderSettings:
        """The provider's ProviderSettings with the stored key; an auth ProviderError if it cannot be decrypted."""
        if self.endpoint_refused is not None:
            raise provider_error("auth", f"{self.provider}: {self.endpoint_refused}",
                                 hint="Set an allowed endpoint on the Providers page (or clear it for the "
                                      "provider's own), then enter the key again.")
        if self.key_error is not None:
            raise provider_error("auth", f"{self.provider}: {self.key_error}",
                                 hint="Restore the secret key the worker had, or enter the provider's key again "
                                      "on the Providers page.")
        return ProviderSettings(api_key=self.api_key, endpoint=self.endpoint, timeout_s=self.timeout_s)


@dataclass
class OrgContext:
    """A snapshot of one organization's processing settings."""

    organization_id: int
    active_provider: str = DEFAULT_PROVIDER
    active_model: str = default_model(DEFAULT_PROVIDER)
    fallback_provider: str | None = None
    max_retries: int = 3
    parallel_calls: int = DEFAULT_PARALLEL_CALLS  # per worker, at most (aiconsole.pipeline.parallel)
    max_cost_per_photo_micros: int | None = None
    has_budget: bool = False
    providers: dict[str, ProviderSetup] = field(default_factory=dict)
    prompt: PromptSpec | None = None
    prompt_versions: dict[int, PromptSpec] = field(default_factory=dict)
    experiment: ExperimentPlan | None = None
    vision_month_units: int = 0
    loaded_at: float = 0.0
    _units_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def setup(self, provider: str) -> ProviderSetup:
        """The provider's setup, or the defaults when the org has no row for it."""
        return self.providers.get(provider) or ProviderSetup(provider)

    def take_vision_units(self, units: int) -> int:
        """Vision units used this month before this call, counting this worker's calls since the load."""
        with self._units_lock:
            before = self.vision_month_units
            self.vision_month_units += units
            return before


def _versions(session: Session, organization_id: int, ids: Iterable[int]) -> dict[int, PromptSpec]:
    wanted = {int(i) for i in ids}
    if not wanted:
        return {}
    rows = session.execute(
        select(PromptVersion.id, PromptVersion.content, PromptVersion.variables)
        .where(PromptVersion.organization_id == organization_id, PromptVersion.id.in_(wanted))
    ).all()
    return {int(r.id): PromptSpec(int(r.id), r.content, tuple(r.variables or ())) for r in rows}


def _stored_key(token: str | None, settings: Settings | None) -> tuple[str | None, str | None]:
    """(key, None), or (None, why) when the stored key cannot be decrypted: that provider's calls then fail."""
    if token is None:
        return None, None
    try:
        return secrets_box.decrypt(token, settings=settings), None
    except ConfigError as exc:
        return None, exc.message


def load_org_context(session: Session, *, organization_id: int, now: datetime | None = None,
                     settings: Settings | None = None) -> OrgContext:
    """Read one organization's processing settings (a handful of indexed queries), stored keys decrypted."""
    now = now or datetime.now(UTC)
    ctx = OrgContext(organization_id=organization_id, loaded_at=time.monotonic())
    cfg = session.get(PipelineConfig, organization_id)
    if cfg is not None:
        ctx.active_provider, ctx.active_model = cfg.active_provider, cfg.active_model
        ctx.fallback_provider = cfg.fallback_provider or None
        ctx.max_retries = max(1, int(cfg.max_retries))
        ctx.parallel_calls = max(1, int(cfg.worker_concurrency))
        ctx.max_cost_per_photo_micros = cfg.max_cost_per_photo_micros
        ctx.has_budget = cfg.daily_budget_micros is not None or cfg.monthly_budget_micros is not None
    url = emulator_url(is_demo=is_demo_org(session, organization_id=organization_id), settings=settings)
    for pc in session.scalars(select(ProviderConfig).where(ProviderConfig.organization_id == organization_id)):
        api_key, key_error = _stored_key(pc.encrypted_secret, settings)
        # A stored key goes only where the endpoint rules allow: an endpoint saved before they existed (or
        # allowed by a since-shortened list) never gets it; the provider fails with the reason instead.
        refusal = None if pc.encrypted_secret is None else endpoint_refusal(
            pc.provider, pc.endpoint or None, settings=settings or get_settings(), emulator=url)
        ctx.providers[pc.provider] = ProviderSetup(
            provider=pc.provider, enabled=pc.enabled, rate_limit_per_minute=max(1, pc.rate_limit_per_minute),
            timeout_s=float(pc.timeout_seconds), endpoint=pc.endpoint or None,
            price_overrides=dict(pc.price_overrides or {}), has_stored_key=pc.encrypted_secret is not None,
            api_key=None if refusal else api_key, key_error=key_error, endpoint_refused=refusal,
            parallel_cap=max(1, int(pc.max_concurrency)))
    if url is not None:
        for name in provider_names(emulatable=True):
            base = ctx.providers.get(name) or ProviderSetup(name)
            ctx.providers[name] = replace(base, endpoint=url, api_key=base.api_key or EMULATOR_KEY, emulated=True)
    production_id = None
    if cfg is not None and cfg.active_prompt_id is not None:
        production_id = session.scalar(select(PromptLabel.version_id).where(
            PromptLabel.prompt_id == cfg.active_prompt_id, PromptLabel.label == PRODUCTION_LABEL,
            PromptLabel.organization_id == organization_id))
    ctx.experiment = running_experiment(session, organization_id=organization_id)
    variant_ids = [v.prompt_version_id for v in (ctx.experiment.variants if ctx.experiment else ())
                   if v.prompt_version_id is not None]
    ctx.prompt_versions = _versions(session, organization_id, [*variant_ids,
                                                               *([production_id] if production_id else [])])
    ctx.prompt = ctx.prompt_versions.get(int(production_id)) if production_id else None
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ctx.vision_month_units = int(session.scalar(
        select(func.coalesce(func.sum(ProcessingRollupHourly.units), 0)).where(
            ProcessingRollupHourly.organization_id == organization_id,
            ProcessingRollupHourly.ai_provider.in_(provider_names(free_tier=True)),
            ProcessingRollupHourly.hour >= month_start)) or 0)
    return ctx


class ContextCache:
    """Organization contexts, reloaded after `ttl_s` seconds; safe to share between threads."""

    def __init__(self, *, ttl_s: float = 5.0, engine: Any = None) -> None:
        self.ttl_s = ttl_s
        self.engine = engine
        self._lock = threading.Lock()
        self._contexts: dict[int, OrgContext] = {}

    def ensure(self, organization_ids: Iterable[int]) -> dict[int, OrgContext]:
        """Fresh contexts for these organizations, loading the missing or stale ones in one session."""
        wanted = set(organization_ids)
        now = time.monotonic()
        with self._lock:
            stale = [o for o in wanted if o not in self._contexts or now - self._contexts[o].loaded_at > self.ttl_s]
        if stale:
            with service_session(engine=self.engine) as s:
                loaded = {o: load_org_context(s, organization_id=o) for o in stale}
            with self._lock:
                self._contexts.update(loaded)
        with self._lock:
            return {o: self._contexts[o] for o in wanted}

    def known(self) -> dict[int, OrgContext]:
        """Every context loaded so far (for health reports and probes)."""
        with self._lock:
            return dict(self._contexts)

    def forget(self, organization_id: int) -> None:
        """Drop one organization's context so the next `ensure` reloads it."""
        with self._lock:
            self._contexts.pop(organization_id, None)

