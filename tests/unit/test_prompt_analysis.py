"""Prompt analysis while editing: each warning (and its absence), output format, cost per 1,000 photos by hand,
and the token count through the real google-genai client against the emulator."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aiconsole.platform.errors import ProviderError
from aiconsole.prompts import analysis
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.gemini import GeminiProvider
from aiconsole.providers.pricing import gemini_image_tokens

GOOD = "Return up to {{ max_tags }} labels for the photo as a JSON list of {label, confidence}."


def codes(text: str, *, provider: str = "gemini", tokens: int = 20, production: int | None = None) -> set[str]:
    return {w.code for w in analysis.warnings_for(text, provider=provider, tokens=tokens,
                                                  production_tokens=production)}


def test_a_good_prompt_has_no_warnings() -> None:
    assert codes(GOOD, production=20) == set()


@pytest.mark.parametrize(("text", "provider", "tokens", "production", "code"), [
    ("Return up to 10 labels, one label per line.", "gemini", 20, None, "no_json"),
    ("Label the photo as a JSON list.", "gemini", 20, None, "no_tag_limit"),
    ("Return at most 5 tags and at least 10 tags as JSON.", "gemini", 20, None, "conflict_limits"),
    ("Return up to 5 tags as JSON, comma-separated.", "gemini", 20, None, "conflict_format"),
    (GOOD, "gemini", 41, 20, "longer_than_production"),
])
def test_each_warning_fires_with_a_reason(text: str, provider: str, tokens: int, production: int | None,
                                          code: str) -> None:
    found = {w.code: w for w in analysis.warnings_for(text, provider=provider, tokens=tokens,
                                                      production_tokens=production)}
    assert code in found and found[code].reason


def test_warnings_stay_quiet_when_not_earned() -> None:
    assert "no_json" not in codes("Return up to 10 labels, one per line.", provider="google-vision")
    assert "conflict_limits" not in codes("Return at most 10 tags and at least 5 tags as JSON.")
    assert "longer_than_production" not in codes(GOOD, tokens=39, production=20)


@pytest.mark.parametrize(("text", "fmt"), [(GOOD, "json"), ("Labels, comma-separated.", "comma-separated"),
                                           ("A bullet list of labels.", "list"), ("Describe it.", "unspecified")])
def test_output_format(text: str, fmt: str) -> None:
    assert analysis.output_format(text) == fmt


def test_cost_per_1000_photos_by_hand() -> None:
    # gemini-2.5-flash $0.30/M in, $2.50/M out; 1024x768 = 2 tiles x 258 = 516 image tokens.
    # 1,000 x (100 + 516) = 616,000 in -> $0.1848; 1,000 x 150 = 150,000 out -> $0.375; total $0.5598.
    assert analysis.cost_per_1000_micros(provider="gemini", model="gemini-2.5-flash", prompt_tokens=100) == 559_800
    assert analysis.cost_per_1000_micros(provider="google-vision", model="builtin/stable", prompt_tokens=100) is None


def test_estimate_is_labelled_without_a_counter() -> None:
    count = analysis.count_tokens("x" * 41, model="gemini-2.5-flash", counter=None)
    assert (count.tokens, count.label) == (11, "estimate")


def test_model_count_via_genai_against_the_emulator_agrees_with_generate(emulator: EmulatorServer) -> None:
    provider = GeminiProvider(ProviderSettings(endpoint=emulator.url))
    text = "Return up to 7 labels as JSON " * 9
    counted = analysis.count_tokens(text, model="gemini-2.5-flash", counter=provider)
    assert counted.source == "model" and counted.label == "model's count"
    assert counted.tokens == provider.count_tokens("gemini-2.5-flash", text) > 0
    image = _image()
    result = provider.analyze(image, AnalysisRequest(model="gemini-2.5-flash", prompt=text, max_labels=10))
    assert result.input_tokens == counted.tokens + gemini_image_tokens(image.width, image.height)


def test_a_failing_counter_falls_back_to_the_estimate(emulator: EmulatorServer) -> None:
    provider = GeminiProvider(ProviderSettings(endpoint=emulator.url))
    with pytest.raises(ProviderError):
        provider.count_tokens("not-a-gemini-model", "hello")
    count = analysis.count_tokens("hello", model="not-a-gemini-model", counter=provider)
    assert count.label == "estimate"


def _image() -> ImageInput:
    buf = io.BytesIO()
    Image.new("RGB", (1024, 768), (90, 140, 200)).save(buf, "JPEG")
    return ImageInput(buf.getvalue(), "image/jpeg", 1024, 768, "0" * 64)
