"""The google-vision provider: the real google-cloud-vision client against the emulator over HTTP."""

from __future__ import annotations

import base64
import io
import socket
import time

import pytest
from PIL import Image

from aiconsole.platform.errors import ProviderError
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings, make_tags
from aiconsole.providers.emulated_model import vision_labels
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.google_vision import GoogleVisionProvider
from aiconsole.providers.samples import sample_photo

pytest_plugins = ["emulator_fixture"]

IMAGE_BYTES = sample_photo("chelsea", 3)


def _input(data: bytes = IMAGE_BYTES) -> ImageInput:
    with Image.open(io.BytesIO(data)) as im:
        return ImageInput(data, "image/jpeg", im.width, im.height, "0" * 64)


def _provider(emulator: EmulatorServer, *, timeout_s: float = 5.0, api_key: str | None = None,
              objects: bool = False) -> GoogleVisionProvider:
    return GoogleVisionProvider(ProviderSettings(api_key=api_key, endpoint=emulator.url, timeout_s=timeout_s),
                                object_localization=objects)


def _error(provider: GoogleVisionProvider, request: AnalysisRequest | None = None,
           image: ImageInput | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        provider.analyze(image or _input(), request or AnalysisRequest(model="builtin/stable"))
    return info.value


def test_labels_units_cost_and_what_was_sent(emulator: EmulatorServer) -> None:
    result = _provider(emulator).analyze(_input(), AnalysisRequest(model="builtin/latest", max_labels=5,
                                                                   month_units_before=1500))
    answered = vision_labels(IMAGE_BYTES)[:5]  # what the emulator sends for maxResults 5
    expected = [(t.label, t.confidence) for t in make_tags(answered, max_labels=5)]
    assert [(t.label, t.confidence) for t in result.tags] == [(lbl, pytest.approx(s)) for lbl, s in expected]
    assert "cat" in dict(expected)  # chelsea
    assert result.provider == "google-vision" and result.model == "builtin/latest"
    assert result.units == 1 and result.cost_micros == 1500  # past the free tier: $1.50 per 1,000
    assert result.input_tokens == result.output_tokens == 0
    assert result.raw_response["labelAnnotations"][0]["description"] == answered[0][0].capitalize()
    assert [s["step"] for s in result.trace] == ["request", "parse", "cost"]
    assert result.latency_ms >= 0 and result.trace[0]["endpoint"] == emulator.url
    sent = emulator.last_request
    assert sent is not None
    feature = sent["requests"][0]["features"][0]
    assert feature == {"type": 4, "maxResults": 5, "model": "builtin/latest"}  # 4 = LABEL_DETECTION
    assert base64.b64decode(sent["requests"][0]["image"]["content"]) == IMAGE_BYTES
    assert [(p, s) for _, p, s in emulator.request_log] == [("/v1/images:annotate", 200)]


def test_free_tier_costs_nothing(emulator: EmulatorServer) -> None:
    result = _provider(emulator).analyze(_input(), AnalysisRequest(model="builtin/stable", month_units_before=10))
    assert result.cost_micros == 0 and result.units == 1


def test_object_localization_is_a_second_billed_feature(emulator: EmulatorServer) -> None:
    result = _provider(emulator, objects=True).analyze(
        _input(), AnalysisRequest(model="builtin/stable", month_units_before=4000,
                                  price_overrides={"OBJECT_LOCALIZATION": {"per_1000": "3.00"}}))
    assert result.units == 2
    assert result.cost_micros == 1500 + 3000  # label $1.50/1k + overridden objects $3.00/1k
    assert [f["type"] for f in emulator.last_request["requests"][0]["features"]] == [4, 19]
    assert result.raw_response["localizedObjectAnnotations"]


@pytest.mark.parametrize(("knob", "kind"), [("error_rate_429", "rate_limited"), ("error_rate_500", "server_error"),
                                            ("error_rate_503", "server_error")])
def test_http_errors_are_classified_and_not_retried_by_the_client(emulator: EmulatorServer, knob: str,
                                                                 kind: str) -> None:
    emulator.configure(**{knob: 1.0})
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == (kind, True)
    assert len(emulator.request_log) == 1  # retry=None: the worker's policy decides, not the client


def test_client_timeout(emulator: EmulatorServer) -> None:
    emulator.configure(timeout_rate=1.0, timeout_s=5)
    started = time.monotonic()
    err = _error(_provider(emulator, timeout_s=0.3))
    assert time.monotonic() - started < 3
    assert (err.kind, err.retryable) == ("timeout", True) and "0.3 s" in str(err)


def test_server_side_deadline_is_a_timeout(emulator: EmulatorServer) -> None:
    emulator.configure(timeout_rate=1.0, timeout_s=0.05)  # the emulator gives up first: HTTP 504
    err = _error(_provider(emulator, timeout_s=5))
    assert (err.kind, err.retryable) == ("timeout", True) and "HTTP 504" in str(err)


def test_request_timeout_tighter_than_settings_wins(emulator: EmulatorServer) -> None:
    emulator.configure(latency_ms=(1500, 1500))
    err = _error(_provider(emulator, timeout_s=30), AnalysisRequest(model="builtin/stable", timeout_s=0.3))
    assert err.kind == "timeout"


@pytest.mark.parametrize("mode", ["body", "text", "schema"])
def test_malformed_answers(emulator: EmulatorServer, mode: str) -> None:
    emulator.configure(malformed_rate=1.0, malformed_mode=mode)
    err = _error(_provider(emulator))
    assert (err.kind, err.retryable) == ("malformed", True)


def test_undecodable_image_is_a_bad_request(emulator: EmulatorServer) -> None:
    data = b"\x89PNG not really a png"  # what intake would refuse; the API refuses it too
    err = _error(_provider(emulator), image=ImageInput(data, "image/png", 10, 10, "0" * 64))
    assert (err.kind, err.retryable) == ("bad_request", False) and "Bad image data" in str(err)


def test_api_keys(emulator: EmulatorServer) -> None:
    emulator.configure(api_key="good-key")
    ok = _provider(emulator, api_key="good-key").analyze(_input(), AnalysisRequest(model="builtin/stable"))
    assert ok.tags
    bad = _error(_provider(emulator, api_key="wrong-key"))
    assert (bad.kind, bad.retryable) == ("auth", False) and "API key not valid" in str(bad)
    missing = _error(_provider(emulator))  # anonymous
    assert (missing.kind, missing.retryable) == ("auth", False) and "HTTP 403" in str(missing)


def test_invalid_service_account_json_is_an_auth_error(emulator: EmulatorServer) -> None:
    err = _error(_provider(emulator, api_key='{"type": "service_account"}'))
    assert (err.kind, err.retryable) == ("auth", False)


def test_nothing_listening_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        provider = GoogleVisionProvider(ProviderSettings(endpoint=f"http://127.0.0.1:{port}", timeout_s=2))
        err = _error(provider)
    assert (err.kind, err.retryable) == ("connection", True)
