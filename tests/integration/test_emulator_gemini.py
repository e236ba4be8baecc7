"""The gemini provider: the real google-genai client against the emulator over HTTP."""

from __future__ import annotations

import base64
import io
import math
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_HALF_UP, Decimal

import pytest
from PIL import Image

from aiconsole.platform.errors import ProviderError
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings, make_tags
from aiconsole.providers.emulated_model import Shape, gemini_labels
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.gemini import DEFAULT_PROMPT, GeminiProvider
from aiconsole.providers.samples import sample_photo

pytest_plugins = ["emulator_fixture"]

IMAGE_BYTES = sample_photo("astronaut", 5)
PROMPT = "Label this photo for a stock library. Return JSON."  # 50 characters = 13 tokens at 4 chars/token


def _input(data: bytes = IMAGE_BYTES) -> ImageInput:
    with Image.open(io.BytesIO(data)) as im:
        return ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)


def _provider(emulator: EmulatorServer, *, timeout_s: float = 5.0, api_key: str | None = None) -> GeminiProvider:
    return GeminiProvider(ProviderSettings(api_key=api_key, endpoint=emulator.url, timeout_s=timeout_s))


def _request(**kw: object) -> AnalysisRequest:
    return AnalysisRequest(**{"model": "gemini-2.5-flash", "prompt": PROMPT, **kw})  # type: ignore[arg-type]


def _error(provider: GeminiProvider, request: AnalysisRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.analyze(_input(), request or _request())
    return info.value


def _flash_micros(inp: int, out: int) -> int:
    # $0.30 per 1M input and $2.50 per 1M output tokens = 0.3 and 2.5 micro-dollars per token.
    return int((Decimal(inp) * Decimal("0.3") + Decimal(out) * Decimal("2.5")).quantize(Decimal(1), ROUND_HALF_UP))


def test_labels_tokens_cost_and_what_was_sent(emulator: EmulatorServer) -> None:
    image = _input()
    result = _provider(emulator).analyze(image, _request(max_labels=4))
    labels = gemini_labels(IMAGE_BYTES, PROMPT)  # the emulator's whole answer
    expected = [(t.label, t.confidence) for t in make_tags(labels, max_labels=4)]
    assert [(t.label, t.confidence) for t in result.tags] == [(lbl, pytest.approx(s)) for lbl, s in expected]
    assert result.provider == "gemini" and result.model == "gemini-2.5-flash" and result.units == 1
    tiles = math.ceil(image.width / 768) * math.ceil(image.height / 768)
    image_tokens = 258 if max(image.width, image.height) <= 384 else 258 * tiles
    assert result.input_tokens == image_tokens + 13
    answer_text = Shape().render(labels)
    assert result.output_tokens == math.ceil(len(answer_text) / 4)
    assert result.cost_micros == _flash_micros(result.input_tokens, result.output_tokens)
    assert [s["step"] for s in result.trace] == ["request", "parse", "cost"]
    assert result.trace[2]["usage_estimated"] is False
    assert result.raw_response["usage_metadata"]["prompt_token_count"] == result.input_tokens

    sent = emulator.last_request
    assert sent is not None
    parts = sent["contents"][0]["parts"]
    inline = parts[0]["inlineData"]
    assert base64.urlsafe_b64decode(inline["data"]) == IMAGE_BYTES
    assert parts[1]["text"] == PROMPT
    config = sent["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["type"] == "ARRAY" and set(schema["items"]["required"]) == {"label", "confidence"}
    assert [(p.split("/")[1], status) for _, p, status in emulator.request_log] in ([("v1", 200)], [("v1beta", 200)])


def test_default_prompt_when_none_is_rendered(emulator: EmulatorServer) -> None:
    _provider(emulator).analyze(_input(), _request(prompt=None, max_labels=7))
    assert emulator.last_request["contents"][0]["parts"][1]["text"] == DEFAULT_PROMPT.format(max_labels=7)


def test_thinking_tokens_are_billed_as_output(emulator: EmulatorServer) -> None:
    plain = _provider(emulator).analyze(_input(), _request())
    emulator.configure(thinking_tokens=1000)
    thinking = _provider(emulator).analyze(_input(), _request())
    assert thinking.output_tokens == plain.output_tokens + 1000
    assert thinking.cost_micros - plain.cost_micros == 2500  # 1,000 x $2.50 / 1M


def test_price_override_and_other_model(emulator: EmulatorServer) -> None:
    result = _provider(emulator).analyze(_input(), _request(
        model="gemini-2.5-pro", price_overrides={"gemini-2.5-pro": {"input_per_m": "2", "output_per_m": "0"}}))
    assert result.cost_micros == 2 * result.input_tokens  # $2 per 1M input = 2 micro-dollars per token


def test_missing_usage_metadata_is_estimated_and_marked(emulator: EmulatorServer) -> None:
    emulator.configure(usage_metadata=False)
    image = _input()
    result = _provider(emulator).analyze(image, _request())
    assert result.trace[2]["usage_estimated"] is True
    tiles = math.ceil(image.width / 768) * math.ceil(image.height / 768)
    assert result.input_tokens == (258 if max(image.width, image.height) <= 384 else 258 * tiles) + 13
    assert result.cost_micros == _flash_micros(result.input_tokens, result.output_tokens) > 0


def test_unpriced_model_is_refused_before_any_call(emulator: EmulatorServer) -> None:
    err = _error(_provider(emulator), _request(model="gemini-9-ultra"))
    assert (err.kind, err.retryable) == ("bad_request", False) and "No price" in str(err)
    assert emulator.request_log == []


def test_unknown_model_at_the_api_is_a_bad_request(emulator: EmulatorServer) -> None:
    err = _error(_provider(emulator), _request(model="imagen-x", price_overrides={
        "imagen-x": {"input_per_m": "1", "output_per_m": "1"}}))
    assert (err.kind, err.retryable) == ("bad_request", False) and "HTTP 404" in str(err)


@pytest.mark.parametrize(("knob", "kind"), [("error_rate_429", "rate_limited"), ("error_rate_500", "server_error"),
                                            ("error_rate_503", "server_error")])
def test_http_errors_are_classified_and_not_retried_by_the_client(emulator: EmulatorServer, knob: str,
                                                                 kind: str) -> None:
    emulator.configure(**{knob: 1.0})
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == (kind, True)
    assert len(emulator.request_log) == 1  # the SDK's retries stay off


def test_client_timeout(emulator: EmulatorServer) -> None:
    emulator.configure(timeout_rate=1.0, timeout_s=5)
    started = time.monotonic()
    err = _error(_provider(emulator, timeout_s=0.3))
    assert time.monotonic() - started < 3
    assert (err.kind, err.retryable) == ("timeout", True)


def test_server_side_deadline_is_a_timeout(emulator: EmulatorServer) -> None:
    emulator.configure(timeout_rate=1.0, timeout_s=0.05)
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == ("timeout", True) and "HTTP 504" in str(err)


def test_latency_within_timeout_succeeds(emulator: EmulatorServer) -> None:
    emulator.configure(latency_ms=(150, 150))
    result = _provider(emulator, timeout_s=3).analyze(_input(), _request())
    assert result.latency_ms >= 150


@pytest.mark.parametrize(("mode", "detail"), [("body", "not valid JSON"), ("text", "json_invalid"),
                                              ("schema", "missing")])
def test_malformed_answers(emulator: EmulatorServer, mode: str, detail: str) -> None:
    emulator.configure(malformed_rate=1.0, malformed_mode=mode)
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == ("malformed", True)
    assert detail in str(err)


def test_safety_block(emulator: EmulatorServer) -> None:
    emulator.configure(blocked_rate=1.0)
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == ("blocked", False) and "SAFETY" in str(err)


def test_api_keys(emulator: EmulatorServer) -> None:
    emulator.configure(api_key="good-key")
    assert _provider(emulator, api_key="good-key").analyze(_input(), _request()).tags
    bad = _error(_provider(emulator, api_key="wrong-key"))
    assert (bad.kind, bad.retryable) == ("auth", False) and "API key not valid" in str(bad)


def test_no_key_anywhere_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(var, raising=False)
    err = _error(GeminiProvider(ProviderSettings()))
    assert (err.kind, err.retryable) == ("auth", False) and "GEMINI_API_KEY" in str(err)


def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        err = _error(GeminiProvider(ProviderSettings(endpoint=f"http://127.0.0.1:{port}", timeout_s=2)))
    assert (err.kind, err.retryable) == ("connection", True)


def test_concurrent_calls_share_one_provider(emulator: EmulatorServer) -> None:
    emulator.configure(latency_ms=(20, 60))
    provider = _provider(emulator)
    images = [_input(sample_photo(name, v)) for name in ("coffee", "chelsea") for v in range(10)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: provider.analyze(i, _request()), images))
    assert [r.tags[0].label for r in results] == [make_tags(gemini_labels(i.data, PROMPT), max_labels=15)[0].label
                                                  for i in images]
    assert len(emulator.request_log) == 20 and {s for _, _, s in emulator.request_log} == {200}
