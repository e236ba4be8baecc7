"""Downloading an image for `aiconsole enqueue URL`: http(s) only, one total deadline, the byte limit counted
while the body streams in.

urllib's own timeout applies to each socket operation, so a server that sends a byte now and then would keep
a download going for ever; here a watchdog shuts the connection's socket down when the deadline passes,
which wakes whatever read (headers, TLS handshake, body) is waiting.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import PurePosixPath
from types import TracebackType
from urllib.parse import unquote, urlsplit

from aiconsole.platform.errors import ValidationFailed

URL_DEADLINE_S = 30.0
URL_AGENT = "aiconsole-enqueue/1"
CHUNK_BYTES = 64 * 1024
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_url(ref: str) -> bool:
    """Whether `ref` is written as a URL (`scheme://...`), whatever its scheme."""
    return _SCHEME.match(ref) is not None


class _Watchdog:
    """Shuts down every socket of one download once `deadline_s` has passed."""

    def __init__(self, deadline_s: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer = threading.Timer(deadline_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # OSError: already closed, or detached into the TLS socket that is watched as well.
    with contextlib.suppress(OSError):
        # The plain socket's shutdown, also on a TLS socket: it wakes the blocked read at the OS level without
        # touching the TLS state, which belongs to the reading thread.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """An http(s)-only opener (redirects to ftp: or file: go nowhere) whose sockets `watchdog` guards."""

    class HTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    # HTTPConnection.connect above runs inside HTTPSConnection.connect: the raw socket is guarded during the
    # TLS handshake, the TLS socket that takes it over afterwards.
    class HTTPSConnection(http.client.HTTPSConnection, HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    context = ssl.create_default_context()

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPSConnection, req, context=context)

    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), HTTPHandler(),
                    HTTPSHandler(context=context), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def fetch_url(url: str, *, max_bytes: int, deadline_s: float = URL_DEADLINE_S) -> tuple[str, bytes]:
    """(filename, bytes) of an http(s) URL, downloaded within `deadline_s` in all (connecting, headers and
    body) and refused as soon as more than `max_bytes` arrive."""
    shown = url[:200]
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationFailed(f"'{shown}' has the unsupported scheme '{parts.scheme}': use http(s) or a file path.",
                               hint="Download the file and enqueue it from disk, or give an https:// URL.")
    if not parts.netloc:
        raise ValidationFailed(f"'{shown}' is not an http(s) URL.", hint="Give a URL such as https://host/a.jpg.")
    name = unquote(PurePosixPath(parts.path).name) or parts.netloc
    request = urllib.request.Request(url, headers={"User-Agent": URL_AGENT})  # noqa: S310 (scheme checked above)
    too_big = ValidationFailed(f"{shown} is larger than the {max_bytes:,} bytes allowed.",
                               hint="Raise AICONSOLE_MAX_UPLOAD_BYTES or use a smaller image.")
    data = bytearray()
    timed_out = False
    with _Watchdog(deadline_s) as watchdog:
        try:
            with _opener(watchdog).open(request, timeout=deadline_s) as resp:
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ValidationFailed(f"{shown} is {int(declared):,} bytes, more than the {max_bytes:,} "
                                           "allowed.", hint="Raise AICONSOLE_MAX_UPLOAD_BYTES or use a smaller image.")
                while chunk := resp.read1(CHUNK_BYTES):
                    data += chunk
                    if len(data) > max_bytes:
                        raise too_big
        except urllib.error.HTTPError as exc:
            if not watchdog.expired:
                raise ValidationFailed(f"{shown} answered HTTP {exc.code} {exc.reason}.",
                                       hint="Check that the URL is right and publicly readable.") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            # A socket timeout is the deadline too (connecting, before the watchdog has a socket to shut).
            timed_out = isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)
            if not (watchdog.expired or timed_out):
                raise ValidationFailed(f"Could not download {shown}: {reason}.",
                                       hint="Check the URL and the network.") from None
    # A shut-down socket can also look like the end of the body: the deadline decides, not how reading ended.
    if watchdog.expired or timed_out:
        raise ValidationFailed(f"{shown} did not finish downloading within {deadline_s:g} s ({len(data):,} bytes "
                               f"received, at most {max_bytes:,} allowed).",
                               hint="Check that the server answers promptly, or download the file and enqueue it "
                                    "from disk.")
    return name, bytes(data)
