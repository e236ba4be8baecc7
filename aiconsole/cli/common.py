"""What every `aiconsole` command shares: the error boundary, settings, migrating and --org resolution.

Every AiconsoleError becomes one red line with its hint and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from sqlalchemy.exc import OperationalError

from aiconsole.admin import users
from aiconsole.platform import migrate
from aiconsole.platform.errors import AiconsoleError, NotFound, ValidationFailed
from aiconsole.platform.health import mask_secrets
from aiconsole.platform.settings import Settings, get_settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2

def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print `message` as one red line on stderr and exit with `code`."""
    typer.secho(" ".join(message.split()), fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def handles_errors(func: F) -> F:
    """Turn the errors a user can act on into one red line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AiconsoleError as exc:
            fail(f"Error: {exc}")
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            fail(f"Error: cannot use the database: {mask_secrets(first)} "
                 "Check AICONSOLE_DATABASE_URL and that the server is running.")

    return wrapper  # type: ignore[return-value]


def load_settings() -> Settings:
    """The process's settings (environment and .env)."""
    return get_settings()


def migrate_database(settings: Settings) -> None:
    """Bring the configured database to the latest schema (as the service role, which owns the tables)."""
    migrate.upgrade(settings.resolved_service_database_url)


def resolve_org(ref: str | None, settings: Settings) -> users.OrganizationRow:
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
