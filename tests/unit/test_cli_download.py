"""`aiconsole enqueue URL` downloads: a total deadline, the byte limit while streaming, http(s) only.

Against real HTTP servers on 127.0.0.1 that misbehave on purpose (drip, stream without end).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from aiconsole.admin import users
from aiconsole.cli.download import fetch_url
from aiconsole.cli.main import app
from aiconsole.cli.pipeline import expand_paths, read_input
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

Respond = Callable[[BaseHTTPRequestHandler, threading.Event], None]
DEADLINE_S = 1.5
MARGIN_S = 1.0
DRIP_S = 0.3  # shorter than the deadline: a per-read timeout alone never fires, only a total deadline does
LIMIT = 4096


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], str]]:
    """Start an HTTP server on 127.0.0.1 answering every GET with `respond`; returns a URL on it."""
    stop = threading.Event()
    servers: list[ThreadingHTTPServer] = []

    def start(respond: Respond) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    respond(self, stop)

            def log_message(self, format: str, *args: object) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/photo.jpg"

    yield start
    stop.set()  # ends every handler that is still dripping
    for server in servers:
        server.shutdown()
        server.server_close()


def _fetch_bounded(url: str, **kwargs: float) -> tuple[float, BaseException | None]:
    """(seconds taken, the exception raised) of fetch_url in a thread, so a hang fails instead of blocking."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fetch_url(url, max_bytes=LIMIT, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(DEADLINE_S + 5)
    assert not thread.is_alive(), f"fetch_url still downloading {url} after {time.monotonic() - start:.1f} s"
    return time.monotonic() - start, raised[0] if raised else None


def _drip_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    while True:
        handler.wfile.write(b"x")
        if stop.wait(DRIP_S):
            return


def _drip_headers(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    for byte in b"Content-Type: image/jpeg\r\nX-Padding: " + b"y" * 200:
        handler.wfile.write(bytes([byte]))
        if stop.wait(DRIP_S):
            return


@pytest.mark.parametrize("respond", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_a_dripping_server_fails_at_the_total_deadline(serve: Callable[[Respond], str], respond: Respond) -> None:
    url = serve(respond)
    elapsed, error = _fetch_bounded(url, deadline_s=DEADLINE_S)
    assert isinstance(error, ValidationFailed), error
    assert DEADLINE_S - 0.1 <= elapsed <= DEADLINE_S + MARGIN_S
    message = str(error)
    assert url in message and f"within {DEADLINE_S:g} s" in message and f"{LIMIT:,}" in message


def _endless_body(handler: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")  # no Content-Length: only counting can stop it
    handler.end_headers()
    while not stop.is_set():
        handler.wfile.write(b"z" * 1024)
        time.sleep(0.01)


def test_a_body_over_the_limit_fails_with_the_limit_in_the_message(serve: Callable[[Respond], str]) -> None:
    url = serve(_endless_body)
    elapsed, error = _fetch_bounded(url, deadline_s=DEADLINE_S + 3)
    assert isinstance(error, ValidationFailed), error
    assert elapsed < DEADLINE_S  # refused at the limit, long before the deadline
    assert url in str(error) and f"the {LIMIT:,} bytes allowed" in str(error)


def test_a_small_body_arrives_whole(serve: Callable[[Respond], str]) -> None:
    def small(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"p" * 3000)

    assert fetch_url(serve(small), max_bytes=LIMIT, deadline_s=DEADLINE_S) == ("photo.jpg", b"p" * 3000)


@pytest.mark.parametrize("ref", ["ftp://127.0.0.1/a.jpg", "file:///etc/hostname", "gopher://example.com/x.png"])
def test_other_schemes_are_refused_not_read_as_paths(settings: Settings, ref: str) -> None:
    assert list(expand_paths([ref])) == [ref]
    with pytest.raises(ValidationFailed) as caught:
        read_input(ref, settings)
    scheme = ref.split(":", 1)[0]
    assert f"unsupported scheme '{scheme}'" in str(caught.value) and "use http(s) or a file path" in str(caught.value)


def test_enqueue_reports_an_ftp_url_as_an_unsupported_scheme(settings: Settings) -> None:
    users.create_organization(name="Solo", settings=settings)
    result = CliRunner().invoke(app, ["enqueue", "ftp://127.0.0.1/a.jpg"])
    assert result.exit_code == 1, result.output
    assert "rejected  ftp://127.0.0.1/a.jpg: 'ftp://127.0.0.1/a.jpg' has the unsupported scheme 'ftp'" in (
        result.output)
