"""The `aiconsole` command: init, migrate, demo, user management, health and `up` (the console).

Every AiconsoleError becomes one red line with its hint and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.exc import OperationalError

from aiconsole.admin import users
from aiconsole.platform import migrate
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import ROLES
from aiconsole.platform.errors import AiconsoleError, ConfigError, NotFound, ValidationFailed
from aiconsole.platform.health import mask_secrets, system_health
from aiconsole.platform.settings import Settings, get_settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2

app = typer.Typer(
    name="aiconsole",
    help="Run and administer the aiconsole photo-tagging console and its processing workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Add, list, disable and enable user accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.secho(" ".join(message.split()), fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def handles_errors(func: F) -> F:
    """Turn the errors a user can act on into one red line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AiconsoleError as exc:
            _fail(f"Error: {exc}")
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            _fail(f"Error: cannot use the database: {mask_secrets(first)} "
                  "Check AICONSOLE_DATABASE_URL and that the server is running.")

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return get_settings()


def _migrate(settings: Settings) -> None:
    migrate.upgrade(settings.resolved_database_url)


def _resolve_org(ref: str | None, settings: Settings) -> users.OrganizationRow:
    """The organization named by --org, else the only one (real ones preferred over the demo)."""
    if ref:
        return users.find_organization(ref=ref, settings=settings)
    orgs = users.all_organizations(settings=settings)
    real = [o for o in orgs if not o.is_demo]
    for candidates in (orgs, real):
        if len(candidates) == 1:
            return candidates[0]
    if not orgs:
        raise NotFound("There is no organization yet.", hint="Run `aiconsole init` first.")
    raise ValidationFailed("There are several organizations; say which one.",
                           hint=f"Pass --org with one of: {', '.join(o.name for o in orgs)}.")


@app.command()
@handles_errors
def init(
    admin_email: Annotated[str | None, typer.Option(help="Email of the first admin (asked when omitted).")] = None,
    admin_password: Annotated[str | None, typer.Option(
        help="Password of the first admin (asked, hidden, when omitted).")] = None,
    org_name: Annotated[str | None, typer.Option(help="Name of the organization to create or use.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of a new organization.")] = "UTC",
) -> None:
    """Migrate the database and create the first organization and its admin, if there are none.

    The very first admin of an installation is a platform_admin (every organization); later ones are admins.
    """
    settings = _settings()
    _migrate(settings)
    real = [o for o in users.all_organizations(settings=settings) if not o.is_demo]
    if org_name:
        try:
            org = users.find_organization(ref=org_name, settings=settings)
        except NotFound:
            org = users.create_organization(name=org_name, timezone=timezone, created_by="cli", settings=settings)
            typer.echo(f"Created organization {org.name}.")
    elif not real:
        name = typer.prompt("Organization name", default="My Organization")
        org = users.create_organization(name=name, timezone=timezone, created_by="cli", settings=settings)
        typer.echo(f"Created organization {org.name}.")
    elif len(real) == 1:
        org = real[0]
    else:
        raise ValidationFailed("There are several organizations; say which one.",
                               hint=f"Pass --org-name with one of: {', '.join(o.name for o in real)}.")
    if users.count_active_admins(organization_id=org.id, settings=settings):
        typer.echo(f"{org.name} already has an active admin; nothing to do. "
                   "Add more users with `aiconsole user add`.")
        return
    email = admin_email or typer.prompt("Admin email")
    password = admin_password or typer.prompt("Admin password", hide_input=True, confirmation_prompt=True)
    first = users.count_active_admins(roles=frozenset({"platform_admin"}), include_demo=False,
                                      settings=settings) == 0
    role = "platform_admin" if first else "admin"
    row = users.create_user(Actor.system("cli", org.id), email=email, display_name="", role=role,
                            password=password, settings=settings)
    typer.echo(f"Created {row.email} ({row.role}) in {org.name}. Start the console with `aiconsole up`.")


@app.command("migrate")
@handles_errors
def migrate_command() -> None:
    """Apply every pending database migration (alembic upgrade head)."""
    settings = _settings()
    _migrate(settings)
    typer.echo(f"Database {mask_secrets(settings.resolved_database_url)} is at the latest schema.")


@app.command()
@handles_errors
def demo(
    force: Annotated[bool, typer.Option("--force", help="Delete the demo organization and seed it again.")] = False,
    days: Annotated[int, typer.Option(min=1, max=90, help="Days of history to generate.")] = 30,
) -> None:
    """Seed the demo organization (Demo Photos Inc.): users for each role, photos and 30 days of history."""
    from aiconsole.demo.seed import seed_demo

    settings = _settings()
    _migrate(settings)
    typer.echo(str(seed_demo(settings=settings, force=force, days=days)))


@user_app.command("add")
@handles_errors
def user_add(
    email: Annotated[str, typer.Argument(help="The user's email (their login).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "viewer",
    name: Annotated[str, typer.Option(help="Display name (default: the part before @).")] = "",
    org: Annotated[str | None, typer.Option(help="Organization id, slug or name (default: the only one).")] = None,
    password: Annotated[str | None, typer.Option(help="Password (asked, hidden, when omitted).")] = None,
    sso: Annotated[bool, typer.Option("--sso", help="No local password: signs in through OIDC only.")] = False,
) -> None:
    """Add a user to an organization."""
    settings = _settings()
    target = _resolve_org(org, settings)
    users.validate_email(email)
    users.validate_role(role)
    if not sso and password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    row = users.create_user(Actor.system("cli", target.id), email=email, display_name=name, role=role,
                            password=None if sso else password, settings=settings)
    typer.echo(f"Added {row.email} ({row.role}) to {target.name}.")


@user_app.command("list")
@handles_errors
def user_list(
    org: Annotated[str | None, typer.Option(help="Only this organization (id, slug or name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List user accounts (of every organization unless --org is given)."""
    settings = _settings()
    orgs = [users.find_organization(ref=org, settings=settings)] if org else users.all_organizations(
        settings=settings)
    rows = [(o, u) for o in orgs for u in users.list_users(Actor.system("cli", o.id), settings=settings)]
    if as_json:
        typer.echo(json.dumps([{"id": u.id, "email": u.email, "display_name": u.display_name, "role": u.role,
                                "organization": o.name, "is_active": u.is_active, "sso_only": not u.has_password,
                                "locked_until": u.locked_until.isoformat() if u.locked_until else None,
                                "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
                               for o, u in rows], indent=2))
        return
    if not rows:
        typer.echo("No users yet. Add one with `aiconsole user add EMAIL --role admin`.")
        return
    table = [("EMAIL", "ROLE", "ORGANIZATION", "STATE", "LAST LOGIN")]
    for o, u in rows:
        state = "active" if u.is_active else "disabled"
        if u.locked_until is not None:
            state += f", locked until {u.locked_until:%Y-%m-%d %H:%M} UTC"
        last = f"{u.last_login_at:%Y-%m-%d %H:%M} UTC" if u.last_login_at else "never"
        table.append((u.email, u.role, o.name, state, last))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def _set_active(email: str, active: bool) -> None:
    settings = _settings()
    row = users.find_user(email=email, settings=settings)
    if row is None:
        raise NotFound(f"There is no user with email {email.strip()}.", hint="See `aiconsole user list`.")
    done = users.set_active(Actor.system("cli", row.organization_id), user_id=row.id, active=active,
                            settings=settings)
    typer.echo(f"{done.email} is {'enabled' if done.is_active else 'disabled'}.")


@user_app.command("disable")
@handles_errors
def user_disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Disable a user and end their sessions (the last active admin of an organization stays)."""
    _set_active(email, False)


@user_app.command("enable")
@handles_errors
def user_enable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Enable a user again (also clears a login lockout)."""
    _set_active(email, True)


@app.command()
@handles_errors
def health(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Check the database, Redis and worker heartbeats; exit code 1 unless everything is healthy."""
    report = system_health(settings=_settings())
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        colors = {"healthy": typer.colors.GREEN, "degraded": typer.colors.YELLOW, "down": typer.colors.RED}
        typer.secho(f"aiconsole: {report.status}", fg=colors[report.status], bold=True)
        for check in report.checks:
            typer.secho(f"  {check.name:<9} {check.status:<9} {check.message}", fg=colors.get(check.status))
    if report.status != "healthy":
        raise typer.Exit(1)


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


@app.command()
@handles_errors
def up(
    port: Annotated[int | None, typer.Option(help="Port of the console (default AICONSOLE_PORT, 8501).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default AICONSOLE_HOST).")] = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not seed the demo on an empty database.")] = False,
    open_browser: Annotated[bool, typer.Option("--open-browser", help="Open the console in a web browser.")] = False,
    workers: Annotated[int, typer.Option(min=0, max=16, help="Worker processes to start beside the console.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="Provider calls in flight per worker.")] = 4,
    emulate: Annotated[bool, typer.Option("--emulate", help="Serve the local Vision/Gemini emulator and send demo "
                                          "organizations' google-vision and gemini calls to it.")] = False,
) -> None:
    """Migrate, seed the demo organization if the database has none, and run the console and a worker until
    stopped (Ctrl+C stops both; the worker finishes the photos it holds)."""
    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    if not 1 <= port <= 65535:
        raise ValidationFailed(f"Port {port} is out of range.", hint="Use a port between 1 and 65535.")
    app_path = migrate.ROOT / "app.py"
    if not app_path.is_file():
        raise ConfigError(f"The console's app.py is missing at {app_path}.",
                          hint="Run aiconsole from a checkout of the repository (pip install -e .).")
    _migrate(settings)
    if not no_demo and not users.all_organizations(settings=settings):
        typer.echo("Empty database: seeding the demo organization...")
        # A child process: the seed's working memory (~0.5 GB) goes back to the OS before the console runs.
        seeded = subprocess.run([sys.executable, "-m", "aiconsole", "demo"], check=False)
        if seeded.returncode != 0:
            raise typer.Exit(seeded.returncode)
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (comparing, not binding)
    typer.secho(f"aiconsole console: http://{shown}:{port}", fg=typer.colors.GREEN, bold=True)
    if any(o.is_demo for o in users.all_organizations(settings=settings)):
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
                   "(enable them on the Providers page).")
    worker_cmd = [sys.executable, "-m", "aiconsole", "worker", "--concurrency", str(concurrency)]
    if workers:
        typer.echo(f"Starting {workers} worker process(es), concurrency {concurrency} each.")
    code = run_forwarding_signals(streamlit_command(app_path=app_path, host=host, port=port, headless=True),
                                  companions=[worker_cmd] * workers)
    raise typer.Exit(code)


COMPANION_STOP_S = 40.0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `aiconsole` script and `python -m aiconsole`."""
    app(args=list(argv) if argv is not None else None, prog_name="aiconsole")


# The pipeline commands (worker, enqueue, emulate) register themselves on `app`; imported last because
# they import from this module.
from aiconsole.cli import pipeline as cli_pipeline  # noqa: E402, F401
