"""`aiconsole up --emulate`: a demo organization's google-vision and gemini calls go to the local emulator
through the real Google clients (worker and "Test connection"), marked in the trace; other organizations
keep their real endpoints whatever the setting says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from aiconsole.control import provider_admin, provider_connection
from aiconsole.pipeline.context import load_org_context
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Organization
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulation import EMULATOR_KEY, emulated_endpoint, emulator_url
from aiconsole.providers.emulator import GEMINI_PATH, VISION_PATH, EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import InProcessWorker, all_terminal, enqueue, make_org, wait_until  # noqa: E402


@pytest.fixture
def emulated(settings: Settings, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The console's settings with AICONSOLE_DEMO_EMULATOR_URL pointing at a running emulator."""
    monkeypatch.setenv("AICONSOLE_DEMO_EMULATOR_URL", emulator.url + "/")
    get_settings.cache_clear()
    yield emulator.url
    get_settings.cache_clear()


def _demo_org(provider: str) -> int:
    org = make_org(provider=provider)  # no endpoint and no key stored: Google's public endpoint otherwise
    with service_session() as s:
        s.get_one(Organization, org).is_demo = True
    return org


def _admin(org: int) -> Actor:
    return Actor(user_id=None, email="admin@example.com", role="admin", organization_id=org)


def test_the_setting_must_be_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICONSOLE_DEMO_EMULATOR_URL", "ftp://somewhere")
    with pytest.raises(ValidationError, match="is not an http"):
        Settings()
    monkeypatch.setenv("AICONSOLE_DEMO_EMULATOR_URL", "http://127.0.0.1:8787/")
    assert Settings().demo_emulator_url == "http://127.0.0.1:8787"  # one form, so clients join paths right
    monkeypatch.setenv("AICONSOLE_DEMO_EMULATOR_URL", "")
    assert Settings().demo_emulator_url is None


def test_only_demo_organizations_and_only_google_providers_are_emulated(emulated: str) -> None:
    assert emulator_url(is_demo=True) == emulated
    assert emulator_url(is_demo=False) is None
    assert emulated_endpoint("gemini", is_demo=True) == emulated
    assert emulated_endpoint("local", is_demo=True) is None
    demo, real = _demo_org("gemini"), make_org(provider="gemini")
    with service_session() as s:
        demo_ctx = load_org_context(s, organization_id=demo)
        real_ctx = load_org_context(s, organization_id=real)
    for name in ("gemini", "google-vision"):  # google-vision has no row: its defaults are emulated too
        setup = demo_ctx.setup(name)
        assert (setup.emulated, setup.endpoint, setup.api_key) == (True, emulated, EMULATOR_KEY)
    assert demo_ctx.setup("local").emulated is False
    assert (real_ctx.setup("gemini").emulated, real_ctx.setup("gemini").endpoint) == (False, None)


@pytest.mark.parametrize("provider", ["gemini", "google-vision"])
def test_a_demo_organizations_photos_are_tagged_by_the_emulator(
        emulated: str, emulator: EmulatorServer, settings: Settings, provider: str) -> None:
    org = _demo_org(provider)
    ids = enqueue(org, 6, settings=settings)
    with InProcessWorker(concurrency=2, batch_size=3):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="the demo photos processed")
    with service_session() as s:
        results = list(s.scalars(select(AiProcessingResult).where(AiProcessingResult.organization_id == org)))
    assert len(results) == len(ids)
    assert {r.ai_provider for r in results} == {provider} and all(r.error is None for r in results)
    assert all(r.tags for r in results)
    steps = [next(step for step in r.trace if step["step"] == "emulated") for r in results]
    assert {(step["provider"], step["endpoint"]) for step in steps} == {(provider, emulated)}
    def ours(path: str) -> bool:
        return bool(GEMINI_PATH.match(path)) if provider == "gemini" else path == VISION_PATH

    assert Counter(ours(p) for _, p, _ in emulator.request_log) == {True: len(ids)}


def test_test_connection_of_a_demo_organization_reaches_the_emulator(emulated: str, settings: Settings) -> None:
    org = _demo_org("gemini")
    got = provider_connection.test_connection(_admin(org), provider="gemini", settings=get_settings())
    assert got.ok, got.error
    assert got.endpoint == emulated and got.tags
    assert provider_admin.emulated_providers(_admin(org)) == {"google-vision": emulated, "gemini": emulated}
    real = make_org(provider="gemini")
    assert provider_admin.emulated_providers(_admin(real)) == {}


def test_the_seeded_demo_has_its_google_providers_enabled_and_emulated(emulated: str, settings: Settings) -> None:
    """The seed enables the providers its recent history used; under --emulate the Google ones answer."""
    from aiconsole.demo.seed import seed_demo

    org = seed_demo(settings=settings, days=1).organization_id
    with service_session() as s:
        ctx = load_org_context(s, organization_id=org)
    for name in ("gemini", "google-vision"):
        setup = ctx.setup(name)
        assert (setup.enabled, setup.emulated, setup.endpoint) == (True, True, emulated), name
        got = provider_connection.test_connection(_admin(org), provider=name, settings=get_settings())
        assert got.ok and got.tags, got.error
    assert ctx.setup("local").enabled and not ctx.setup("local").emulated
    assert ctx.experiment is None  # no experiment takes the live photos: they follow the pipeline (local)
