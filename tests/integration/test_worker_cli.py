"""`aiconsole enqueue` (files, folders, URLs, bad inputs), `aiconsole worker` as a process with its
Prometheus endpoint and health rows, and `aiconsole emulate` serving the Vision wire format."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner
from worker_processes import all_terminal, make_org, tiny_png, wait_until

from aiconsole.cli.main import app
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProviderHealth, Photo
from aiconsole.platform.migrate import ROOT
from aiconsole.platform.settings import Settings

runner = CliRunner()
CLI = [sys.executable, "-m", "aiconsole"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` pixels in a few bytes (a decompression bomb's shape)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    root = tmp_path / "web"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_enqueue_files_folders_and_urls_with_a_verdict_each(settings: Settings, tmp_path: Path,
                                                             web_root: tuple[Path, str]) -> None:
    org = make_org(provider="local", name="CLI Org")
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(tiny_png(1))
    (folder / "nested" / "b.png").write_bytes(tiny_png(2))
    (folder / "readme.txt").write_text("not collected: folders are searched for image files only")
    single = tmp_path / "c.png"
    single.write_bytes(tiny_png(3))
    root, base = web_root
    (root / "d.png").write_bytes(tiny_png(4))
    result = runner.invoke(app, ["enqueue", str(folder), str(single), f"{base}/d.png", "--org", "CLI Org",
                                 "--priority", "7"])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("queued ") for line in result.output.splitlines()) == 4
    assert "CLI Org: 4 queued, 0 already known, 0 rejected." in result.output
    with service_session() as s:
        rows = s.execute(select(Photo.filename, Photo.priority, Photo.source).where(Photo.organization_id == org)
                         .order_by(Photo.filename)).all()
    assert [tuple(r) for r in rows] == [(f"{n}.png", 7, "cli") for n in "abcd"]
    again = runner.invoke(app, ["enqueue", str(single), "--org", "CLI Org"])
    assert again.exit_code == 0 and "already in this organization" in again.output.lower()


def test_bad_inputs_are_rejected_with_a_specific_message(settings: Settings, tmp_path: Path,
                                                         web_root: tuple[Path, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    make_org(provider="local", name="Strict Org")
    good = tiny_png(9)
    files = {"empty.jpg": b"", "notes.jpg": b"these are my holiday notes\n" * 40, "cut.png": good[: len(good) // 2],
             "bomb.png": _png_header(9_000, 9_000), "big.png": tiny_png(10, side=400)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    root, base = web_root
    monkeypatch.setenv("AICONSOLE_MAX_UPLOAD_BYTES", "2048")
    from aiconsole.platform.settings import get_settings

    get_settings.cache_clear()
    assert len(files["big.png"]) > 2048
    (root / "big_remote.png").write_bytes(files["big.png"])
    result = runner.invoke(app, ["enqueue", *(str(tmp_path / n) for n in files), f"{base}/big_remote.png",
                                 f"{base}/missing.png", str(tmp_path / "nowhere.png"), "--org", "Strict Org"])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "empty.jpg: 'empty.jpg' is empty (0 bytes)" in out
    assert "notes.jpg: 'notes.jpg' is not an image: its content is plain text" in out
    assert "cut.png: 'cut.png' is a PNG image that cannot be decoded (image file is truncated)" in out
    assert "bomb.png: 'bomb.png' is 9,000 x 9,000 = 81,000,000 pixels, over the limit of 60,000,000" in out
    assert "big.png: big.png is 4,277 bytes, more than the 2,048 allowed" in out
    assert "big_remote.png is 4,277 bytes, more than the 2,048 allowed" in out  # refused by Content-Length
    assert "missing.png answered HTTP 404" in out
    assert "nowhere.png does not exist" in out
    assert "Strict Org: 0 queued, 0 already known, 8 rejected." in out
    names = [re.match(r"rejected\s+(\S+?): ", line).group(1).rsplit("/", 1)[-1]  # type: ignore[union-attr]
             for line in result.output.splitlines() if line.startswith("rejected")]
    assert names == [*files, "big_remote.png", "missing.png", "nowhere.png"]  # in the order given


def test_worker_process_serves_metrics_and_stops_on_sigterm(settings: Settings,
                                                                           tmp_path: Path) -> None:
    from aiconsole.providers.emulator import EmulatorServer

    with EmulatorServer() as emulator:
        org = make_org(provider="google-vision", endpoint=emulator.url)
        for i in range(6):
            (tmp_path / f"{i}.png").write_bytes(tiny_png(100 + i))
        assert runner.invoke(app, ["enqueue", str(tmp_path), "--org", str(org)]).exit_code == 0
        port = _free_port()
        proc = subprocess.Popen([*CLI, "worker", "--concurrency", "2", "--batch-size", "3", "--metrics-port",
                                 str(port), "--poll-interval", "0.1"], cwd=ROOT, env=dict(os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: all_terminal(org, 6), timeout_s=60, what="the CLI worker to process 6 photos")

            def scrape() -> str:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    return str(resp.read().decode())
            wait_until(lambda: 'aiconsole_queue_depth{status="pending"} 0.0' in scrape(), timeout_s=30,
                       what="the queue depth gauge")
            body = scrape()
            assert 'aiconsole_photos_processed_total{provider="google-vision",status="succeeded"} 6.0' in body
            assert 'aiconsole_provider_latency_seconds_count{provider="google-vision"} 6.0' in body
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert "stopped: 6 recorded (0 failed)" in out.decode()


def test_health_rows_come_from_the_workers_calls(settings: Settings) -> None:
    from worker_processes import InProcessWorker, enqueue

    from aiconsole.providers.emulator import EmulatorServer

    with EmulatorServer(error_rate_500=0.25, seed=3) as emulator:
        org = make_org(provider="google-vision", endpoint=emulator.url, max_retries=5)
        enqueue(org, 40, settings=settings)
        with InProcessWorker(concurrency=4, health_interval_s=0.5,
                             calls={"retry_base_delay_s": 0.01, "breaker_error_rate": 1.0}):
            wait_until(lambda: all_terminal(org, 40), timeout_s=60, what="40 photos processed")
            time.sleep(0.8)
    with service_session() as s:
        rows = s.scalars(select(AiProviderHealth).where(AiProviderHealth.organization_id == org)).all()
    calls = sum(r.error_details["calls"] for r in rows if r.error_details)
    failures = sum(r.error_details["failures"] for r in rows if r.error_details)
    errors = sum(1 for _, _, status in emulator.request_log if status == 500)
    assert calls == len(emulator.request_log) and failures == errors > 0
    assert {r.provider_name for r in rows} == {"google-vision"}
    assert all(r.status in ("healthy", "degraded", "down") and r.response_time_ms is not None for r in rows)


def test_emulate_command_speaks_the_vision_wire_format() -> None:
    port = _free_port()
    proc = subprocess.Popen([*CLI, "emulate", "--port", str(port), "--latency-ms", "1,3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = json.dumps({"requests": [{"image": {"content": base64.b64encode(tiny_png(5)).decode()},
                                         "features": [{"type": 4, "maxResults": 3}]}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/images:annotate", data=body,
                                         headers={"Content-Type": "application/json"})

        def answered() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=2) as resp:
                    return bool(resp.status == 200 and json.loads(resp.read())["responses"][0]["labelAnnotations"])
            except OSError:
                return False
        wait_until(answered, timeout_s=30, what="the emulator to answer")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    text = out.decode()
    assert f"emulator: http://127.0.0.1:{port}" in text and "emulator stopped." in text
