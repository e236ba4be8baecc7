"""The provider registry: each provider's capabilities, models, and building a provider by name."""

from __future__ import annotations

import dataclasses

import pytest

from aiconsole.platform.db.models import PROVIDERS
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.providers import pricing
from aiconsole.providers.base import ProviderSettings
from aiconsole.providers.gemini import GeminiProvider
from aiconsole.providers.google_vision import GoogleVisionProvider
from aiconsole.providers.keys import check_secret
from aiconsole.providers.local import LocalProvider
from aiconsole.providers.registry import (
    DEFAULT_PROVIDER,
    PROVIDER_MODELS,
    PROVIDER_NAMES,
    build_provider,
    capabilities,
    default_model,
    provider_names,
)

KEY = "AIza" + "A" * 35


def test_registry_builds_each_provider() -> None:
    s = ProviderSettings(endpoint="http://127.0.0.1:9")
    assert isinstance(build_provider("local", s), LocalProvider)
    vision = build_provider("google-vision", s, object_localization=True)
    assert isinstance(vision, GoogleVisionProvider) and vision.features == ("LABEL_DETECTION",
                                                                            "OBJECT_LOCALIZATION")
    assert isinstance(build_provider("gemini", s), GeminiProvider)


def test_the_registry_covers_exactly_the_providers_the_database_allows() -> None:
    assert sorted(PROVIDER_NAMES) == sorted(PROVIDERS)
    assert PROVIDER_NAMES[0] == DEFAULT_PROVIDER == "local"  # display order: the free one first


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_each_registered_provider_declares_its_capabilities(name: str) -> None:
    caps = capabilities(name)
    assert caps.name == name and caps.display_name
    assert build_provider(name, ProviderSettings()).name == name
    assert caps.models and caps.default_model == caps.models[0] == default_model(name)
    assert PROVIDER_MODELS[name] == caps.models
    assert caps.billing in ("tokens", "units", "none")
    assert caps.takes_prompt == (caps.builtin_prompt is not None)
    assert caps.has_endpoint == (caps.default_endpoint is not None)
    assert caps.needs_key == (caps.env_credentials is not None)
    assert not caps.service_account_key or caps.needs_key
    assert not caps.emulatable or caps.has_endpoint  # the emulator is reached at an endpoint
    assert not caps.free_tier or caps.billing == "units"
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.takes_prompt = not caps.takes_prompt  # type: ignore[misc]


def test_the_capabilities_match_what_each_provider_does() -> None:
    assert provider_names(takes_prompt=True) == ("gemini",)
    assert {n: capabilities(n).billing for n in PROVIDER_NAMES} == {"local": "none", "google-vision": "units",
                                                                    "gemini": "tokens"}
    assert provider_names(free_tier=True) == ("google-vision",)
    assert provider_names(emulatable=True) == ("google-vision", "gemini")
    assert provider_names(needs_key=False) == provider_names(has_endpoint=False) == ("local",)
    assert provider_names(service_account_key=True) == ("google-vision",)
    assert provider_names() == PROVIDER_NAMES
    assert provider_names(takes_prompt=True, billing="units") == ()


def test_a_built_provider_calls_its_declared_default_endpoint() -> None:
    for name in provider_names(has_endpoint=True):
        provider = build_provider(name, ProviderSettings())
        assert getattr(provider, "endpoint") == capabilities(name).default_endpoint


def test_the_token_billed_models_are_the_priced_ones() -> None:
    assert set(capabilities("gemini").models) == set(pricing.GEMINI_PRICES)  # every offered model has a price
    assert default_model("local") == pricing.LOCAL_MODEL
    assert default_model("google-vision") == "builtin/stable"
    assert default_model("gemini") == "gemini-2.5-flash"


def test_keys_follow_the_capabilities() -> None:
    for name in provider_names(needs_key=True):
        assert check_secret(name, KEY).kind == "api_key"
    with pytest.raises(ValidationFailed, match=r"local provider takes no key.*Keys are for google-vision and gemini"):
        check_secret("local", KEY)
    with pytest.raises(ValidationFailed, match="Gemini takes an API key, not a service-account JSON"):
        check_secret("gemini", '{"type": "service_account"}')


@pytest.mark.parametrize("lookup", [capabilities, default_model,
                                    lambda name: build_provider(name, ProviderSettings())])
def test_an_unknown_provider_is_not_found_and_the_known_ones_are_named(lookup) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match=r"There is no provider 'openai'\. Providers: local, google-vision, gemini\."):
        lookup("openai")
