"""A local HTTP server speaking the Cloud Vision REST and Gemini generateContent wire formats.

Tests, benchmarks and the offline demo point the real google-cloud-vision and google-genai clients at it:

  Vision  POST /v1/images:annotate                        (ImageAnnotatorClient, transport="rest")
  Gemini  POST /v1/models/<m>:generateContent              (genai.Client, HttpOptions(base_url=...))
          POST /v1beta/models/<m>:generateContent
          POST /v1beta/models/<m>:countTokens                (text parts; the count generateContent reports)

Answers come from what is in the photo (emulated_model: the local object tagger's tags and descriptions,
cached per image content); Gemini's follow the prompt's observable asks (tag limit, casing, language, JSON
shape, wording), so the same photo and prompt always get the same labels and scores. Faults are drawn per
request from one seeded generator: HTTP 429/500/503 at set rates, timeouts (the server holds the request
for `timeout_s`, then answers 504), malformed answers, and for Gemini safety blocks. Every request is logged
as (monotonic arrival time, path, status) so callers can measure the rate the server actually saw.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import random
import re
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from aiconsole.platform.errors import ValidationFailed
from aiconsole.providers.emulated_model import answer_shape, gemini_labels, vision_labels
from aiconsole.providers.object_tagger import get_tagger
from aiconsole.providers.pricing import gemini_image_tokens

VISION_PATH = "/v1/images:annotate"
GEMINI_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")
COUNT_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):countTokens$")
MALFORMED_MODES = ("mixed", "body", "text", "schema")
# Vision Feature.Type numbers as the REST client sends them (it sends enums as integers).
FEATURE_TYPES = {4: "LABEL_DETECTION", 19: "OBJECT_LOCALIZATION"}

_ERROR_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_ERROR_MESSAGE = {429: "Resource has been exhausted (e.g. check quota).", 500: "Internal error encountered.",
                  503: "The service is currently unavailable.",
                  504: "Deadline expired before operation could complete."}


def parse_latency_ms(text: str) -> tuple[float, float]:
    """'50,200' -> (50.0, 200.0) (uniform min,max); '100' -> (100.0, 100.0). For the `emulate` CLI."""
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not 0 <= values[0] <= values[-1]:
        raise ValidationFailed(f"Latency '{text}' is not valid.",
                               hint="Give milliseconds as MIN,MAX (e.g. 50,200) or one fixed value.")
    return values[0], values[-1]


@dataclass(frozen=True)
class EmulatorKnobs:
    """Behaviour of the emulator; rates are per-request probabilities and must sum to at most 1.

    latency_ms is a uniform (min, max) delay before every answer. A timeout holds the request for
    timeout_s, then answers 504. malformed_mode: "body" (truncated JSON), "text" (Gemini prose instead of
    JSON), "schema" (Gemini JSON of the wrong shape; Vision an empty responses list) or "mixed". blocked
    (a Gemini safety block) does not apply to Vision, which answers normally. With api_key set, requests
    must carry it (x-goog-api-key header or ?key=): none -> 403, a wrong one -> 400 API_KEY_INVALID.
    """

    latency_ms: tuple[float, float] = (0.0, 0.0)
    error_rate_429: float = 0.0
    error_rate_500: float = 0.0
    error_rate_503: float = 0.0
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    malformed_rate: float = 0.0
    malformed_mode: str = "mixed"
    blocked_rate: float = 0.0
    api_key: str | None = None
    usage_metadata: bool = True
    thinking_tokens: int = 0

    def validated(self) -> EmulatorKnobs:
        """These knobs, or ValidationFailed naming the bad one."""
        lo, hi = (float(x) for x in self.latency_ms)
        if not 0 <= lo <= hi:
            raise ValidationFailed(f"Emulator latency range {self.latency_ms} is not valid.",
                                   hint="Give min,max milliseconds with 0 <= min <= max, e.g. 50,200.")
        rates = {k: v for k, v in asdict(self).items() if k.endswith("_rate") or k.startswith("error_rate")}
        for name, value in rates.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValidationFailed(f"Emulator {name} {value} is not a probability.", hint="Use 0 to 1.")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValidationFailed(f"Emulator fault rates add up to {sum(rates.values()):g}, more than 1.",
                                   hint="Lower some of the error, timeout, malformed and blocked rates.")
        if self.thinking_tokens < 0:
            raise ValidationFailed(f"Emulator thinking_tokens {self.thinking_tokens} is negative.")
        if self.timeout_s < 0:
            raise ValidationFailed(f"Emulator timeout_s {self.timeout_s} is negative.")
        if self.malformed_mode not in MALFORMED_MODES:
            raise ValidationFailed(f"Emulator malformed_mode '{self.malformed_mode}' is unknown.",
                                   hint=f"Use one of {', '.join(MALFORMED_MODES)}.")
        return replace(self, latency_ms=(lo, hi))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    emulator: EmulatorServer


LOG_LIMIT = 500_000  # requests remembered for request_log (the oldest are forgotten)


def _load_model() -> None:
    # The content model loads (or builds) once per process, before the first request: loading it inside a
    # request holds the GIL for up to a second or two, so other requests' arrivals would be logged late,
    # bunched together, and a rate measured at the emulator would read as a burst the clients never sent.
    get_tagger()


class EmulatorServer:
    """The emulator: `start()` it (or use it as a context manager), point clients at `.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 0, **knobs: Any) -> None:
        self._knobs = EmulatorKnobs(**knobs).validated()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        # Bounded: `aiconsole up --emulate` serves for days.
        self._log: deque[tuple[float, str, int]] = deque(maxlen=LOG_LIMIT)
        self._last_request: dict[str, Any] | None = None
        self._stopping = threading.Event()
        self._server = _Server((host, port), _Handler)
        self._server.emulator = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def knobs(self) -> EmulatorKnobs:
        """The behaviour currently in force."""
        return self._knobs

    @property
    def request_log(self) -> list[tuple[float, str, int]]:
        """A copy of (time.monotonic() at arrival, path, HTTP status) for every request so far."""
        with self._lock:
            return list(self._log)

    @property
    def last_request(self) -> dict[str, Any] | None:
        """The JSON body of the most recent POST (to check what a client actually sent)."""
        with self._lock:
            return self._last_request

    def reset_log(self) -> None:
        """Forget the logged requests."""
        with self._lock:
            self._log.clear()

    def configure(self, **knobs: Any) -> EmulatorKnobs:
        """Change some knobs while running (requests already in flight keep the old ones)."""
        new = replace(self._knobs, **knobs).validated()
        self._knobs = new
        return new

    def start(self) -> EmulatorServer:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            _load_model()
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"emulator:{self.url}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` is called from another thread or Ctrl-C."""
        _load_model()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving; requests held for a timeout are released at once."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called on the server's handler threads) --------------------------------------

    def _draw(self) -> tuple[str, float]:
        """The fault for one request ('ok', '429', '500', '503', 'timeout', 'malformed', 'blocked') and its delay."""
        k = self._knobs
        with self._lock:
            latency = self._rng.uniform(*k.latency_ms) / 1000.0
            r = self._rng.random()
        for fault, rate in (("429", k.error_rate_429), ("500", k.error_rate_500), ("503", k.error_rate_503),
                            ("timeout", k.timeout_rate), ("malformed", k.malformed_rate),
                            ("blocked", k.blocked_rate)):
            if r < rate:
                return fault, latency
            r -= rate
        return "ok", latency

    def _malformed_mode(self) -> str:
        mode = self._knobs.malformed_mode
        if mode != "mixed":
            return mode
        with self._lock:
            return self._rng.choice(("body", "text", "schema"))

    def handle(self, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, bytes]:
        """The (status, body) to answer; logs the request."""
        arrived = time.monotonic()
        status, payload = self._answer(path, query, headers, body)
        with self._lock:
            self._log.append((arrived, path, status))
        return status, payload

    def _answer(self, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, bytes]:
        vision = path == VISION_PATH
        gemini = GEMINI_PATH.match(path)
        count = COUNT_PATH.match(path)
        if count:
            try:
                return _count_answer(count.group(2), json.loads(body or b"{}"))
            except ValueError:
                return _error(400, "Invalid JSON payload received.")
        if not vision and not gemini:
            return _error(404, f"No such method: POST {path}")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "Invalid JSON payload received.")
        with self._lock:
            self._last_request = request
        knobs = self._knobs
        if knobs.api_key is not None:
            given = headers.get("x-goog-api-key") or next(iter(query.get("key") or []), None)
            if not given:
                return _error(403, "Method doesn't allow unregistered callers (callers without established "
                                   "identity). Please use API Key or other form of API consumer identity.")
            if given != knobs.api_key:
                return _error(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")
        fault, latency = self._draw()
        if latency and self._stopping.wait(latency):
            return _error(503, "The emulator is shutting down.")
        if fault in ("429", "500", "503"):
            return _error(int(fault), _ERROR_MESSAGE[int(fault)])
        if fault == "timeout":
            self._stopping.wait(knobs.timeout_s)
            return _error(504, _ERROR_MESSAGE[504])
        malformed = self._malformed_mode() if fault == "malformed" else None
        if malformed == "body" or (vision and malformed == "text"):
            return 200, b'{"candidates": [{"content": {"parts": [{"text": "[{\\"label\\": \\"ca'
        if vision:
            return _vision_answer(request, malformed)
        assert gemini is not None
        return _gemini_answer(gemini.group(2), request, malformed, blocked=fault == "blocked", knobs=knobs)


def _error(status: int, message: str, *, reason: str | None = None) -> tuple[int, bytes]:
    error: dict[str, Any] = {"code": status, "message": message, "status": _ERROR_STATUS.get(status, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com"}]
    return status, json.dumps({"error": error}).encode()


def _decode_b64(text: str) -> bytes:
    # protobuf JSON writes standard base64, google-genai URL-safe base64: accept both, padded or not.
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # any undecodable header is "bad image data" to the API
        return None


def _mid(label: str) -> str:
    return "/m/0" + hashlib.sha1(label.encode(), usedforsecurity=False).hexdigest()[:5]


def _vision_answer(request: dict[str, Any], malformed: str | None) -> tuple[int, bytes]:
    if malformed == "schema":
        return 200, b'{"responses": []}'
    responses = []
    for item in request.get("requests") or []:
        try:
            data = _decode_b64(str((item.get("image") or {}).get("content") or ""))
        except (binascii.Error, ValueError):
            data = b""
        if not data or _image_size(data) is None:
            responses.append({"error": {"code": 3, "message": "Bad image data."}})
            continue
        answer: dict[str, Any] = {}
        for feature in item.get("features") or []:
            kind = feature.get("type")
            kind = FEATURE_TYPES.get(kind, kind) if isinstance(kind, int) else kind
            limit = int(feature.get("maxResults") or 10)
            pairs = vision_labels(data)[:limit]
            if kind == "LABEL_DETECTION":
                answer["labelAnnotations"] = [
                    {"mid": _mid(label), "description": label.capitalize(), "score": score, "topicality": score}
                    for label, score in pairs]
            elif kind == "OBJECT_LOCALIZATION":
                answer["localizedObjectAnnotations"] = [
                    {"mid": _mid(label), "name": label.capitalize(), "score": score,
                     "boundingPoly": {"normalizedVertices": [{"x": 0.1, "y": 0.1}, {"x": 0.9, "y": 0.1},
                                                             {"x": 0.9, "y": 0.9}, {"x": 0.1, "y": 0.9}]}}
                    for label, score in pairs[:3]]
        responses.append(answer)
    if not responses:
        return _error(400, "No requests in the batch.")
    return 200, json.dumps({"responses": responses}).encode()


def text_token_count(texts: list[str]) -> int:
    """The emulator's tokenizer: ceil(characters / 4) per text part; generateContent and countTokens share it."""
    return sum(math.ceil(len(t) / 4) for t in texts)


def _count_answer(model: str, request: dict[str, Any]) -> tuple[int, bytes]:
    """countTokens for text parts (the same count generateContent reports as the prompt's text tokens)."""
    if not model.startswith("gemini-"):
        return _error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                           "countTokens.")
    texts = [str(part["text"]) for content in request.get("contents") or []
             for part in content.get("parts") or [] if "text" in part]
    return 200, json.dumps({"totalTokens": text_token_count(texts)}).encode()


def _gemini_answer(model: str, request: dict[str, Any], malformed: str | None, *, blocked: bool,
                   knobs: EmulatorKnobs) -> tuple[int, bytes]:
    if not model.startswith("gemini-"):
        return _error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                           "generateContent.")
    texts: list[str] = []
    image: bytes | None = None
    for content in request.get("contents") or []:
        for part in content.get("parts") or []:
            inline = part.get("inlineData") or part.get("inline_data")
            if inline and image is None:
                try:
                    image = _decode_b64(str(inline.get("data") or ""))
                except (binascii.Error, ValueError):
                    image = b""
            elif "text" in part:
                texts.append(str(part["text"]))
    size = _image_size(image) if image else None
    if image is None or size is None:
        return _error(400, "Unable to process input image. Please retry or report in "
                           "https://developers.generativeai.google/guide/troubleshooting")
    text_tokens = text_token_count(texts)
    image_tokens = gemini_image_tokens(*size)
    prompt_tokens = text_tokens + image_tokens
    details = [{"modality": "TEXT", "tokenCount": text_tokens}, {"modality": "IMAGE", "tokenCount": image_tokens}]
    if blocked:
        return 200, json.dumps({
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]},
            "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens,
                              "promptTokensDetails": details},
            "modelVersion": model,
        }).encode()
    prompt = "\n".join(texts)
    schema = (request.get("generationConfig") or {}).get("responseSchema") or {}
    max_items = int(schema["maxItems"]) if isinstance(schema.get("maxItems"), (int, str)) else None
    labels = gemini_labels(image, prompt, max_items=max_items)
    if malformed == "text":
        text = "Sure! This photo shows: " + ", ".join(label for label, _ in labels[:5])
    elif malformed == "schema":
        text = json.dumps([{"name": label, "score": "high"} for label, _ in labels[:5]])
    else:
        text = answer_shape(prompt, schema).render(labels)
    output_tokens = math.ceil(len(text) / 4)
    answer: dict[str, Any] = {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                        "index": 0}],
        "modelVersion": model,
        "responseId": hashlib.sha256(image).hexdigest()[:22],
    }
    if knobs.usage_metadata:
        usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
                 "totalTokenCount": prompt_tokens + output_tokens + knobs.thinking_tokens,
                 "promptTokensDetails": details}
        if knobs.thinking_tokens:
            usage["thoughtsTokenCount"] = knobs.thinking_tokens
        answer["usageMetadata"] = usage
    return 200, json.dumps(answer).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections as they do against Google
    disable_nagle_algorithm = True  # small answers must not wait ~40 ms for a delayed ACK
    server: _Server
    timeout = 120  # an idle keep-alive connection's thread ends after this

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.server.emulator.handle(parts.path, parse_qs(parts.query), self.headers, body)
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._reply(*_error(404, f"No such method: GET {self.path}"))

    def _reply(self, status: int, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout); nothing to answer

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log is kept in memory; stderr stays quiet in tests and benchmarks
