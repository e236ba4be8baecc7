"""The emulator itself, over plain HTTP: determinism, fault rates, latency, validation, shutdown."""

from __future__ import annotations

import base64
import http.client
import io
import itertools
import json
import math
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from PIL import Image

from aiconsole.platform.errors import ValidationFailed
from aiconsole.providers.emulated_model import gemini_labels, vision_labels
from aiconsole.providers.emulator import EmulatorServer, parse_latency_ms
from aiconsole.providers.samples import sample_photo

pytest_plugins = ["emulator_fixture"]


def _png(color: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, "PNG")
    return out.getvalue()


VISION_BODY = json.dumps({"requests": [{"image": {"content": base64.b64encode(_png()).decode()},
                                        "features": [{"type": "LABEL_DETECTION", "maxResults": 3}]}]})


def _post(conn: http.client.HTTPConnection, path: str, body: str | bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def _conn(server: EmulatorServer, timeout: float = 10) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)


def test_labels_follow_the_photos_content() -> None:
    coffee, chelsea = vision_labels(sample_photo("coffee", 0)), vision_labels(sample_photo("chelsea", 0))
    assert "espresso" in dict(coffee) and "cat" in dict(chelsea) and "cat" not in dict(coffee)
    # Variant 12 is look 0 again with another JPEG comment: other bytes, the same pixels, the same labels.
    assert sample_photo("coffee", 12) != sample_photo("coffee", 0)
    assert vision_labels(sample_photo("coffee", 12)) == coffee
    for pairs in (coffee, chelsea, vision_labels(_png())):
        assert len(pairs) >= 3 and len({lbl for lbl, _ in pairs}) == len(pairs)
        assert all(0 < s <= 1 for _, s in pairs)
        assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)


def test_vision_answer_shape(emulator: EmulatorServer) -> None:
    status, body = _post(_conn(emulator), "/v1/images:annotate", VISION_BODY)
    assert status == 200
    labels = json.loads(body)["responses"][0]["labelAnnotations"]
    assert [(x["description"].lower(), x["score"]) for x in labels] == [(lbl.lower(), s)
                                                                         for lbl, s in vision_labels(_png())[:3]]
    assert all(x["mid"].startswith("/m/0") for x in labels)


def test_fault_rates_match_the_knobs_and_the_seed_fixes_the_sequence(emulator_factory) -> None:
    knobs = {"error_rate_429": 0.1, "error_rate_500": 0.1, "error_rate_503": 0.1, "malformed_rate": 0.1,
             "malformed_mode": "schema", "seed": 7}
    runs = []
    for _ in range(2):
        server = emulator_factory(**knobs)
        conn = _conn(server)
        runs.append([(s, b) for s, b in (_post(conn, "/v1/images:annotate", VISION_BODY) for _ in range(1000))])
    assert runs[0] == runs[1]
    counts = Counter("empty" if b == b'{"responses": []}' else s for s, b in runs[0])
    sigma = math.sqrt(1000 * 0.1 * 0.9)  # ~9.5
    for key in (429, 500, 503, "empty"):
        assert abs(counts[key] - 100) < 4 * sigma, counts
    assert abs(counts[200] - 600) < 4 * math.sqrt(1000 * 0.6 * 0.4), counts
    log = server.request_log
    assert len(log) == 1000 and [s for _, _, s in log] == [s for s, _ in runs[1]]
    assert all(t1 <= t2 for (t1, _, _), (t2, _, _) in itertools.pairwise(log))


def test_latency_range(emulator: EmulatorServer) -> None:
    emulator.configure(latency_ms=(60, 90))
    conn = _conn(emulator)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        assert _post(conn, "/v1/images:annotate", VISION_BODY)[0] == 200
        times.append(time.perf_counter() - started)
    assert min(times) >= 0.06 and max(times) < 0.6


def test_knobs_are_validated(emulator: EmulatorServer) -> None:
    for bad in ({"error_rate_429": 1.5}, {"error_rate_500": 0.6, "timeout_rate": 0.6}, {"latency_ms": (10, 5)},
                {"malformed_mode": "garbled"}, {"timeout_s": -1}, {"thinking_tokens": -5}):
        with pytest.raises(ValidationFailed):
            emulator.configure(**bad)
    with pytest.raises(ValidationFailed):
        EmulatorServer(blocked_rate=2.0)
    assert emulator.knobs.error_rate_429 == 0.0  # a refused change leaves the knobs as they were


def test_bad_requests(emulator: EmulatorServer) -> None:
    conn = _conn(emulator)
    assert _post(conn, "/v1/nothing", "{}")[0] == 404
    assert _post(conn, "/v1/images:annotate", "{not json")[0] == 400
    status, body = _post(conn, "/v1beta/models/gemini-2.5-flash:generateContent", json.dumps({"contents": []}))
    assert status == 400 and json.loads(body)["error"]["status"] == "INVALID_ARGUMENT"
    conn.request("GET", "/v1/models")
    assert conn.getresponse().status == 404


def test_gemini_path_versions(emulator: EmulatorServer) -> None:
    body = json.dumps({"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64.urlsafe_b64encode(_png()).decode()}},
        {"text": "abcd" * 10}]}]})
    for version in ("v1", "v1beta"):
        status, raw = _post(_conn(emulator), f"/{version}/models/gemini-2.0-flash:generateContent", body)
        answer = json.loads(raw)
        assert status == 200
        assert answer["usageMetadata"]["promptTokenCount"] == 258 + 10  # one small image + 40 characters
        labels = json.loads(answer["candidates"][0]["content"]["parts"][0]["text"])
        assert [(x["label"], x["confidence"]) for x in labels] == gemini_labels(_png(), "abcd" * 10)


def test_stop_releases_held_requests_and_closes_the_port(emulator_factory) -> None:
    server = emulator_factory(timeout_rate=1.0, timeout_s=60)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(_post(_conn(server, timeout=30), "/v1/images:annotate", VISION_BODY)[0])
        except OSError as exc:
            results.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.stop()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    with pytest.raises(OSError):
        _post(_conn(server, timeout=2), "/v1/images:annotate", VISION_BODY)


def test_reset_log(emulator: EmulatorServer) -> None:
    _post(_conn(emulator), "/v1/images:annotate", VISION_BODY)
    assert len(emulator.request_log) == 1
    emulator.reset_log()
    assert emulator.request_log == []


def test_parse_latency_for_the_cli() -> None:
    assert parse_latency_ms("50,200") == (50.0, 200.0)
    assert parse_latency_ms("75") == (75.0, 75.0)
    for bad in ("200,50", "a,b", "1,2,3", "-5"):
        with pytest.raises(ValidationFailed):
            parse_latency_ms(bad)
