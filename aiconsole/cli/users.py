"""`aiconsole user add | list | disable | enable`: user accounts from the command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from aiconsole.admin import users
from aiconsole.cli.common import handles_errors, load_settings, resolve_org
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import ROLES
from aiconsole.platform.errors import NotFound

commands = typer.Typer(help="Add, list, disable and enable user accounts.", no_args_is_help=True)


@commands.command("add")
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
    settings = load_settings()
    target = resolve_org(org, settings)
    users.validate_email(email)
    users.validate_role(role)
    if not sso and password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    row = users.create_user(Actor.system("cli", target.id), email=email, display_name=name, role=role,
                            password=None if sso else password, settings=settings)
    typer.echo(f"Added {row.email} ({row.role}) to {target.name}.")


@commands.command("list")
@handles_errors
def user_list(
    org: Annotated[str | None, typer.Option(help="Only this organization (id, slug or name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List user accounts (of every organization unless --org is given)."""
    settings = load_settings()
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
    settings = load_settings()
    row = users.find_user(email=email, settings=settings)
    if row is None:
        raise NotFound(f"There is no user with email {email.strip()}.", hint="See `aiconsole user list`.")
    done = users.set_active(Actor.system("cli", row.organization_id), user_id=row.id, active=active,
                            settings=settings)
    typer.echo(f"{done.email} is {'enabled' if done.is_active else 'disabled'}.")


@commands.command("disable")
@handles_errors
def user_disable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Disable a user and end their sessions (the last active admin of an organization stays)."""
    _set_active(email, False)


@commands.command("enable")
@handles_errors
def user_enable(email: Annotated[str, typer.Argument(help="The user's email.")]) -> None:
    """Enable a user again (also clears a login lockout)."""
    _set_active(email, True)
