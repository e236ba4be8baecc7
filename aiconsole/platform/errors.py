"""One exception tree. Every message says what went wrong and what the user can do about it."""

from __future__ import annotations


class AiconsoleError(Exception):
    """Base of every error aiconsole raises on purpose; `str(err)` is safe to show a user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class ConfigError(AiconsoleError):
    """A setting is missing or invalid."""


class ValidationFailed(AiconsoleError):
    """Input was refused; nothing was saved."""


class NotFound(AiconsoleError):
    """The thing asked for does not exist in this organization."""


class PermissionDenied(AiconsoleError):
    """The current user's role does not allow this action."""


class AuthError(AiconsoleError):
    """Login failed, the account is locked or disabled, or the session expired."""


class ConflictError(AiconsoleError):
    """Someone else changed the same thing first; reload and try again."""


class ImageRejected(ValidationFailed):
    """An uploaded or enqueued file is not an acceptable image."""


class ProviderError(AiconsoleError):
    """A vision provider call failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, kind: str, retryable: bool, hint: str | None = None) -> None:
        self.kind = kind
        self.retryable = retryable
        super().__init__(message, hint=hint)


class InfrastructureFault(AiconsoleError):
    """Redis or the database cannot be reached or is not ready: nobody's input is at fault, waiting helps.

    `component` is "Redis" or "database". The worker holds its photos (no attempt counted) until it answers.
    """

    def __init__(self, component: str, message: str, *, hint: str | None = None) -> None:
        self.component = component
        super().__init__(message, hint=hint)


def infrastructure_fault(exc: BaseException) -> InfrastructureFault | None:
    """`exc` as an InfrastructureFault when Redis or the database failed to connect or answer, else None.

    The one classification of the worker path: redis-py's ConnectionError and TimeoutError; SQLAlchemy's
    OperationalError, InterfaceError, pool TimeoutError and any error that invalidated its connection (a
    refused connection, a server gone away, a database that does not exist). Anything else (a bad row, a
    provider's answer, a bug) is not an infrastructure fault. SQLite reports bad SQL ("no such table",
    syntax) as an OperationalError too; those (SQLITE_ERROR) are bugs, its busy, locked, unopenable, I/O
    and full-disk errors are not.
    """
    if isinstance(exc, InfrastructureFault):
        return exc
    # Imported here: every module imports this one, most never need either library.
    from redis import exceptions as redis_errors
    from sqlalchemy import exc as db_errors

    reason = _first_line(exc)
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return InfrastructureFault("Redis", f"Redis does not answer ({reason}).",
                                   hint="Check that Redis (AICONSOLE_REDIS_URL) is running.")
    if isinstance(exc, db_errors.OperationalError) and getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_ERROR":
        return None
    if isinstance(exc, db_errors.OperationalError | db_errors.InterfaceError | db_errors.TimeoutError) or (
            isinstance(exc, db_errors.DBAPIError) and exc.connection_invalidated):
        return InfrastructureFault("database", f"The database does not answer ({reason}).",
                                   hint="Check that the database server (AICONSOLE_DATABASE_URL) is running.")
    return None


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and a "Background on this error" link; the first line says what failed.
    lines = [line.strip() for line in str(getattr(exc, "orig", None) or exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
