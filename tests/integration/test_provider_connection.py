""""Test connection" and the worker against the emulator with the SAVED, encrypted key: right key, wrong key,
unreachable, rate limited, timeout; a worker decrypts the stored key and its call succeeds; after an endpoint
change the old key is not sent to the new endpoint, and what a hostile endpoint answers is not echoed."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest
from sqlalchemy import select

from aiconsole.control import provider_admin, provider_connection
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import InProcessWorker, all_terminal, enqueue, make_org, wait_until  # noqa: E402

KEY = "AIzaSyIntegration-key_0123456789abcdQRST"[:39]
WRONG = "AIzaSyWrong-key-for-the-emulator_0123wxyz"[:39]


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test settings with the admin's allow-list naming the emulators' host (plain http on loopback), in
    the environment too: the worker reads its own Settings, and gives a stored key only to allowed hosts."""
    monkeypatch.setenv("AICONSOLE_PROVIDER_HOST_ALLOWLIST", "http://127.0.0.1")
    get_settings.cache_clear()
    allowed = get_settings()
    assert allowed.provider_host_allowlist == "http://127.0.0.1" and allowed.data_dir == settings.data_dir
    return allowed


def _admin(org: int) -> Actor:
    return Actor(user_id=None, email="admin@example.com", role="admin", organization_id=org)


def _configure(org: int, provider: str, endpoint: str, settings: Settings, *, key: str | None = KEY,
               timeout_s: float = 5.0) -> Actor:
    admin = _admin(org)
    row = provider_admin.get_provider(admin, provider=provider, settings=settings)
    provider_admin.save_provider(admin, provider=provider, enabled=True, rate_limit_per_minute=600,
                                 timeout_seconds=timeout_s, max_concurrency=4, endpoint=endpoint, region=None,
                                 expected_version=row.version, settings=settings)
    if key is not None:
        provider_admin.set_secret(admin, provider=provider, secret=key, settings=settings)
    return admin


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("provider", ["gemini", "google-vision"])
def test_the_right_key_answers_with_latency_and_tags_and_a_wrong_one_is_a_bad_key(
        settings: Settings, emulator_factory: Callable[..., EmulatorServer], provider: str) -> None:
    emulator = emulator_factory(api_key=KEY, latency_ms=(30, 30))
    org = make_org(provider=provider, endpoint=emulator.url, prompt=None)
    admin = _configure(org, provider, emulator.url, settings)
    ok = provider_connection.test_connection(admin, provider=provider, settings=settings)
    assert ok.ok and ok.verdict == "ok" and ok.used_stored_key, ok
    assert ok.latency_ms >= 30 and 1 <= len(ok.tags) <= provider_connection.TEST_MAX_LABELS
    assert all(0 <= conf <= 1 for _label, conf in ok.tags) and ok.endpoint == emulator.url
    assert emulator.request_log[-1][2] == 200

    provider_admin.set_secret(admin, provider=provider, secret=WRONG, settings=settings)
    bad = provider_connection.test_connection(admin, provider=provider, settings=settings)
    assert (bad.ok, bad.error_kind, bad.verdict) == (False, "auth", "bad key")
    assert bad.error is not None and "API key not valid" in bad.error and WRONG not in bad.error
    assert "Check the API key" in bad.error


def test_unreachable_rate_limited_and_timeout_are_told_apart(
        settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    org = make_org(provider="gemini", endpoint="http://127.0.0.1:9", prompt=None)
    down = f"http://127.0.0.1:{_free_port()}"
    admin = _configure(org, "gemini", down, settings)
    gone = provider_connection.test_connection(admin, provider="gemini", settings=settings)
    assert (gone.error_kind, gone.verdict) == ("connection", "unreachable") and gone.error is not None
    assert down in gone.error and KEY not in gone.error

    stopped = emulator_factory(api_key=KEY)
    stopped.stop()
    version = provider_admin.get_provider(admin, provider="gemini", settings=settings).version
    provider_admin.save_provider(admin, provider="gemini", enabled=True, rate_limit_per_minute=600,
                                 timeout_seconds=5, max_concurrency=4, endpoint=stopped.url, region=None,
                                 expected_version=version, settings=settings)
    assert provider_connection.test_connection(admin, provider="gemini", settings=settings).verdict == "unreachable"

    limited = emulator_factory(api_key=KEY, error_rate_429=1.0)
    _configure(org, "google-vision", limited.url, settings)
    result = provider_connection.test_connection(admin, provider="google-vision", settings=settings)
    assert (result.error_kind, result.verdict) == ("rate_limited", "rate limited")
    assert result.error is not None and "HTTP 429" in result.error

    slow = emulator_factory(api_key=KEY, timeout_rate=1.0, timeout_s=5.0)
    version = provider_admin.get_provider(admin, provider="gemini", settings=settings).version
    provider_admin.save_provider(admin, provider="gemini", enabled=True, rate_limit_per_minute=600,
                                 timeout_seconds=1, max_concurrency=4, endpoint=slow.url, region=None,
                                 expected_version=version, settings=settings)
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=settings)  # the move removed it
    late = provider_connection.test_connection(admin, provider="gemini", settings=settings)
    assert (late.error_kind, late.verdict) == ("timeout", "timeout") and 900 <= late.latency_ms < 4500


def test_a_key_saved_under_another_secret_key_is_reported_not_raised(
        settings: Settings, emulator: EmulatorServer) -> None:
    org = make_org(provider="gemini", endpoint=emulator.url, prompt=None)
    admin = _configure(org, "gemini", emulator.url, settings)
    rotated = Settings(data_dir=settings.data_dir, secret_key="z" * 40,  # type: ignore[arg-type]
                       provider_host_allowlist=settings.provider_host_allowlist)
    result = provider_connection.test_connection(admin, provider="gemini", settings=rotated)
    assert (result.error_kind, result.verdict) == ("config", "key cannot be decrypted")
    assert emulator.request_log == []


def test_a_worker_uses_the_stored_key(settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    emulator = emulator_factory(api_key=KEY)
    org = make_org(provider="gemini", endpoint=emulator.url, max_retries=1)
    _configure(org, "gemini", emulator.url, settings, key=None)
    [without] = enqueue(org, 1, settings=settings)
    with InProcessWorker(concurrency=1, batch_size=1, calls={"breaker_error_rate": 1.0}):
        wait_until(lambda: all_terminal(org, 1), timeout_s=60, what="the keyless photo to fail")
    provider_admin.set_secret(_admin(org), provider="gemini", secret=KEY, settings=settings)
    [with_key] = enqueue(org, 1, start=1, settings=settings)
    with InProcessWorker(concurrency=1, batch_size=1):
        wait_until(lambda: all_terminal(org, 2), timeout_s=60, what="the photo with the stored key")
    with service_session() as s:
        status = dict(s.execute(select(Photo.id, Photo.status).where(Photo.organization_id == org)).all())
        kinds = dict(s.execute(select(AiProcessingResult.photo_id, AiProcessingResult.error_kind).where(
            AiProcessingResult.organization_id == org)).all())
    assert status[without] == "failed" and kinds[without] == "auth"
    assert status[with_key] in ("completed", "needs_review") and kinds[with_key] is None
    assert [code for _t, _p, code in emulator.request_log] == [400, 200]


def test_after_an_endpoint_change_test_connection_does_not_send_the_old_key(
        settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    # Both emulators accept KEY: a request carrying it is answered 200, one without it 403/400.
    trusted, other = emulator_factory(api_key=KEY), emulator_factory(api_key=KEY)
    org = make_org(provider="google-vision", endpoint=None, prompt=None)
    admin = _configure(org, "google-vision", trusted.url, settings)
    assert provider_connection.test_connection(admin, provider="google-vision", settings=settings).ok
    assert [code for _t, _p, code in trusted.request_log] == [200]  # the key went where it was saved for

    version = provider_admin.get_provider(admin, provider="google-vision", settings=settings).version
    moved = provider_admin.save_provider(admin, provider="google-vision", enabled=True, rate_limit_per_minute=600,
                                         timeout_seconds=5, max_concurrency=4, endpoint=other.url, region=None,
                                         expected_version=version, settings=settings)
    assert not moved.has_secret and "stored key" in moved.notice
    result = provider_connection.test_connection(admin, provider="google-vision", settings=settings)
    assert (result.ok, result.used_stored_key, result.endpoint) == (False, False, other.url)
    # The new endpoint got a request without the key (403: no API key), never one with it (200).
    assert [code for _t, _p, code in other.request_log] == [403]
    assert result.error is not None and KEY not in result.error and KEY[4:] not in result.error


def test_a_hostile_endpoint_s_answer_is_trimmed_and_the_key_scrubbed(settings: Settings) -> None:
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the http.server hook name
            # Reflect everything it was sent (the key included) in a long error body.
            seen = f"{self.path} {self.headers.get('x-goog-api-key')} " + "<pre>" + "leak " * 2000
            body = json.dumps({"error": {"code": 400, "message": seen, "status": "INVALID_ARGUMENT"}}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        org = make_org(provider="gemini", endpoint=None, prompt=None)
        admin = _configure(org, "gemini", url, settings)
        result = provider_connection.test_connection(admin, provider="gemini", settings=settings)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.ok, result.error_kind) == (False, "bad_request") and result.error is not None
    reason, hint = result.error.split("…", 1) if "…" in result.error else (result.error, "")
    assert result.error.startswith("gemini answered HTTP 400: ") and len(reason) < 200
    assert "leak leak" in reason and result.error.count("leak") < 40  # a short reason, not the whole body
    assert KEY not in result.error and KEY[4:] not in result.error
    assert "Check the image and the model settings" in hint  # aiconsole's own hint follows
