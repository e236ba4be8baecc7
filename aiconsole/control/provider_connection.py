"""Test connection: one call of a provider with the organization's SAVED settings and key on a sample photo.

The call goes only to an endpoint the key may go to (`aiconsole.providers.endpoints`; a demo organization's
calls go to the demo emulator), and what is reflected back is the provider's status and a short reason with
the key scrubbed (`aiconsole.providers.keys.reflected`), never its whole answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from aiconsole.control.provider_admin import load_config, settings_state
from aiconsole.platform import secrets_box
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import PipelineConfig
from aiconsole.platform.errors import AiconsoleError, ProviderError
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulation import EMULATOR_KEY, emulated_endpoint, is_demo_org
from aiconsole.providers.endpoints import endpoint_refusal
from aiconsole.providers.keys import reflected
from aiconsole.providers.registry import build_provider, capabilities

KIND_LABELS = {"auth": "bad key", "connection": "unreachable", "rate_limited": "rate limited",
               "timeout": "timeout", "server_error": "provider error", "bad_request": "bad request",
               "blocked": "blocked", "malformed": "unusable answer", "config": "key cannot be decrypted",
               "internal": "internal error", "endpoint": "endpoint not allowed"}
TEST_SAMPLE = "chelsea"
TEST_MAX_LABELS = 5


@dataclass(frozen=True)
class ConnectionResult:
    """What one test call with the saved settings did: latency and top tags, or the classified error."""

    provider: str
    model: str
    endpoint: str
    ok: bool
    latency_ms: int
    tags: tuple[tuple[str, float], ...]
    error_kind: str | None
    error: str | None
    used_stored_key: bool
    settings_version: int = 0  # the provider_configs version it tested (0: the defaults); a later save outdates it

    @property
    def verdict(self) -> str:
        """'ok' or the error in a word or two ('bad key', 'unreachable', 'rate limited', 'timeout'...)."""
        return "ok" if self.ok else KIND_LABELS.get(self.error_kind or "", self.error_kind or "error")


def test_connection(actor: Actor, *, provider: str, settings: Settings | None = None) -> ConnectionResult:
    """Call the provider once with the SAVED settings on a small sample photo and report what happened.

    Nothing is sent to an endpoint the key may not go to; an error is the provider's status and a short,
    scrubbed reason (never its whole answer) with aiconsole's hint.
    """
    from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings
    from aiconsole.providers.samples import demo_photo, sample_photo

    actor.require("providers.configure")
    caps = capabilities(provider)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        pc = load_config(s, actor.organization_id, provider)
        cfg = s.scalar(select(PipelineConfig).where(PipelineConfig.organization_id == actor.organization_id))
        state, token = settings_state(pc), pc.encrypted_secret if pc is not None else None
        version = pc.version if pc is not None else 0
        emulated_at = emulated_endpoint(provider, is_demo=is_demo_org(s, organization_id=actor.organization_id),
                                        settings=settings)
        if emulated_at is not None:
            state["endpoint"] = emulated_at
        model = caps.default_model
        if cfg is not None and cfg.active_provider == provider and cfg.active_model in caps.models:
            model = cfg.active_model
    endpoint = state["endpoint"] or caps.default_endpoint or "in-process"

    def failed(kind: str, message: str, hint: str | None = None, latency_ms: int = 0,
               key: str | None = None) -> ConnectionResult:
        error = reflected(message, key) + ("" if hint is None else f" {hint}")
        return ConnectionResult(provider, model, endpoint, False, latency_ms, (), kind, error, token is not None,
                                version)

    refusal = None if emulated_at is not None else endpoint_refusal(provider, state["endpoint"],
                                                                    settings=settings or get_settings())
    if refusal is not None:  # saved before the endpoint rules, or the allow-list changed since
        return failed("endpoint", f"Not called: {refusal}.", hint="Fix the endpoint in the settings above.")
    key: str | None = None
    if token is not None:
        try:
            key = secrets_box.decrypt(token, settings=settings)
        except AiconsoleError as exc:
            return failed("config", exc.message, exc.hint)
    if emulated_at is not None:
        key = key or EMULATOR_KEY
    photo = demo_photo(TEST_SAMPLE, 0)
    image = ImageInput(sample_photo(TEST_SAMPLE, 0), "image/jpeg", photo.width, photo.height, photo.sha256)
    timeout = float(state["timeout_seconds"])
    started = time.perf_counter()
    try:
        client = build_provider(provider, ProviderSettings(api_key=key, endpoint=state["endpoint"],
                                                           timeout_s=timeout))
        result = client.analyze(image, AnalysisRequest(model=model, max_labels=TEST_MAX_LABELS, timeout_s=timeout))
    except ProviderError as exc:
        return failed(exc.kind, exc.message, exc.hint, round((time.perf_counter() - started) * 1000), key)
    except Exception as exc:  # a client library failing in a way it should not: say so, never a traceback
        return failed("internal", f"{provider} failed unexpectedly: {type(exc).__name__}: {exc}", None,
                      round((time.perf_counter() - started) * 1000), key)
    tags = tuple((t.label, round(t.confidence, 3)) for t in result.tags[:TEST_MAX_LABELS])
    return ConnectionResult(provider, model, endpoint, True, result.latency_ms, tags, None, None, token is not None,
                            version)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name
