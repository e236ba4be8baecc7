"""`aiconsole up`: migrate, seed the demo if the database is empty, run the console, its workers and the
demo organizations' traffic (aiconsole.demo.traffic)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from aiconsole.admin import users
from aiconsole.cli.common import handles_errors, load_settings, migrate_database
from aiconsole.platform import migrate
from aiconsole.platform.errors import ConfigError, ValidationFailed

COMPANION_STOP_S = 40.0

commands = typer.Typer()


def streamlit_command(*, app_path: Path, host: str, port: int, headless: bool) -> list[str]:
    """The `python -m streamlit run` command line for the console."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true" if headless else "false",
            "--browser.gatherUsageStats", "false"]


def run_forwarding_signals(command: Sequence[str], *, companions: Sequence[Sequence[str]] = ()) -> int:
    """Run `command` (and `companions` beside it), pass SIGINT/SIGTERM on, return `command`'s exit code.

    Companions (the worker next to the console) are stopped with SIGTERM when the main command ends, and
    given time to finish what they hold.
    """
    # Own sessions, so a terminal's Ctrl-C reaches each child once, through us, not twice.
    child = subprocess.Popen(list(command), start_new_session=True)  # noqa: S603 (our own argv)
    others = [subprocess.Popen(list(c), start_new_session=True) for c in companions]  # noqa: S603

    def forward(signum: int, _frame: FrameType | None) -> None:
        for proc in (child, *others):
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
        for proc in others:
            if proc.poll() is None:
                proc.terminate()
        for proc in others:
            try:
                proc.wait(timeout=COMPANION_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


@commands.command()
@handles_errors
def up(
    port: Annotated[int | None, typer.Option(help="Port of the console (default AICONSOLE_PORT, 8501).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default AICONSOLE_HOST).")] = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not seed the demo on an empty database.")] = False,
    open_browser: Annotated[bool, typer.Option("--open-browser", help="Open the console in a web browser.")] = False,
    workers: Annotated[int, typer.Option(min=0, max=16, help="Worker processes to start beside the console.")] = 1,
    concurrency: Annotated[int | None, typer.Option(
        min=1, max=512, help="The most provider calls each worker runs at once (default: the organizations' "
                             "Parallel calls per worker, on the Pipeline page).")] = None,
    emulate: Annotated[bool, typer.Option("--emulate", help="Serve the local Vision/Gemini emulator and send demo "
                                          "organizations' google-vision and gemini calls to it.")] = False,
    no_demo_traffic: Annotated[bool, typer.Option("--no-demo-traffic", help="Do not send the demo organizations "
                                                  "their stream of sample photos.")] = False,
    demo_traffic_rate: Annotated[float, typer.Option(min=0.001, max=10_000, help="Demo traffic as a multiple of its "
                                                     "realistic rate (1: ~3 photos a minute at a weekday's peak, "
                                                     "fewer at night).")] = 1.0,
) -> None:
    """Migrate, seed the demo organization if the database has none, and run the console and a worker until
    stopped (Ctrl+C stops both; the worker finishes the photos it holds). Demo organizations get a gentle stream
    of sample photos, at their time zone's time of day, unless --no-demo-traffic."""
    settings = load_settings()
    host = host or settings.host
    port = port or settings.port
    if not 1 <= port <= 65535:
        raise ValidationFailed(f"Port {port} is out of range.", hint="Use a port between 1 and 65535.")
    app_path = migrate.ROOT / "app.py"
    if not app_path.is_file():
        raise ConfigError(f"The console's app.py is missing at {app_path}.",
                          hint="Run aiconsole from a checkout of the repository (pip install -e .).")
    migrate_database(settings)
    if not no_demo and not users.all_organizations(settings=settings):
        typer.echo("Empty database: seeding the demo organization...")
        # A child process: the seed's working memory (~0.5 GB) goes back to the OS before the console runs.
        seeded = subprocess.run([sys.executable, "-m", "aiconsole", "demo"], check=False)
        if seeded.returncode != 0:
            raise typer.Exit(seeded.returncode)
    has_demo = any(o.is_demo for o in users.all_organizations(settings=settings))
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (comparing, not binding)
    typer.secho(f"aiconsole console: http://{shown}:{port}", fg=typer.colors.GREEN, bold=True)
    if has_demo:
        from aiconsole.demo.seed import DEMO_LOGINS

        typer.echo("Demo logins (email / password / role):")
        width = max(len(email) for email, _, _ in DEMO_LOGINS)
        for email, password, role in DEMO_LOGINS:
            typer.echo(f"  {email:<{width}}  {password}  {role}")
    typer.echo("Press Ctrl+C to stop.")
    if open_browser:
        # Streamlit stays headless (otherwise it asks for an email on first run and dies without a terminal).
        threading.Timer(3.0, webbrowser.open, args=(f"http://{shown}:{port}",)).start()
    if emulate:
        from aiconsole.providers.emulation import start_demo_emulator

        emulator = start_demo_emulator()  # serves from this process, beside the children it waits for
        # The console and the workers read it from the environment they inherit.
        os.environ["AICONSOLE_DEMO_EMULATOR_URL"] = emulator.url
        typer.echo(f"Emulator at {emulator.url}: demo organizations' google-vision and gemini calls go there "
                   "(make one active on the Pipeline page).")
    worker_cmd = [sys.executable, "-m", "aiconsole", "worker"]
    if concurrency:  # without it the workers follow each organization's Parallel calls per worker (Pipeline)
        worker_cmd += ["--concurrency", str(concurrency)]
    if workers:
        calls = f"at most {concurrency} parallel calls each" if concurrency else "parallel calls as set on Pipeline"
        typer.echo(f"Starting {workers} worker process{'' if workers == 1 else 'es'}, {calls}.")
    companions = [worker_cmd] * workers
    if has_demo and not no_demo_traffic:
        typer.echo("Demo traffic: sample photos arrive in the demo organizations at their local time of day's "
                   "rate (--no-demo-traffic to stop it).")
        companions.append([sys.executable, "-m", "aiconsole", "demo-traffic", "--rate", str(demo_traffic_rate)])
    code = run_forwarding_signals(streamlit_command(app_path=app_path, host=host, port=port, headless=True),
                                  companions=companions)
    raise typer.Exit(code)
