"""A running experiment: each photo's variant by hash, the variant's prompt/provider used and recorded."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from aiconsole.pipeline.experiments import choose_variant, parse_variants
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Experiment, PromptVersion, ProviderConfig
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    InProcessWorker,
    all_terminal,
    enqueue,
    make_org,
    wait_until,
)


def _setup(emulator: EmulatorServer, *, vision_enabled: bool) -> tuple[int, int, list[dict[str, object]]]:
    org = make_org(provider="gemini", endpoint=emulator.url)
    with service_session() as s:
        production = s.scalar(select(PromptVersion).where(PromptVersion.organization_id == org))
        assert production is not None
        v2 = PromptVersion(organization_id=org, prompt_id=production.prompt_id, version=2,
                           content="Treatment prompt: {max_tags} tags for a {audience}.",
                           variables=["max_tags", "audience"])
        s.add(v2)
        s.flush()
        s.add(ProviderConfig(organization_id=org, provider="google-vision", endpoint=emulator.url,
                             enabled=vision_enabled, rate_limit_per_minute=600_000))
        variants: list[dict[str, object]] = [
            {"name": "control", "weight": 1, "prompt_version_id": production.id},
            {"name": "treatment", "weight": 1, "prompt_version_id": v2.id, "variables": {"audience": "museum"}},
            {"name": "vision", "weight": 1, "provider": "google-vision"}]
        exp = Experiment(organization_id=org, name="three arms", status="running", variants=variants)
        s.add(exp)
        s.flush()
        return org, exp.id, variants


def test_variants_by_hash_with_their_prompt_and_provider(any_settings: Settings, emulator: EmulatorServer) -> None:
    org, exp_id, raw = _setup(emulator, vision_enabled=True)
    ids = enqueue(org, 60, settings=any_settings)
    with InProcessWorker(concurrency=4):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="60 photos processed")
    variants = parse_variants(raw)  # type: ignore[arg-type]
    with service_session() as s:
        rows = s.execute(select(AiProcessingResult.photo_id, AiProcessingResult.experiment_id,
                                AiProcessingResult.variant, AiProcessingResult.ai_provider,
                                AiProcessingResult.prompt_version_id, AiProcessingResult.trace)
                         .where(AiProcessingResult.organization_id == org)).all()
    assert len(rows) == len(ids)
    expected = {pid: choose_variant(exp_id, pid, variants)[0] for pid in ids}
    for r in rows:
        v = expected[r.photo_id]
        assert (r.experiment_id, r.variant) == (exp_id, v.name)
        if v.name == "vision":
            assert (r.ai_provider, r.prompt_version_id) == ("google-vision", None)
        else:
            assert r.ai_provider == "gemini" and r.prompt_version_id == v.prompt_version_id
        step = next(t for t in r.trace if t["step"] == "experiment")
        assert step["variant"] == v.name
    shares = Counter(r.variant for r in rows)
    assert set(shares) == {"control", "treatment", "vision"}
    # The treatment's prompt went out rendered with its variant's variables.
    with service_session() as s:
        treatment_version = s.scalar(select(PromptVersion.id).where(PromptVersion.organization_id == org,
                                                                    PromptVersion.version == 2))
    assert any(r.prompt_version_id == treatment_version for r in rows)


@pytest.mark.parametrize("vision_enabled", [False])
def test_a_variant_on_a_disabled_provider_leaves_its_photos_out_of_the_experiment(
        settings: Settings, emulator: EmulatorServer, vision_enabled: bool) -> None:
    org, exp_id, raw = _setup(emulator, vision_enabled=vision_enabled)
    ids = enqueue(org, 30, settings=settings)
    with InProcessWorker(concurrency=4):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="30 photos processed")
    variants = parse_variants(raw)  # type: ignore[arg-type]
    with service_session() as s:
        rows = s.execute(select(AiProcessingResult.photo_id, AiProcessingResult.experiment_id,
                                AiProcessingResult.variant, AiProcessingResult.ai_provider)
                         .where(AiProcessingResult.organization_id == org)).all()
    for r in rows:
        if choose_variant(exp_id, r.photo_id, variants)[0].name == "vision":
            assert (r.experiment_id, r.variant, r.ai_provider) == (None, None, "gemini")
        else:
            assert r.experiment_id == exp_id and r.ai_provider == "gemini"
    assert any(r.experiment_id is None for r in rows)
