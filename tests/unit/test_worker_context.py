"""Organization contexts: what the worker reads per organization."""

from __future__ import annotations

from datetime import UTC, datetime

from aiconsole.admin import users
from aiconsole.pipeline.context import ContextCache, load_org_context
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    Experiment,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
)
from aiconsole.platform.settings import Settings


def test_context_reads_config_providers_production_prompt_experiment_and_units(any_settings: Settings) -> None:
    org = users.create_organization(name="Ctx Org").id
    with service_session() as s:
        p = Prompt(organization_id=org, name="tagger")
        s.add(p)
        s.flush()
        v1 = PromptVersion(organization_id=org, prompt_id=p.id, version=1, content="v1 {max_tags}",
                           variables=["max_tags"])
        v2 = PromptVersion(organization_id=org, prompt_id=p.id, version=2, content="v2", variables=[])
        s.add_all([v1, v2])
        s.flush()
        s.add_all([PromptLabel(organization_id=org, prompt_id=p.id, label="production", version_id=v1.id),
                   PromptLabel(organization_id=org, prompt_id=p.id, label="staging", version_id=v2.id)])
        s.add(PipelineConfig(organization_id=org, active_provider="gemini", active_model="gemini-2.5-flash",
                             active_prompt_id=p.id, fallback_provider="local", max_retries=5,
                             max_cost_per_photo_micros=900, monthly_budget_micros=10_000_000))
        s.add(ProviderConfig(organization_id=org, provider="gemini", rate_limit_per_minute=120, timeout_seconds=7.5,
                             endpoint="http://127.0.0.1:1", enabled=True))
        s.add(ProviderConfig(organization_id=org, provider="google-vision", enabled=False))
        s.add(Experiment(organization_id=org, name="v2 test", status="running",
                         started_at=datetime(2025, 1, 1, tzinfo=UTC),
                         variants=[{"name": "control", "weight": 1, "prompt_version_id": v1.id},
                                   {"name": "treatment", "weight": 1, "prompt_version_id": v2.id}]))
        now = datetime.now(UTC)
        s.add(ProcessingRollupHourly(organization_id=org, hour=now.replace(minute=0, second=0, microsecond=0),
                                     ai_provider="google-vision", units=321))
        v1_id, v2_id = v1.id, v2.id
    with service_session() as s:
        ctx = load_org_context(s, organization_id=org)
    assert (ctx.active_provider, ctx.active_model, ctx.fallback_provider) == ("gemini", "gemini-2.5-flash", "local")
    assert (ctx.max_retries, ctx.max_cost_per_photo_micros, ctx.has_budget) == (5, 900, True)
    assert ctx.prompt is not None and ctx.prompt.version_id == v1_id and ctx.prompt.variables == ("max_tags",)
    assert set(ctx.prompt_versions) == {v1_id, v2_id}
    assert ctx.experiment is not None and [v.name for v in ctx.experiment.variants] == ["control", "treatment"]
    gemini = ctx.setup("gemini")
    assert (gemini.rate_limit_per_minute, gemini.timeout_s, gemini.endpoint) == (120, 7.5, "http://127.0.0.1:1")
    assert not ctx.setup("google-vision").enabled
    assert ctx.setup("local").enabled and ctx.setup("local").rate_limit_per_minute == 600  # no row: defaults
    assert ctx.take_vision_units(1) == 321 and ctx.take_vision_units(1) == 322


def test_context_cache_reloads_after_its_ttl(any_settings: Settings) -> None:
    org = users.create_organization(name="Cache Org").id
    cache = ContextCache(ttl_s=0.0)
    assert cache.ensure([org])[org].active_provider == "local"  # no pipeline_config row yet: defaults
    with service_session() as s:
        s.add(PipelineConfig(organization_id=org, active_provider="google-vision", active_model="builtin/stable"))
    assert cache.ensure([org])[org].active_provider == "google-vision"
    sticky = ContextCache(ttl_s=3600)
    first = sticky.ensure([org])[org]
    assert sticky.ensure([org])[org] is first


def test_a_stored_key_is_never_handed_to_an_endpoint_the_rules_refuse(settings: Settings) -> None:
    from aiconsole.platform import secrets_box
    from aiconsole.platform.errors import ProviderError

    org = users.create_organization(name="Leaky Org").id
    with service_session() as s:
        s.add(ProviderConfig(organization_id=org, provider="gemini", enabled=True, endpoint="https://evil.example",
                             encrypted_secret=secrets_box.encrypt("AIza" + "x" * 35, settings=settings)))
    with service_session() as s:
        gemini = load_org_context(s, organization_id=org, settings=settings).setup("gemini")
    assert gemini.api_key is None
    try:
        gemini.settings()
    except ProviderError as exc:
        assert "evil.example" in str(exc) and "not allowed" in str(exc)
    else:
        raise AssertionError("the refused endpoint was given the stored key")
    allowed = settings.model_copy(update={"provider_host_allowlist": "evil.example"})
    with service_session() as s:
        ok = load_org_context(s, organization_id=org, settings=allowed).setup("gemini")
    assert ok.settings().api_key == "AIza" + "x" * 35
