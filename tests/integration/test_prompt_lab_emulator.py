"""Prompt lab with the real google-genai and google-cloud-vision clients against the provider emulator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.lab import prompt_lab
from aiconsole.lab.prompt_lab import PhotoChoice
from aiconsole.platform import secrets_box
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
)
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.base import make_tags
from aiconsole.providers.emulated_model import gemini_labels, vision_labels
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.pricing import gemini_cost_micros, gemini_image_tokens
from aiconsole.providers.samples import demo_photo, sample_photo

pytest_plugins = ["emulator_fixture"]

PRODUCTION_TEXT = "Return up to {max_tags} labels for this photo as JSON."
DRAFT = "Label this {{ width }}x{{ height }} photo for {audience}; at most {max_tags} labels, JSON only."
SAMPLE = "rocket"


@dataclass
class Org:
    id: int
    production_id: int

    @property
    def developer(self) -> Actor:
        return Actor(user_id=None, email="dev@example.com", role="developer", organization_id=self.id)


@pytest.fixture
def org(settings: Settings, emulator: EmulatorServer) -> Org:
    """Production: gemini-2.5-flash with prompt v1; gemini and google-vision pointed at the emulator; 1,000
    Vision units already used this month (the free tier is spent)."""
    org_id = users.create_organization(name="Emulated", settings=settings).id
    with service_session() as s:
        prompt = Prompt(organization_id=org_id, name="tagger", description="")
        s.add(prompt)
        s.flush()
        v1 = PromptVersion(organization_id=org_id, prompt_id=prompt.id, version=1, content=PRODUCTION_TEXT,
                           variables=["max_tags"])
        s.add(v1)
        s.flush()
        s.add(PromptLabel(organization_id=org_id, prompt_id=prompt.id, label="production", version_id=v1.id))
        s.add(PipelineConfig(organization_id=org_id, active_provider="gemini", active_model="gemini-2.5-flash",
                             active_prompt_id=prompt.id, accept_threshold=0.8, reject_threshold=0.5))
        for provider in ("gemini", "google-vision"):
            s.add(ProviderConfig(organization_id=org_id, provider=provider, endpoint=emulator.url,
                                 timeout_seconds=5.0, rate_limit_per_minute=600))
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        s.add(ProcessingRollupHourly(organization_id=org_id, hour=hour, ai_provider="google-vision", units=1000))
        return Org(org_id, v1.id)


def _expected_tags(prompt: str | None = None) -> list[tuple[str, float]]:
    """What the prompt lab shows for the sample: Gemini's answer to `prompt`, or Vision's (15 at most)."""
    data = sample_photo(SAMPLE, 0)
    answered = vision_labels(data)[:15] if prompt is None else gemini_labels(data, prompt)
    return [(t.label, t.confidence) for t in make_tags(answered, max_labels=15)]


def test_gemini_draft_is_rendered_into_the_request_with_tokens_and_cost(org: Org, emulator: EmulatorServer) -> None:
    run = prompt_lab.run_test(org.developer, photo=PhotoChoice.from_sample(SAMPLE), provider="gemini",
                              model="gemini-2.5-flash-lite", draft=DRAFT, variables={"audience": "a stock library"})
    assert run.ok, run.error
    d = demo_photo(SAMPLE, 0)
    expected_prompt = f"Label this {d.width}x{d.height} photo for a stock library; at most 15 labels, JSON only."
    assert run.rendered_prompt == expected_prompt and run.prompt_sent and run.prompt_source == "unsaved draft"
    sent = emulator.last_request
    assert sent is not None and sent["contents"][0]["parts"][1]["text"] == expected_prompt
    assert [p.split("/")[-1] for _, p, _ in emulator.request_log] == ["gemini-2.5-flash-lite:generateContent"]
    assert [(t.label, t.confidence) for t in run.tags] == [(lbl, pytest.approx(c))
                                                           for lbl, c in _expected_tags(expected_prompt)]
    assert {t.verdict for t in run.tags} <= {"accepted", "needs_review", "rejected"}
    for t in run.tags:
        assert t.verdict == ("accepted" if t.confidence >= 0.8 else "rejected" if t.confidence < 0.5
                             else "needs_review")
    # The emulator bills 4 characters per token, and the image by Gemini's 768-px tiles.
    assert run.input_tokens == gemini_image_tokens(d.width, d.height) + math.ceil(len(expected_prompt) / 4)
    assert run.output_tokens > 0 and run.units == 1
    assert run.cost_micros == gemini_cost_micros("gemini-2.5-flash-lite", input_tokens=run.input_tokens,
                                                 output_tokens=run.output_tokens) > 0
    assert run.cost_text.startswith("$0.000") and 0 < run.latency_ms <= run.total_ms
    assert run.raw_response["usage_metadata"]["prompt_token_count"] == run.input_tokens
    assert run.notes == ()


def test_vision_units_cost_after_the_free_tier(org: Org, emulator: EmulatorServer) -> None:
    run = prompt_lab.run_test(org.developer, photo=PhotoChoice.from_sample(SAMPLE), provider="google-vision",
                              draft="Not sent to Vision")
    assert run.ok, run.error
    assert (run.model, run.units, run.input_tokens) == ("builtin/stable", 1, 0)
    assert run.cost_micros == 1500 and run.cost_text == "$0.0015"  # unit 1,001 of the month: $1.50 per 1,000
    assert not run.prompt_sent and emulator.request_log[-1][1] == "/v1/images:annotate"
    assert [t.label for t in run.tags] == [lbl for lbl, _ in _expected_tags()]


def test_compare_with_production_calls_both_configs(org: Org, emulator: EmulatorServer) -> None:
    cmp = prompt_lab.compare_with_production(org.developer, photo=PhotoChoice.from_sample(SAMPLE),
                                             provider="google-vision", model="builtin/latest")
    assert cmp.test.ok and cmp.production.ok
    assert (cmp.production.provider, cmp.production.model) == ("gemini", "gemini-2.5-flash")
    assert cmp.production.prompt_source == "production: tagger v1"
    assert cmp.production.prompt_version_id == org.production_id
    assert cmp.production.rendered_prompt == "Return up to 15 labels for this photo as JSON."
    paths = sorted(p for _, p, _ in emulator.request_log)
    assert paths[0] == "/v1/images:annotate" and paths[1].endswith("gemini-2.5-flash:generateContent")
    # Both see the same rocket, but Gemini words it as its prompt asks: the two answers differ.
    vision = {label for label, _ in _expected_tags()}
    gemini = {label for label, _ in _expected_tags("Return up to 15 labels for this photo as JSON.")}
    assert set(cmp.test.labels()) == vision and set(cmp.production.labels()) == gemini
    assert cmp.diff is not None and cmp.diff.common == tuple(sorted(vision & gemini)) and "rocket" in cmp.diff.common
    assert cmp.diff.jaccard == pytest.approx(len(vision & gemini) / len(vision | gemini))
    assert cmp.diff.jaccard < 1.0


def test_server_error_is_shown_exactly(org: Org, emulator: EmulatorServer) -> None:
    emulator.configure(error_rate_500=1.0)
    run = prompt_lab.run_test(org.developer, photo=PhotoChoice.from_sample(SAMPLE), provider="gemini",
                              draft="Label it.")
    assert run.error is not None and not run.tags
    assert (run.error.kind, run.error.retryable) == ("server_error", True)
    assert run.error.message == "gemini answered HTTP 500: Internal error encountered.."
    assert str(run.error).startswith("server_error: gemini answered HTTP 500")
    assert len(emulator.request_log) == 1  # a test is one call: no retries


def test_malformed_answer_is_shown_exactly(org: Org, emulator: EmulatorServer) -> None:
    emulator.configure(malformed_rate=1.0, malformed_mode="text")
    cmp = prompt_lab.compare_with_production(org.developer, photo=PhotoChoice.from_sample(SAMPLE),
                                             provider="local")
    assert cmp.test.ok and cmp.test.provider == "local"
    err = cmp.production.error
    assert err is not None and err.kind == "malformed"
    assert err.message.startswith("gemini sent an answer aiconsole could not use: the answer is not a JSON list")
    assert cmp.diff is None


def test_vision_server_error(org: Org, emulator: EmulatorServer) -> None:
    emulator.configure(error_rate_503=1.0)
    run = prompt_lab.run_test(org.developer, photo=PhotoChoice.from_sample(SAMPLE), provider="google-vision")
    assert run.error is not None and run.error.kind == "server_error" and "503" in run.error.message


def test_the_orgs_stored_key_is_used_and_never_shown(org: Org, emulator: EmulatorServer,
                                                     settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stored key goes only to an allowed endpoint: an admin allow-lists the local emulator.
    monkeypatch.setenv("AICONSOLE_PROVIDER_HOST_ALLOWLIST", "http://127.0.0.1")
    get_settings.cache_clear()
    key = "AIzaSyLabTestKey0123456789abcdefghijklm"
    emulator.configure(api_key=key)
    photo = PhotoChoice.from_sample(SAMPLE)
    refused = prompt_lab.run_test(org.developer, photo=photo, provider="gemini", draft="Label it.")
    assert refused.error is not None and refused.error.kind == "auth"  # no key stored yet: the emulator says 403
    with service_session() as s:
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.organization_id == org.id,
                                                   ProviderConfig.provider == "gemini"))
        assert pc is not None
        pc.encrypted_secret = secrets_box.encrypt(key, settings=settings)
    run = prompt_lab.run_test(org.developer, photo=photo, provider="gemini", draft="Label it.")
    assert run.ok, run.error
    assert key not in repr(run) and key[-8:] not in repr(run)
