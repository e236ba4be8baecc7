"""Build a provider by name, and the models each provider offers."""

from __future__ import annotations

from typing import Any

from aiconsole.platform.errors import ConfigError
from aiconsole.providers.base import PROVIDER_NAMES, Provider, ProviderSettings
from aiconsole.providers.pricing import GEMINI_PRICES, LOCAL_MODEL

# First model = the default. Vision's "model" is its Feature.model ("builtin/stable" or "builtin/latest");
# Gemini's are the models the price table knows, so every call can be costed.
PROVIDER_MODELS: dict[str, tuple[str, ...]] = {
    "local": (LOCAL_MODEL,),
    "google-vision": ("builtin/stable", "builtin/latest"),
    "gemini": ("gemini-2.5-flash", *sorted(m for m in GEMINI_PRICES if m != "gemini-2.5-flash")),
}


def default_model(name: str) -> str:
    """The model a provider uses when none is chosen."""
    _check_name(name)
    return PROVIDER_MODELS[name][0]


def _check_name(name: str) -> None:
    if name not in PROVIDER_NAMES:
        raise ConfigError(f"There is no provider '{name}'.", hint=f"Providers: {', '.join(PROVIDER_NAMES)}.")


def build_provider(name: str, settings: ProviderSettings, **options: Any) -> Provider:
    """A ready provider called `name` ("local", "google-vision", "gemini") with these settings.

    Options: google-vision takes `object_localization: bool`; local takes `faces: bool`.
    """
    _check_name(name)
    if name == "local":
        from aiconsole.providers.local import LocalProvider

        return LocalProvider(**options)
    if name == "google-vision":
        from aiconsole.providers.google_vision import GoogleVisionProvider

        return GoogleVisionProvider(settings, **options)
    from aiconsole.providers.gemini import GeminiProvider

    return GeminiProvider(settings, **options)
