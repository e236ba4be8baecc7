"""The providers aiconsole knows: what each can do and needs, the models it offers, and building one by name.

Modules that must treat providers differently ask `capabilities(name)` (does it take a prompt, how is
it billed, does it need a key...) instead of comparing names, so a new provider is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiconsole.platform.errors import NotFound
from aiconsole.providers import gemini, google_vision
from aiconsole.providers.base import Provider, ProviderSettings
from aiconsole.providers.pricing import GEMINI_PRICES, LOCAL_MODEL

Billing = Literal["tokens", "units", "none"]


@dataclass(frozen=True)
class Capabilities:
    """What one provider can do and needs; `models[0]` is its default model."""

    name: str
    display_name: str
    models: tuple[str, ...]
    takes_prompt: bool  # the worker renders the prompt and sends it; the others ignore prompts
    billing: Billing  # what its cost is counted in
    free_tier: bool  # a monthly allowance of free units: calls carry the month's units so far
    emulatable: bool  # a demo organization's calls can go to the local emulator
    needs_key: bool  # calls need credentials: a stored key, or the worker environment's
    service_account_key: bool  # the stored key may also be a service-account JSON document
    has_endpoint: bool  # calls go over the network, to a configurable endpoint and region
    default_endpoint: str | None = None
    env_credentials: str | None = None  # what the worker uses when no key is stored
    builtin_prompt: str | None = None  # sent when no prompt is given; `{max_labels}` is filled in

    @property
    def default_model(self) -> str:
        """The model used when none is chosen."""
        return self.models[0]


# Registry order is display order. Vision's "model" is its Feature.model ("builtin/stable" or
# "builtin/latest"); Gemini's are the models the price table knows, so every call can be costed.
_CAPABILITIES: dict[str, Capabilities] = {c.name: c for c in (
    Capabilities("local", "Local analyzer", (LOCAL_MODEL,), takes_prompt=False, billing="none", free_tier=False,
                 emulatable=False, needs_key=False, service_account_key=False, has_endpoint=False),
    Capabilities(google_vision.NAME, "Google Cloud Vision", ("builtin/stable", "builtin/latest"),
                 takes_prompt=False, billing="units", free_tier=True, emulatable=True, needs_key=True,
                 service_account_key=True, has_endpoint=True, default_endpoint=google_vision.DEFAULT_ENDPOINT,
                 env_credentials="Application Default Credentials"),
    Capabilities(gemini.NAME, "Gemini",
                 ("gemini-2.5-flash", *sorted(m for m in GEMINI_PRICES if m != "gemini-2.5-flash")),
                 takes_prompt=True, billing="tokens", free_tier=False, emulatable=True, needs_key=True,
                 service_account_key=False, has_endpoint=True, default_endpoint=gemini.DEFAULT_ENDPOINT,
                 env_credentials="GEMINI_API_KEY", builtin_prompt=gemini.DEFAULT_PROMPT),
)}
PROVIDER_NAMES: tuple[str, ...] = tuple(_CAPABILITIES)
PROVIDER_MODELS: dict[str, tuple[str, ...]] = {c.name: c.models for c in _CAPABILITIES.values()}
DEFAULT_PROVIDER = "local"  # what an organization without a pipeline config runs


def capabilities(name: str) -> Capabilities:
    """What provider `name` can do and needs; NotFound naming the known providers if there is none."""
    try:
        return _CAPABILITIES[name]
    except KeyError:
        raise NotFound(f"There is no provider '{name}'.", hint=f"Providers: {', '.join(PROVIDER_NAMES)}.") from None


def provider_names(**flags: bool) -> tuple[str, ...]:
    """The providers (in registry order) whose capability flags have these values, e.g. emulatable=True."""
    return tuple(c.name for c in _CAPABILITIES.values() if all(getattr(c, k) == v for k, v in flags.items()))


def default_model(name: str) -> str:
    """The model a provider uses when none is chosen."""
    return capabilities(name).default_model


def build_provider(name: str, settings: ProviderSettings, **options: Any) -> Provider:
    """A ready provider called `name` ("local", "google-vision", "gemini") with these settings.

    Options: google-vision takes `object_localization: bool`; local takes `faces: bool`.
    """
    capabilities(name)
    if name == google_vision.NAME:
        return google_vision.GoogleVisionProvider(settings, **options)
    if name == gemini.NAME:
        return gemini.GeminiProvider(settings, **options)
    # Imported here: local brings numpy and Pillow, which a process that never analyses locally does not need.
    from aiconsole.providers.local import LocalProvider

    return LocalProvider(**options)
