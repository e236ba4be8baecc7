"""The Gemini emulator follows what a prompt observably asks, through the real google-genai client.

The tags come from what is in the photo (the local object tagger); the prompt decides how many, in which
casing and language, in which JSON shape, and with which vocabulary and confidences.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from aiconsole.demo.timeline import PROMPTS
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.gemini import GeminiProvider
from aiconsole.providers.samples import sample_photo

pytest_plugins = ["emulator_fixture"]

CHELSEA = sample_photo("chelsea", 0)
COFFEE = sample_photo("coffee", 0)


def _demo_prompt(version: int) -> str:
    """The demo's photo-tagger prompt version as the worker renders it (15 tags, English)."""
    return PROMPTS["photo-tagger"]["versions"][version - 1][3].replace("{max_tags}", "15").replace(
        "{language}", "English")


def _tags(emulator: EmulatorServer, prompt: str, data: bytes = CHELSEA) -> list[tuple[str, float]]:
    with Image.open(io.BytesIO(data)) as im:
        image = ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)
    provider = GeminiProvider(ProviderSettings(endpoint=emulator.url, timeout_s=10))
    result = provider.analyze(image, AnalysisRequest(model="gemini-2.5-flash", prompt=prompt, max_labels=50))
    return [(t.label, t.confidence) for t in result.tags]


def _raw_answer(emulator: EmulatorServer, prompt: str, data: bytes = CHELSEA) -> Any:
    """The JSON the model wrote, asked without a response schema (as a caller of the plain SDK might)."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="emulator", http_options=types.HttpOptions(base_url=emulator.url))
    response = client.models.generate_content(
        model="gemini-2.5-flash", contents=[types.Part.from_bytes(data=data, mime_type="image/jpeg"), prompt],
        config=types.GenerateContentConfig(response_mime_type="application/json"))
    return json.loads(response.text or "")


def _labels(answer: Any) -> list[str]:
    items = answer["tags"] if isinstance(answer, dict) else answer
    return [item["label"] for item in items]


def test_two_prompt_versions_give_different_repeatable_tags(emulator: EmulatorServer) -> None:
    v3, v4 = _tags(emulator, _demo_prompt(3)), _tags(emulator, _demo_prompt(4))
    assert v3 != v4
    assert _tags(emulator, _demo_prompt(3)) == v3 and _tags(emulator, _demo_prompt(4)) == v4
    for answer in (v3, v4):  # both still see the cat
        assert "cat" in dict(answer)


def test_wording_changes_confidences_of_the_same_tag(emulator: EmulatorServer) -> None:
    prompts = ["List what you see in this photo.", "Tag the main subject of this photo.",
               "Name the objects in this picture for a search index."]
    cats = {dict(_tags(emulator, p)).get("cat") for p in prompts}
    assert None not in cats and len(cats) > 1


def test_objects_only_unless_the_prompt_asks_for_style(emulator: EmulatorServer) -> None:
    colours = {"red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "black", "white",
               "gray"}
    objects = dict(_tags(emulator, "List the main objects in this photo."))
    styled = dict(_tags(emulator, "List the objects, the scene and the colours of this photo."))
    assert not colours & set(objects) and colours & set(styled)
    assert not {"small image", "landscape orientation"} & set(styled)  # file facts are not style


@pytest.mark.parametrize(("prompt", "limit"), [
    ("Tag this photo, at most 3 tags.", 3), ("Give up to 2 labels for the photo.", 2),
    ("Return 4 tags for this photo.", 4), ("No more than 1 label, please.", 1),
])
def test_the_tag_limit_is_obeyed(emulator: EmulatorServer, prompt: str, limit: int) -> None:
    assert len(_tags(emulator, prompt)) == limit
    assert len(_labels(_raw_answer(emulator, prompt))) == limit


def test_without_a_limit_the_model_answers_a_handful(emulator: EmulatorServer) -> None:
    assert 3 <= len(_tags(emulator, "What is in this photo? Answer with JSON.")) <= 10


@pytest.mark.parametrize(("wording", "check"), [
    ("in lower-case", str.islower), ("in UPPER-CASE", str.isupper),
    ("in Title Case", lambda label: all(w[:1].isupper() for w in label.split())),
])
def test_casing(emulator: EmulatorServer, wording: str, check: Any) -> None:
    labels = _labels(_raw_answer(emulator, f"Tag this photo {wording}, at most 6 tags."))
    assert labels and all(check(label) for label in labels), labels


@pytest.mark.parametrize(("language", "cat", "english"), [
    ("German", "katze", "cat"), ("French", "chat", "cat"), ("Spanish", "gato", "cat")])
def test_language(emulator: EmulatorServer, language: str, cat: str, english: str) -> None:
    tags = dict(_tags(emulator, f"Tag this photo in {language}, at most 8 tags. Include the broad category."))
    assert cat in tags and english not in tags
    coffee = dict(_tags(emulator, f"Tag this photo in {language}.", COFFEE))
    assert {"kaffee", "café"} & set(coffee) or {"espresso", "expresso", "café expreso"} & set(coffee)


def test_the_json_shape_the_prompt_asks_for(emulator: EmulatorServer) -> None:
    wrapped = _raw_answer(emulator, 'Tag this photo. Answer only with JSON: {"tags": [{"label": str, '
                                    '"confidence": number}]}.')
    assert isinstance(wrapped, dict) and set(wrapped) == {"tags"}
    assert all(set(item) == {"label", "confidence"} for item in wrapped["tags"])
    renamed = _raw_answer(emulator, 'Tag this photo as [{"name": string, "score": number}].')
    assert isinstance(renamed, list) and renamed and all(set(item) == {"name", "score"} for item in renamed)
    assert isinstance(_raw_answer(emulator, "Tag this photo."), list)


def test_a_response_schema_wins_over_the_prompts_example(emulator: EmulatorServer) -> None:
    # The provider sends a schema (a list of {label, confidence}), as Gemini's structured output enforces.
    tags = _tags(emulator, 'Answer only with JSON: {"tags": [{"label": str, "confidence": number}]}.')
    assert tags and all(0 <= c <= 1 for _, c in tags)


def test_calibrated_prompts_keep_the_models_probabilities(emulator: EmulatorServer) -> None:
    plain = dict(_tags(emulator, "Tag this photo with short nouns, no duplicates.", COFFEE))
    calibrated = dict(_tags(emulator, "Tag this photo with short nouns, no duplicates. Calibrated confidence.",
                            COFFEE))
    shared = set(plain) & set(calibrated)
    assert shared
    for label in shared:
        assert calibrated[label] <= plain[label] + 0.03  # an uncalibrated model states more than it knows
