"""System health: the database (and its migrations), Redis when configured, and worker heartbeats.

Each check catches its own failure and reports the exact error, with any password in a URL masked, so
one broken part never hides the state of the others.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from aiconsole.platform import formatting as fmt
from aiconsole.platform.db.engine import get_engine, get_service_engine, service_session
from aiconsole.platform.db.models import Worker
from aiconsole.platform.db.rls import role_bypasses_rls, unprotected_tables
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.migrate import pending_revisions
from aiconsole.platform.settings import Settings, get_settings

STATUSES = ("healthy", "degraded", "down")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)=([^&\s'\"]+)")


def mask_secrets(message: str) -> str:
    """`message` with passwords inside URLs (and password= parameters) replaced by ***."""
    message = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", message)
    return _QUERY_PASSWORD.sub(lambda m: f"{m[1]}=***", message)


def _error_text(exc: BaseException) -> str:
    # SQLAlchemy appends a long "Background on this error" link; the first line is the useful part.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return mask_secrets(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


@dataclass(frozen=True)
class WorkerBeat:
    """One worker process and how long ago it last reported."""

    id: str
    hostname: str
    pid: int
    status: str
    concurrency: int
    processed_count: int
    last_heartbeat_at: datetime
    seconds_since_heartbeat: float
    stale: bool
    last_error: str | None = None  # why an 'unhealthy' worker cannot work (Redis or the database down)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: status, a sentence for people, figures for machines."""

    name: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """All checks at one moment; `status` is the worst of them (the database decides 'down')."""

    checked_at: datetime
    checks: list[CheckResult]

    @property
    def status(self) -> str:
        """healthy, degraded or down."""
        database = next((c for c in self.checks if c.name == "database"), None)
        if database is not None and database.status == "down":
            return "down"
        return "healthy" if all(c.status == "healthy" for c in self.checks) else "degraded"

    def check(self, name: str) -> CheckResult:
        """The check called `name` (KeyError if there is none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _plain({"status": self.status, "checked_at": self.checked_at,
                       "checks": [asdict(c) for c in self.checks]})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    try:
        return check()
    except Exception as exc:  # a health check reports failures instead of raising them
        return CheckResult(name=name, status="down", message=f"{name} check failed: {_error_text(exc)}",
                           error=_error_text(exc))


def _rls_mode(settings: Settings, dialect: str) -> str:
    if dialect != "postgresql":
        return "none"  # SQLite has no row-level security: the application's filters alone
    return "two roles" if settings.separate_service_role else "single role"


def _service_role_passes(settings: Settings) -> bool:
    """Whether the role service work connects as gets past the policies (it must, to serve every org)."""
    with get_service_engine(settings).connect() as conn:
        return role_bypasses_rls(conn)


def check_database(settings: Settings) -> CheckResult:
    """Reachable, round-trip time, dialect, whether migrations are up to date, and on PostgreSQL which
    roles row-level security binds: the console's must be bound, the service role must not."""
    engine = get_engine(settings)
    postgres = engine.dialect.name == "postgresql"
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1")).scalar_one()
        round_trip_ms = round((time.perf_counter() - started) * 1000, 2)
        bypass = postgres and role_bypasses_rls(conn)
        unprotected = unprotected_tables(conn) if postgres else []
    mode = _rls_mode(settings, engine.dialect.name)
    try:
        service_passes = _service_role_passes(settings) if postgres else True
    except Exception as exc:  # login and every worker need this connection: say which one failed
        return CheckResult(name="database", status="down", error=_error_text(exc),
                           message=f"{engine.dialect.name} reachable ({round_trip_ms} ms) as the console's role, "
                                   f"but the service role's connection (AICONSOLE_SERVICE_DATABASE_URL) failed: "
                                   f"{_error_text(exc)}")
    pending = pending_revisions(engine)
    details = {"dialect": engine.dialect.name, "round_trip_ms": round_trip_ms, "pending_migrations": pending,
               "url": engine.url.render_as_string(hide_password=True), "role_bypasses_rls": bypass,
               "tables_without_rls": unprotected, "rls_mode": mode, "service_role_bypasses_rls": service_passes,
               "service_url": get_service_engine(settings).url.render_as_string(hide_password=True)}
    if pending:
        return CheckResult(name="database", status="degraded", details=details,
                           message=f"{engine.dialect.name} reachable ({round_trip_ms} ms) but "
                                   f"{fmt.plural(len(pending), 'migration')} not applied: run `aiconsole migrate`.")
    message = f"{engine.dialect.name} reachable ({round_trip_ms} ms); migrations up to date."
    if unprotected:
        return CheckResult(name="database", status="degraded", details=details,
                           message=f"{message} Row-level security is off on {', '.join(unprotected)}: "
                                   "run `aiconsole migrate`.")
    if not service_passes:
        return CheckResult(name="database", status="degraded", details=details,
                           message=f"{message} The service role is bound by row-level security (it neither owns "
                                   "the tables nor has BYPASSRLS), so workers, login and the CLI see no "
                                   "organization: point AICONSOLE_SERVICE_DATABASE_URL at the tables' owner "
                                   "(docs/postgres-roles.sql).")
    if bypass:
        # Still serving, but only the application's own filters keep organizations apart.
        message += (" The console's database role bypasses row-level security (superuser, BYPASSRLS or the "
                    "tables' owner), so only the application's filters keep organizations apart: connect the "
                    "console as its own role and service work as the owner (AICONSOLE_SERVICE_DATABASE_URL, "
                    "docs/postgres-roles.sql).")
        # With two roles configured this is a mistake, not a choice: the console was meant to be bound.
        status = "degraded" if mode == "two roles" else "healthy"
        return CheckResult(name="database", status=status, details=details, message=message)
    # One URL means one role, and it passed the service check above, so here it is always two roles or none.
    if mode == "two roles":
        message += (" Row-level security binds the console's role to one organization; service work runs as "
                    "the tables' owner.")
    else:
        message += " SQLite has no row-level security: the application's filters keep organizations apart."
    return CheckResult(name="database", status="healthy", details=details, message=message)


def check_redis(settings: Settings) -> CheckResult:
    """Ping the configured Redis, or say the in-process cache is in use."""
    if not settings.redis_url:
        return CheckResult(name="redis", status="healthy", details={"configured": False},
                           message="Redis not configured, in-process cache.")
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        started = time.perf_counter()
        client.ping()
        ping_ms = round((time.perf_counter() - started) * 1000, 2)
    finally:
        client.close()
    return CheckResult(name="redis", status="healthy", message=f"Redis answered in {ping_ms} ms.",
                       details={"configured": True, "ping_ms": ping_ms,
                                "url": mask_secrets(settings.redis_url)})


def worker_beats(settings: Settings, *, now: datetime | None = None) -> list[WorkerBeat]:
    """Every registered worker with the seconds since its last heartbeat, most recent first."""
    now = now or utcnow()
    with service_session(settings=settings) as s:
        rows = s.scalars(select(Worker).order_by(Worker.last_heartbeat_at.desc())).all()
        beats = []
        for w in rows:
            age = max(0.0, (now - w.last_heartbeat_at).total_seconds())
            beats.append(WorkerBeat(id=w.id, hostname=w.hostname, pid=w.pid, status=w.status,
                                    concurrency=w.concurrency, processed_count=w.processed_count,
                                    last_heartbeat_at=w.last_heartbeat_at,
                                    seconds_since_heartbeat=round(age, 1),
                                    stale=age > settings.worker_stale_seconds, last_error=w.last_error))
        return beats


def check_workers(settings: Settings) -> CheckResult:
    """At least one worker with a heartbeat newer than `worker_stale_seconds`; none running is degraded, and so
    is any worker reporting itself unhealthy (it holds its photos until Redis or the database answers)."""
    beats = worker_beats(settings)
    live = [b for b in beats if b.status != "stopped" and not b.stale]
    stale = [b for b in beats if b.status != "stopped" and b.stale]
    unhealthy = [b for b in live if b.status == "unhealthy"]
    details: dict[str, Any] = {"live": len(live), "stale": len(stale), "unhealthy": len(unhealthy),
                               "stale_after_seconds": settings.worker_stale_seconds,
                               "workers": [asdict(b) for b in beats]}
    if not live:
        message = "No worker running: photos wait in the queue until a worker starts."
        if stale:
            newest = min(b.seconds_since_heartbeat for b in stale)
            message += (f" {fmt.plural(len(stale), 'worker')} stopped reporting, the latest {newest:.0f} s ago "
                        f"(stale after {settings.worker_stale_seconds} s).")
        return CheckResult(name="workers", status="degraded", message=message, details=details)
    message = f"{fmt.plural(len(live), 'worker')} running, last heartbeat {live[0].seconds_since_heartbeat:.0f} s ago."
    if stale:
        # Workers killed without a clean shutdown leave rows behind; they are listed, not alarming.
        message += f" {fmt.plural(len(stale), 'other')} silent for more than {settings.worker_stale_seconds} s."
    if unhealthy:
        named = "; ".join(f"{b.id}: {mask_secrets(b.last_error or 'no reason given').rstrip('.')}"
                          for b in unhealthy[:3])
        more = f" (and {len(unhealthy) - 3} more)" if len(unhealthy) > 3 else ""
        message = (f"{len(unhealthy):,} of {fmt.plural(len(live), 'worker')} unhealthy, holding their photos "
                   f"until it clears: {named}{more}. {message}")
        return CheckResult(name="workers", status="degraded", message=message, details=details)
    return CheckResult(name="workers", status="healthy", message=message, details=details)


def system_health(*, settings: Settings | None = None) -> HealthReport:
    """Run every check and collect them into one report (never raises for a failing part)."""
    settings = settings or get_settings()
    checks = [
        _guarded("database", lambda: check_database(settings)),
        _guarded("redis", lambda: check_redis(settings)),
        _guarded("workers", lambda: check_workers(settings)),
    ]
    return HealthReport(checked_at=utcnow(), checks=checks)
