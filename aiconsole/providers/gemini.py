"""The `gemini` provider: google-genai with the rendered prompt, the image inline and structured JSON output.

The model is asked for `application/json` matching a list of {label, confidence}; the answer is validated
with pydantic and anything else is a `malformed` error. Tokens come from the answer's usageMetadata
(thinking tokens are billed as output) and the cost from the dated price table in `pricing`, with the
organization's overrides. The SDK's own retries are off: the worker's retry policy decides.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aiconsole.providers import pricing
from aiconsole.providers.base import (
    AnalysisRequest,
    ImageInput,
    ProviderResult,
    ProviderSettings,
    connection_error,
    effective_timeout,
    http_error,
    make_tags,
    malformed_error,
    network_error_kind,
    provider_error,
    timed,
    timeout_error,
    truncate_raw,
)

NAME = "gemini"
DEFAULT_ENDPOINT = "https://generativelanguage.googleapis.com"
DEFAULT_PROMPT = (
    "You label photos for a photo library. Look at the image and return up to {max_labels} short labels "
    "(objects, scene, activity, notable attributes), each with your confidence from 0 to 1 that it is "
    "visible in the photo. Answer only with the JSON list."
)
# Finish reasons meaning the model refused or was stopped by a content filter.
BLOCKING_FINISH_REASONS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                                     "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})


class GeminiTag(BaseModel):
    """One label as the model must return it."""

    model_config = ConfigDict(extra="ignore")

    label: str = Field(min_length=1, max_length=200)
    confidence: float = Field(ge=0.0, le=1.0)


TAG_LIST = TypeAdapter(list[GeminiTag])


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", None) or getattr(value, "value", None) or value)


class GeminiProvider:
    """Gemini multimodal labelling through google-genai; safe to share between threads."""

    name = NAME

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        """Where calls go (the emulator's URL in tests and in the offline demo)."""
        return self._settings.endpoint or DEFAULT_ENDPOINT

    def warm_up(self) -> None:
        """Build the SDK client now (up to a second of CPU), so the first call does not wait for it."""
        self._get_client()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google import genai
                from google.genai import types

                key = self._settings.api_key or ("emulator" if self._settings.endpoint else None)
                options = types.HttpOptions(base_url=self._settings.endpoint) if self._settings.endpoint else None
                try:
                    self._client = genai.Client(vertexai=False, api_key=key, http_options=options)
                except ValueError as exc:  # raised when no key is given and none is in the environment
                    raise provider_error("auth", f"No Gemini API key is configured ({exc}).",
                                         hint="Add the key in the gemini provider settings, or set "
                                              "GEMINI_API_KEY for the worker.") from exc
            return self._client

    def count_tokens(self, model: str, text: str) -> int:
        """The model's own token count for `text` (the countTokens call); a ProviderError if it fails."""
        from google.genai import errors

        client = self._get_client()
        try:
            response = client.models.count_tokens(model=model, contents=text)
        except errors.APIError as exc:
            raise http_error(NAME, int(exc.code or 0), str(exc.message or exc.status or ""),
                             reason=_error_reason(exc.details)) from exc
        except Exception as exc:
            if network_error_kind(exc) is None:
                raise
            raise connection_error(NAME, self.endpoint, exc) from exc
        return int(response.total_tokens or 0)

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        """Label one image with the request's model and prompt."""
        from google.genai import errors, types

        _check_price(request)
        client = self._get_client()
        timeout_s = effective_timeout(self._settings, request)
        prompt = request.prompt or DEFAULT_PROMPT.format(max_labels=request.max_labels)
        config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=list[GeminiTag],
            http_options=types.HttpOptions(timeout=max(1, math.ceil(timeout_s * 1000))),
        )
        contents = [types.Part.from_bytes(data=image.data, mime_type=image.content_type), prompt]
        trace: list[dict[str, Any]] = []
        started = time.perf_counter()
        with timed(trace, "request", provider=NAME, model=request.model, endpoint=self.endpoint,
                   image_bytes=len(image.data), prompt_chars=len(prompt), timeout_s=timeout_s) as step:
            try:
                response = client.models.generate_content(model=request.model, contents=contents, config=config)
            except errors.APIError as exc:
                step["error"] = f"HTTP {exc.code}"
                raise http_error(NAME, int(exc.code or 0), str(exc.message or exc.status or ""),
                                 reason=_error_reason(exc.details)) from exc
            except ValueError as exc:  # the SDK could not decode the HTTP body as JSON
                step["error"] = "malformed"
                raise malformed_error(NAME, f"the response body is not valid JSON ({exc})") from exc
            except Exception as exc:
                kind = network_error_kind(exc)
                if kind is None:
                    raise
                step["error"] = kind
                if kind == "timeout":
                    raise timeout_error(NAME, timeout_s, exc) from exc
                raise connection_error(NAME, self.endpoint, exc) from exc
        latency_ms = round((time.perf_counter() - started) * 1000)
        with timed(trace, "parse") as step:
            tags, finish = _tags(response, request.max_labels)
            step.update(labels=len(tags), finish_reason=finish)
        input_tokens, output_tokens, estimated = _usage(response, image, prompt)
        cost = pricing.gemini_cost_micros(request.model, input_tokens=input_tokens, output_tokens=output_tokens,
                                          overrides=request.price_overrides)
        trace.append({"step": "cost", "ms": 0.0, "input_tokens": input_tokens, "output_tokens": output_tokens,
                      "usage_estimated": estimated, "cost_micros": cost})
        raw = response.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response", "parsed"})
        return ProviderResult(provider=NAME, model=request.model, tags=tags, input_tokens=input_tokens,
                              output_tokens=output_tokens, units=1, cost_micros=cost, latency_ms=latency_ms,
                              raw_response=truncate_raw(raw), trace=tuple(trace))


def _check_price(request: AnalysisRequest) -> None:
    override = (request.price_overrides or {}).get(request.model) or {}
    if request.model in pricing.GEMINI_PRICES or {"input_per_m", "output_per_m"} <= set(override):
        return
    raise provider_error("bad_request", f"No price is known for Gemini model '{request.model}', so its cost "
                                        "cannot be recorded.",
                         hint=f"Use one of {', '.join(sorted(pricing.GEMINI_PRICES))}, or set input_per_m and "
                              "output_per_m price overrides for it.")


def _error_reason(details: Any) -> str | None:
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in (error.get("details") or []) if isinstance(error, dict) else []:
        if isinstance(item, dict) and item.get("reason"):
            return str(item["reason"])
    return None


def _tags(response: Any, max_labels: int) -> tuple[tuple[Any, ...], str | None]:
    feedback = response.prompt_feedback
    block = _enum_name(feedback.block_reason) if feedback is not None else None
    if block and block != "BLOCK_REASON_UNSPECIFIED":
        raise provider_error("blocked", f"Gemini refused the photo (prompt blocked: {block}).",
                             hint="Retrying will not help; review the photo by hand or try another provider.")
    if not response.candidates:
        raise malformed_error(NAME, "the answer has no candidates")
    candidate = response.candidates[0]
    finish = _enum_name(candidate.finish_reason)
    if finish in BLOCKING_FINISH_REASONS:
        raise provider_error("blocked", f"Gemini stopped answering (finish reason {finish}).",
                             hint="Retrying will not help; review the photo by hand or try another provider.")
    parts = (candidate.content.parts if candidate.content is not None else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        raise malformed_error(NAME, f"the answer has no text (finish reason {finish})")
    try:
        items = TAG_LIST.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise malformed_error(NAME, f"the answer is not a JSON list of {{label, confidence}} "
                                    f"({first['type']} at {list(first['loc'])}; finish reason {finish}): "
                                    f"{text[:200]!r}") from exc
    return make_tags(((t.label, t.confidence) for t in items), max_labels=max_labels), finish


def _usage(response: Any, image: ImageInput, prompt: str) -> tuple[int, int, bool]:
    usage = response.usage_metadata
    if usage is not None and usage.prompt_token_count is not None:
        inp = usage.prompt_token_count + (usage.tool_use_prompt_token_count or 0)
        out = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        return inp, out, False
    # No usageMetadata: estimate from the documented image tiling and ~4 characters per text token;
    # the trace marks the figures as estimated.
    text = response.text or ""
    inp = pricing.gemini_image_tokens(image.width, image.height) + math.ceil(len(prompt) / 4)
    return inp, math.ceil(len(text) / 4), True

