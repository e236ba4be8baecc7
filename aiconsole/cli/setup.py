"""Setting an installation up: `aiconsole init`, `migrate`, `demo` and `health`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated

import typer

from aiconsole.admin import users
from aiconsole.cli.common import handles_errors, load_settings, migrate_database
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import roles
from aiconsole.platform.errors import NotFound, ValidationFailed
from aiconsole.platform.health import mask_secrets, system_health

commands = typer.Typer()


@commands.command()
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
    settings = load_settings()
    migrate_database(settings)
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


@commands.command("migrate")
@handles_errors
def migrate_command() -> None:
    """Apply every pending database migration (alembic upgrade head)."""
    settings = load_settings()
    migrate_database(settings)
    typer.echo(f"Database {mask_secrets(settings.resolved_database_url)} is at the latest schema.")


@commands.command()
@handles_errors
def demo(
    force: Annotated[bool, typer.Option("--force", help="Delete the demo organization and seed it again.")] = False,
    days: Annotated[int, typer.Option(min=1, max=90, help="Days of history to generate.")] = 30,
) -> None:
    """Seed the demo organization (Demo Photos Inc.): users for each role, photos and 30 days of history."""
    from aiconsole.demo.seed import seed_demo

    settings = load_settings()
    migrate_database(settings)
    typer.echo(str(seed_demo(settings=settings, force=force, days=days)))


@commands.command("demo-traffic", hidden=True)
@handles_errors
def demo_traffic(
    rate: Annotated[float, typer.Option(min=0.001, max=10_000, help="Multiple of the demo's realistic rate.")] = 1.0,
    interval: Annotated[float | None, typer.Option(min=0.05, help="Seconds between batches (default: by rate).")
                        ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the stream (with the start time).")] = 0,
) -> None:
    """Send the demo organizations a diurnal stream of sample photos until stopped (`aiconsole up` runs this)."""
    from aiconsole.demo.traffic import DemoTraffic, interval_for

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    traffic = DemoTraffic(settings=load_settings(), seed=seed, rate=rate,
                          interval_s=interval if interval is not None else interval_for(rate))
    queued = traffic.run(stop)
    typer.echo(f"demo traffic stopped: {queued:,} photos queued.")


@commands.command()
@handles_errors
def health(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Check the database, Redis and worker heartbeats; exit code 1 unless everything is healthy."""
    report = system_health(settings=load_settings())
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        colors = {"healthy": typer.colors.GREEN, "degraded": typer.colors.YELLOW, "down": typer.colors.RED}
        typer.secho(f"aiconsole: {report.status}", fg=colors[report.status], bold=True)
        for check in report.checks:
            typer.secho(f"  {check.name:<9} {check.status:<9} {check.message}", fg=colors.get(check.status))
    if report.status != "healthy":
        raise typer.Exit(1)


@commands.command("db-roles")
@handles_errors
def db_roles(
    console_role: Annotated[str, typer.Option("--console", help="The console's role (owns nothing).")] = (
        roles.DEFAULT_CONSOLE_ROLE),
    service_role: Annotated[str, typer.Option("--service", help="The service role (owns the tables).")] = (
        roles.DEFAULT_SERVICE_ROLE),
) -> None:
    """Print the SQL that creates the two PostgreSQL roles (run it with psql as a superuser)."""
    try:
        script = roles.role_setup_sql(console_role, service_role)
    except ValueError as exc:  # a role name that is not a plain identifier
        raise ValidationFailed(str(exc)) from exc
    typer.echo(script, nl=False)
