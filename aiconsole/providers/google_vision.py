"""The `google-vision` provider: Cloud Vision label detection (optionally object localization).

It uses google-cloud-vision's ImageAnnotatorClient over its REST transport. Credentials, from the provider
config's secret: a service-account JSON document, or an API key; with neither, Application Default
Credentials; against a custom endpoint (the emulator) without a key, anonymous credentials. The client's
own retries are off (`retry=None`): the worker's retry policy decides. Each feature run on an image is one
billed unit; the cost comes from `pricing.vision_cost_micros` with the organization's free tier position.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

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

NAME = "google-vision"
DEFAULT_ENDPOINT = "https://vision.googleapis.com"
# google.rpc.Code of a per-image error -> the HTTP status it stands for.
_RPC_TO_HTTP = {3: 400, 4: 504, 5: 404, 7: 403, 8: 429, 9: 400, 11: 400, 13: 500, 14: 503, 16: 401, 2: 500}


class GoogleVisionProvider:
    """Cloud Vision labelling; safe to share between threads."""

    name = NAME

    def __init__(self, settings: ProviderSettings, *, object_localization: bool = False) -> None:
        self._settings = settings
        self.object_localization = object_localization
        self._lock = threading.Lock()
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        """Where calls go (the emulator's URL in tests and in the offline demo)."""
        return self._settings.endpoint or DEFAULT_ENDPOINT

    @property
    def features(self) -> tuple[str, ...]:
        """The Vision features each call runs (each one a billed unit per image)."""
        return ("LABEL_DETECTION", "OBJECT_LOCALIZATION") if self.object_localization else ("LABEL_DETECTION",)

    def warm_up(self) -> None:
        """Build the SDK client now (up to a second of CPU), so the first call does not wait for it."""
        self._get_client()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        from google.auth import exceptions as auth_exceptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import vision

        options: dict[str, Any] = {}
        credentials: Any = None
        if self._settings.endpoint:
            options["api_endpoint"] = self._settings.endpoint
        secret = (self._settings.api_key or "").strip()
        try:
            if secret.startswith("{"):
                from google.oauth2 import service_account

                credentials = service_account.Credentials.from_service_account_info(
                    json.loads(secret), scopes=["https://www.googleapis.com/auth/cloud-vision"])
            elif secret:
                options["api_key"] = secret
            elif self._settings.endpoint:
                credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            return vision.ImageAnnotatorClient(transport="rest", credentials=credentials, client_options=options)
        except (ValueError, KeyError, auth_exceptions.GoogleAuthError) as exc:
            raise provider_error("auth", f"Cloud Vision credentials are missing or invalid "
                                         f"({type(exc).__name__}: {str(exc)[:300]}).",
                                 hint="Paste an API key or a service-account JSON key into the google-vision "
                                      "provider settings, or give the worker Application Default "
                                      "Credentials.") from exc

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        """Label one image with the request's Vision model ("builtin/stable" or "builtin/latest")."""
        from google.api_core import exceptions as core_exceptions
        from google.auth import exceptions as auth_exceptions
        from google.cloud import vision
        from google.protobuf import json_format

        client = self._get_client()
        timeout_s = effective_timeout(self._settings, request)
        features = [vision.Feature(type_=getattr(vision.Feature.Type, name), max_results=request.max_labels,
                                   model=request.model) for name in self.features]
        annotate = vision.AnnotateImageRequest(image=vision.Image(content=image.data), features=features)
        trace: list[dict[str, Any]] = []
        started = time.perf_counter()
        with timed(trace, "request", provider=NAME, model=request.model, endpoint=self.endpoint,
                   features=list(self.features), image_bytes=len(image.data), timeout_s=timeout_s) as step:
            try:
                batch = client.batch_annotate_images(requests=[annotate], retry=None, timeout=timeout_s)
            except core_exceptions.GoogleAPICallError as exc:
                status = int(exc.code) if isinstance(exc.code, int) else 500
                step["error"] = f"HTTP {status}"
                raise http_error(NAME, status, _short(exc.message), reason=exc.reason) from exc
            except (json_format.ParseError, ValueError) as exc:
                step["error"] = "malformed"
                raise malformed_error(NAME, f"the response body could not be parsed ({str(exc)[:200]})") from exc
            except auth_exceptions.RefreshError as exc:
                step["error"] = "auth"
                raise provider_error("auth", f"Cloud Vision credentials were refused ({str(exc)[:300]}).",
                                     hint="Check the service-account key in the provider settings.") from exc
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
            if len(batch.responses) != 1:
                raise malformed_error(NAME, f"expected 1 image response, got {len(batch.responses)}")
            answer = batch.responses[0]
            if answer.error.code:
                status = _RPC_TO_HTTP.get(answer.error.code, 500)
                raise http_error(NAME, status, f"image error {answer.error.code}: {answer.error.message}")
            pairs = [(a.description, a.score) for a in answer.label_annotations]
            pairs += [(o.name, o.score) for o in answer.localized_object_annotations]
            tags = make_tags(pairs, max_labels=request.max_labels)
            step.update(labels=len(answer.label_annotations), objects=len(answer.localized_object_annotations))
        units = len(self.features)
        cost = self.cost_micros(units_per_feature=1, month_units_before=request.month_units_before,
                                overrides=request.price_overrides)
        trace.append({"step": "cost", "ms": 0.0, "units": units, "month_units_before": request.month_units_before,
                      "cost_micros": cost})
        raw = type(answer).to_dict(answer, preserving_proto_field_name=False)
        return ProviderResult(provider=NAME, model=request.model, tags=tags, input_tokens=0, output_tokens=0,
                              units=units, cost_micros=cost, latency_ms=latency_ms, raw_response=truncate_raw(raw),
                              trace=tuple(trace))

    def cost_micros(self, *, units_per_feature: int, month_units_before: int,
                    overrides: dict[str, Any] | None = None) -> int:
        """Cost of running every feature on `units_per_feature` images after `month_units_before` units.

        The free tier and price tiers count per feature; the org's units this month are split evenly over
        the features this provider runs (each call runs all of them).
        """
        per_feature_before = month_units_before // len(self.features)
        return sum(pricing.vision_cost_micros(units_per_feature, month_units_before=per_feature_before,
                                              feature=feature, overrides=overrides)
                   for feature in self.features)


def _short(message: str | None) -> str:
    # api_core prefixes "POST <url>: "; the URL says nothing the trace does not.
    text = message or ""
    head, sep, rest = text.partition(": ")
    return rest if sep and head.startswith(("POST ", "GET ")) else text
