"""Run Alembic migrations from code (the CLI, `up`, tests) with the same Settings everyone reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from aiconsole.platform.db.types import UTCDateTime
from aiconsole.platform.errors import AiconsoleError, ConfigError
from aiconsole.platform.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


def safe_url(url: str) -> str:
    """`url` with its password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for migrations/ pointed at `url` (default: the configured database, as the service
    role, which owns the tables)."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url or get_settings().resolved_service_database_url
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    cfg = alembic_config(url)
    _guarded(cfg, lambda: command.upgrade(cfg, revision))


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    cfg = alembic_config(url)
    _guarded(cfg, lambda: command.downgrade(cfg, revision))


def head_revision() -> str:
    """The newest revision in migrations/."""
    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    assert head is not None, "migrations/ has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision `engine`'s database is at (None: never migrated)."""
    with _connect_errors(str(engine.url)), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def pending_revisions(engine: Engine) -> list[str]:
    """Revisions not yet applied to `engine`'s database, oldest first (empty when up to date)."""
    script = ScriptDirectory(str(ROOT / "migrations"))
    current = current_revision(engine)
    pending = script.iterate_revisions("heads", current or "base")
    return [rev.revision for rev in reversed(list(pending))]


def render_item(type_: str, obj: Any, _autogen_context: Any) -> str | Literal[False]:
    """Autogenerate hook: write application column types as plain SQLAlchemy, so migrations stay frozen."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _guarded(cfg: Config, run: Callable[[], None]) -> None:
    with _connect_errors(cfg.attributes["url"]):
        run()


@contextmanager
def _connect_errors(url: str) -> Iterator[None]:
    """Turn "cannot connect" driver errors into an AiconsoleError naming the URL but not its password."""
    try:
        yield
    except ArgumentError as exc:
        raise ConfigError(
            f"The database URL {safe_url(url)} is not valid: {exc}.",
            hint="Set AICONSOLE_DATABASE_URL to e.g. postgresql://user:password@host:5432/dbname "
            "or sqlite:////absolute/path/aiconsole.db.",
        ) from exc
    except OSError as exc:
        # make_engine creates the SQLite file's directory; a path we cannot create lands here.
        if not url.startswith("sqlite"):
            raise
        raise AiconsoleError(
            f"Cannot open the SQLite database at {safe_url(url)}: {exc.strerror or exc} ({exc.filename}).",
            hint="Point AICONSOLE_DATA_DIR (or AICONSOLE_DATABASE_URL) at a directory this user can write.",
        ) from exc
    except (OperationalError, InterfaceError) as exc:
        # Only connection failures: an error inside a migration (bad DDL) must surface as itself.
        if not _is_connect(exc):
            raise
        reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
        raise AiconsoleError(
            f"Cannot reach the database at {safe_url(url)}: {_mask(reason, url)}.",
            hint="Check that the server is running and that host, port, database name, user and "
            "password in AICONSOLE_DATABASE_URL are right (for SQLite: that the directory is writable).",
        ) from exc


def _is_connect(exc: OperationalError | InterfaceError) -> bool:
    # SQLAlchemy marks errors raised while opening a connection with no statement.
    return exc.statement is None or exc.statement == ""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(err).__name__


def _mask(message: str, url: str) -> str:
    try:
        password = make_url(url).password
    except ArgumentError:
        return message
    return message.replace(str(password), "***") if password else message
