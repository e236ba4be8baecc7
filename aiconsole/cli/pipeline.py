"""Pipeline commands on the `aiconsole` CLI: `worker`, `enqueue` and `emulate`.

`aiconsole.cli.main` adds `commands` to the app.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aiconsole.cli.common import handles_errors, load_settings, resolve_org
from aiconsole.cli.download import fetch_url, is_url
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import DEFAULT_PARALLEL_CALLS
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

if TYPE_CHECKING:
    from aiconsole.pipeline.intake import EnqueueReport, FileVerdict

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MAX_BATCH_BYTES = 64 * 1024 * 1024

commands = typer.Typer()


# ----------------------------------------------------------------------------------------------- inputs


def expand_paths(refs: Iterable[str]) -> Iterator[str]:
    """Files as given, folders as every image file under them (sorted), URLs (any scheme) as they are."""
    for ref in refs:
        if is_url(ref):
            yield ref
            continue
        path = Path(ref).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                yield str(child)
        else:
            yield str(path)


def read_input(ref: str, settings: Settings) -> tuple[str, bytes]:
    """(filename, bytes) of a local file or an http(s) URL, size-checked before it is read whole."""
    if is_url(ref):
        return fetch_url(ref, max_bytes=settings.max_upload_bytes)
    path = Path(ref)
    if not path.is_file():
        raise ValidationFailed(f"{ref} does not exist or is not a file.", hint="Check the path.")
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        raise ValidationFailed(f"{path.name} is {size:,} bytes, more than the {settings.max_upload_bytes:,} allowed.",
                               hint="Raise AICONSOLE_MAX_UPLOAD_BYTES or use a smaller image.")
    return path.name, path.read_bytes()


def enqueue_refs(actor: Actor, refs: Iterable[str], *, priority: int, settings: Settings) -> EnqueueReport:
    """Enqueue files, folders and URLs in bounded batches; a file that cannot be read is reported, not fatal.

    Verdicts come back in the order the inputs were given.
    """
    # Imported here: intake brings in Live Status (and pandas), which `aiconsole worker` has no use for.
    from aiconsole.pipeline.intake import MAX_FILES_PER_BATCH, EnqueueReport, FileVerdict, enqueue_files

    verdicts: list[FileVerdict | None] = []
    batch: list[tuple[int, str, bytes]] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if batch:
            done = enqueue_files(actor, [(name, data) for _, name, data in batch], priority=priority,
                                 source="cli", settings=settings).verdicts
            for (slot, _, _), verdict in zip(batch, done, strict=True):
                verdicts[slot] = verdict
        batch, size = [], 0

    for ref in expand_paths(refs):
        verdicts.append(None)
        try:
            name, data = read_input(ref, settings)
        except ValidationFailed as exc:
            verdicts[-1] = FileVerdict(ref, "rejected", str(exc))
            continue
        if len(batch) >= MAX_FILES_PER_BATCH or size + len(data) > MAX_BATCH_BYTES:
            flush()
        batch.append((len(verdicts) - 1, name, data))
        size += len(data)
    flush()
    return EnqueueReport(verdicts=[v for v in verdicts if v is not None])


# --------------------------------------------------------------------------------------------- commands


@commands.command()
@handles_errors
def enqueue(
    paths: Annotated[list[str], typer.Argument(help="Image files, folders (searched recursively) or http(s) URLs.")],
    org: Annotated[str | None, typer.Option(help="Organization id, slug or name (default: the only one).")] = None,
    priority: Annotated[int, typer.Option(min=0, max=100, help="0 = normal, 100 = first.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the summary and the rejections.")] = False,
) -> None:
    """Queue photos for processing; every file gets a verdict (queued, already known, rejected and why).

    Exit code 1 when any file was rejected.
    """
    settings = load_settings()
    target = resolve_org(org, settings)
    report = enqueue_refs(Actor.system("cli", target.id), paths, priority=priority, settings=settings)
    if not report.verdicts:
        raise ValidationFailed("No image files were found in what was given.",
                               hint=f"Folders are searched for {', '.join(sorted(IMAGE_SUFFIXES))} files.")
    colors = {"queued": typer.colors.GREEN, "duplicate": typer.colors.YELLOW, "rejected": typer.colors.RED}
    for v in report.verdicts:
        if not quiet or v.outcome == "rejected":
            typer.secho(f"{v.outcome:<9} {v.filename}: {v.message}", fg=colors.get(v.outcome),
                        err=v.outcome == "rejected")
    typer.echo(f"{target.name}: {report.summary}.")
    if report.count("rejected"):
        raise typer.Exit(1)


@commands.command()
@handles_errors
def worker(
    concurrency: Annotated[int | None, typer.Option(
        min=1, max=512, help="The most provider calls this worker runs at once (default: as many as each "
                             "organization's Parallel calls per worker on the Pipeline page, "
                             f"{DEFAULT_PARALLEL_CALLS} unless changed).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Photos claimed and recorded per batch.")] = 50,
    lease_seconds: Annotated[int | None, typer.Option(
        min=5, help="Lease per claim; heartbeats extend it (default AICONSOLE_LEASE_SECONDS).")] = None,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between claims when idle.")] = 1.0,
    metrics_port: Annotated[int | None, typer.Option(
        min=0, max=65535, help="Serve Prometheus metrics on this port (0: any free port).")] = None,
    metrics_addr: Annotated[str, typer.Option(help="Address of the metrics endpoint.")] = "127.0.0.1",
    stop_timeout: Annotated[float, typer.Option(min=0, help="Seconds in-flight calls get on SIGTERM.")] = 30.0,
    worker_id: Annotated[str | None, typer.Option(help="Name in the workers table (default host:pid:random).")] = None,
) -> None:
    """Process the queue until SIGTERM/SIGINT: claim, call providers concurrently, record results.

    Run more workers (on more machines, against one PostgreSQL) to go faster.
    """
    from aiconsole.pipeline.worker import Worker
    from aiconsole.pipeline.worker_config import WorkerOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    wid = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    options = WorkerOptions(stop_timeout_s=stop_timeout, metrics_port=metrics_port, metrics_addr=metrics_addr)
    w = Worker(wid, concurrency, batch_size, lease_seconds or settings.lease_seconds, poll_interval, settings,
               options=options)
    calls = (f"at most {concurrency} parallel calls" if concurrency else
             "parallel calls per worker as each organization sets them on the Pipeline page")
    typer.echo(f"worker {wid}: {calls}, batch {batch_size}. Ctrl+C to stop.")
    report = w.run()
    typer.echo(f"worker {wid} stopped: {report.recorded} recorded ({report.failed} failed), "
               f"{report.retried} retries scheduled, {report.released} released.")


def _floats(text: str) -> tuple[float, float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a number or a min,max pair of milliseconds.") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise typer.BadParameter(f"'{text}' is not a number or a min,max pair of milliseconds.")


@commands.command()
@handles_errors
def emulate(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 8787,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    latency_ms: Annotated[str, typer.Option(help="Latency per request: N or MIN,MAX (uniform).")] = "0",
    error_rate_429: Annotated[float, typer.Option(min=0, max=1, help="Share of requests answered 429.")] = 0.0,
    error_rate_500: Annotated[float, typer.Option(min=0, max=1, help="Share answered 500.")] = 0.0,
    error_rate_503: Annotated[float, typer.Option(min=0, max=1, help="Share answered 503.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(min=0, max=1, help="Share held for --timeout-s, then 504.")] = 0.0,
    timeout_s: Annotated[float, typer.Option(min=0, help="How long a 'timeout' request is held.")] = 30.0,
    malformed_rate: Annotated[float, typer.Option(min=0, max=1, help="Share answered with unusable bodies.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault draws (same seed, same faults).")] = 0,
) -> None:
    """Run the local Vision/Gemini emulator (point a provider's endpoint at the printed URL)."""
    from aiconsole.providers.emulator import EmulatorServer

    server = EmulatorServer(host, port, seed=seed, latency_ms=_floats(latency_ms), error_rate_429=error_rate_429,
                            error_rate_500=error_rate_500, error_rate_503=error_rate_503, timeout_rate=timeout_rate,
                            timeout_s=timeout_s, malformed_rate=malformed_rate)
    typer.secho(f"emulator: {server.url} (Vision POST /v1/images:annotate, Gemini POST "
                "/v1beta/models/<model>:generateContent). Ctrl+C to stop.", fg=typer.colors.GREEN)

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell starting us in the background leaves SIGINT ignored, and SIGTERM should stop
    # the emulator as cleanly as Ctrl+C does.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("emulator stopped.")
