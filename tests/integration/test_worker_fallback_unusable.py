"""The fallback is used (issue 10 item 3): when the primary cannot be used at all (a bad key, an unreachable
endpoint), every photo is served by the fallback in the same attempt instead of burning its attempts; a
photo the provider refuses as bad input fails on its own, without the fallback, with a groupable reason."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from aiconsole.pipeline import failures
from aiconsole.platform import secrets_box
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, ProviderConfig
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulator import GEMINI_PATH, EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    InProcessWorker,
    all_terminal,
    enqueue,
    make_org,
    wait_until,
)

pytestmark = pytest.mark.slow
KEY = "AIzaSyFallback-test-key_0123456789abcdQR"[:39]
WRONG = "AIzaSyWrong-key-for-the-emulator_0123wxyz"[:39]
PHOTOS = 24
# The breaker's defaults (10 calls at 50%): the photos before it opens are the ones that used to fail.
CALLS = {"retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2}


@pytest.fixture
def settings(any_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The test database with the emulators' host allow-listed (plain http on loopback), for the worker too."""
    monkeypatch.setenv("AICONSOLE_PROVIDER_HOST_ALLOWLIST", "http://127.0.0.1")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is: connections are refused


def _gemini_org(endpoint: str, key: str, settings: Settings) -> int:
    org = make_org(provider="gemini", endpoint=endpoint, fallback="local", max_retries=3)
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "gemini")
                  .values(encrypted_secret=secrets_box.encrypt(key, settings=settings), secret_last4=key[-4:]))
    return org


def _photos(org: int) -> list[Any]:
    with service_session() as s:
        return list(s.execute(select(Photo.id, Photo.status, Photo.attempts).where(Photo.organization_id == org)))


def _results(org: int) -> list[AiProcessingResult]:
    with service_session() as s:
        return list(s.scalars(select(AiProcessingResult).where(AiProcessingResult.organization_id == org)
                              .order_by(AiProcessingResult.id)))


def _run(org: int, n: int, settings: Settings) -> None:
    ids = enqueue(org, n, settings=settings)
    with InProcessWorker(concurrency=2, batch_size=4, calls=CALLS):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=120, what="every photo processed")


def _assert_all_served_by_the_fallback(org: int, kind: str) -> None:
    photos = _photos(org)
    assert Counter(p.status for p in photos)["failed"] == 0, Counter(p.status for p in photos)
    assert {p.attempts for p in photos} == {1}  # no attempt spent on the primary's failure
    results = _results(org)
    assert len(results) == PHOTOS and {r.ai_provider for r in results} == {"local"}
    routes = [next(step for step in r.trace if step["step"] == "route" and step.get("fallback")) for r in results]
    assert len(routes) == PHOTOS
    # The photos before the breaker opened tried gemini first and moved over in the same attempt.
    moved = [r for r in results if any(s["step"] == "fallback" for s in r.trace)]
    assert moved, "no photo shows the primary's failure in its trace"
    step = next(s for s in moved[0].trace if s["step"] == "fallback")
    assert (step["from"], step["to"], step["kind"]) == ("gemini", "local", kind)
    assert step["reason_kind"] == failures.reason_kind(kind)


def test_a_bad_key_moves_every_photo_to_the_fallback(settings: Settings,
                                                     emulator_factory: Any) -> None:
    gemini: EmulatorServer = emulator_factory(api_key=KEY)
    org = _gemini_org(gemini.url, WRONG, settings)
    _run(org, PHOTOS, settings)
    _assert_all_served_by_the_fallback(org, "auth")
    statuses = Counter(status for _, path, status in gemini.request_log if GEMINI_PATH.match(path))
    assert set(statuses) == {400}  # API_KEY_INVALID, and only until the breaker opened
    assert sum(statuses.values()) < PHOTOS


def test_an_unreachable_endpoint_moves_every_photo_to_the_fallback(settings: Settings) -> None:
    org = _gemini_org(f"http://127.0.0.1:{_closed_port()}", KEY, settings)
    _run(org, PHOTOS, settings)
    _assert_all_served_by_the_fallback(org, "connection")


def test_a_bad_photo_fails_alone_and_does_not_move_to_the_fallback(settings: Settings,
                                                                   emulator_factory: Any) -> None:
    gemini: EmulatorServer = emulator_factory(api_key=KEY)
    org = _gemini_org(gemini.url, KEY, settings)
    ids = enqueue(org, 6, settings=settings)
    with service_session() as s:
        uri = s.scalar(select(Photo.storage_uri).where(Photo.id == ids[0]))
    assert uri is not None
    settings.photo_dir.joinpath(*uri.split("/")[1:]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a picture" * 40)
    with InProcessWorker(concurrency=2, batch_size=4, calls=CALLS):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="every photo processed")
    by_photo = {r.photo_id: r for r in _results(org)}
    bad = by_photo[ids[0]]
    assert (bad.status, bad.ai_provider, bad.error_kind) == ("failed", "gemini", "bad_request")
    assert not any(step.get("fallback") for step in bad.trace if step["step"] in ("route", "fallback"))
    assert {by_photo[i].ai_provider for i in ids[1:]} == {"gemini"}
    assert {p.attempts for p in _photos(org)} == {1}
    groups = failures.failed_groups(organization_id=org)
    assert [(g.reason_kind, g.count, g.sample_photo_ids) for g in groups] == [("bad_photo", 1, (ids[0],))]


def test_a_passing_fault_is_retried_on_the_primary_and_moves_on_the_last_attempt(
        settings: Settings, emulator_factory: Any) -> None:
    gemini: EmulatorServer = emulator_factory(api_key=KEY, error_rate_503=1.0)
    org = _gemini_org(gemini.url, KEY, settings)
    ids = enqueue(org, 6, settings=settings)
    # A breaker that never opens here: each photo's own attempts decide.
    with InProcessWorker(concurrency=2, batch_size=4, calls={**CALLS, "breaker_min_calls": 1000}):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=60, what="every photo processed")
    assert {(p.status, p.attempts) for p in _photos(org)} <= {("completed", 3), ("needs_review", 3)}
    for r in _results(org):
        step = next(s for s in r.trace if s["step"] == "fallback")
        assert (r.ai_provider, step["kind"], step["reason_kind"]) == ("local", "server_error", "provider_error")
    assert sum(1 for _, path, _ in gemini.request_log if GEMINI_PATH.match(path)) == 3 * len(ids)
