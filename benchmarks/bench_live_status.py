"""Live Status benchmark: the fragment's data functions on a big PostgreSQL and a big SQLite, and the page.

    .venv/bin/python benchmarks/bench_live_status.py            # full run: PG 1M photos / 5M results, SQLite 1M results
    .venv/bin/python benchmarks/bench_live_status.py --keep-pg  # keep the filled PG database for another run
    .venv/bin/python benchmarks/bench_live_status.py --reuse-pg aibench_live --skip-sqlite --explain

PostgreSQL: a fresh database created next to AICONSOLE_TEST_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test), migrated, filled set-based (INSERT ... SELECT FROM
generate_series), rollups rebuilt with `rollups.rebuild_rollups` (one INSERT ... SELECT), then VACUUM
ANALYZE as autovacuum would. It is timed through a LOGIN role without superuser or BYPASSRLS, so
row-level security applies as in production (--as-superuser to compare).
SQLite: a file in a temp dir filled the same way through a recursive CTE.
Then each Live Status data function and `live_snapshot` (cache disabled) runs 20 times after 2 warm-ups;
the median is the figure. Targets: <= 100 ms on PostgreSQL, <= 300 ms on SQLite for `live_snapshot`,
<= 1 s for an AppTest run of the whole page (app.py -> pages/live_status.py, logged in as an admin).
Results go to benchmarks/results/live_status.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, create_engine, event, func, select, text  # noqa: E402

from aiconsole.live import status as live_status  # noqa: E402
from aiconsole.pipeline.health_report import provider_health  # noqa: E402
from aiconsole.platform.db import dispose_engines, get_engine, service_session  # noqa: E402
from aiconsole.platform.db.models import (  # noqa: E402
    AiProcessingResult,
    AiProviderHealth,
    Organization,
    Photo,
    PipelineConfig,
    ProviderConfig,
    User,
)
from aiconsole.platform.migrate import upgrade  # noqa: E402
from aiconsole.platform.settings import get_settings, normalize_database_url  # noqa: E402

RESULTS_FILE = ROOT / "benchmarks" / "results" / "live_status.json"
TARGET_MS = {"postgresql": 100.0, "sqlite": 300.0}
PAGE_TARGET_MS = 1000.0
ADMIN_EMAIL = "admin@bench.example"
ADMIN_PASSWORD = "bench-password-2026"
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "status_cards": live_status.status_cards,
    "queue_monitor": live_status.queue_monitor,
    "cost_monitor": live_status.cost_monitor,
    "provider_health": provider_health,
    "live_snapshot": lambda **kw: live_status.live_snapshot(use_cache=False, **kw),
}


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# ------------------------------------------------------------------------------------------ SQL fill


class Dialect:
    """The few spellings that differ between PostgreSQL and SQLite in the fill statements."""

    def __init__(self, name: str) -> None:
        self.name = name

    def series(self) -> str:
        if self.name == "postgresql":
            return "g(i) AS (SELECT generate_series(CAST(:lo AS BIGINT), CAST(:hi AS BIGINT)))"
        return "RECURSIVE g(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM g WHERE i < :hi)"

    def days_before_now(self, expr: str) -> str:
        """A UTC timestamp `expr` (fractional) days before :now, in the column's storage format."""
        if self.name == "postgresql":
            return f"(CAST(:now AS TIMESTAMPTZ) - INTERVAL '1 day' * ({expr}))"
        # SQLAlchemy's SQLite DateTime text format, so string comparisons with bound datetimes hold.
        return f"(strftime('%Y-%m-%d %H:%M:%S', :now_jd - ({expr})) || '.000000')"

    def digest(self, expr: str) -> str:
        if self.name == "postgresql":
            return f"lpad(CAST({expr} AS TEXT), 64, '0')"
        return f"printf('%064d', {expr})"

    def json_empty(self) -> str:
        return "CAST('[]' AS JSONB)" if self.name == "postgresql" else "'[]'"


def _photos_sql(d: Dialect) -> str:
    status = ("CASE WHEN i <= :pending THEN 'pending' WHEN i <= :pending + :processing THEN 'processing' "
              "WHEN i % 37 = 0 THEN 'needs_review' WHEN i % 101 = 0 THEN 'failed' ELSE 'completed' END")
    recent = "i <= :pending + :processing"
    created = (f"CASE WHEN {recent} THEN {d.days_before_now('(i % 14400) / 86400.0')} "
               f"ELSE {d.days_before_now('30.0 * CAST(i - 1 AS DOUBLE PRECISION) / :hi')} END")
    return f"""
WITH {d.series()}
INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width, height,
    source, status, priority, attempts, lease_owner, lease_expires_at, next_attempt_at, last_error,
    created_at, started_at, completed_at, updated_at)
SELECT :org, {d.digest('i')}, 'bench://' || i, 'photo_' || i || '.jpg', 'image/jpeg',
    150000 + (i * 7919) % 400000, 1600, 1200, 'bench', status, i % 3,
    CASE WHEN status = 'pending' THEN i % 2 ELSE 1 END,
    CASE WHEN status = 'processing' THEN 'bench-worker-' || (i % 8) END,
    CASE WHEN status = 'processing' THEN {d.days_before_now('-60 / 86400.0')} END,
    CASE WHEN status = 'pending' AND i % 10 = 0 THEN {d.days_before_now('-(i % 120) / 1440.0')} END,
    CASE WHEN status = 'failed' THEN 'Provider timed out after 30 s' END,
    created, CASE WHEN status <> 'pending' THEN created END,
    CASE WHEN status IN ('completed', 'needs_review', 'failed') THEN created END, created
FROM (SELECT i, {status} AS status, {created} AS created FROM g) AS x
"""


def _results_sql(d: Dialect) -> str:
    provider = ("CASE WHEN i % 10 < 4 THEN 'google-vision' WHEN i % 10 < 8 THEN 'gemini' ELSE 'local' END")
    status = "CASE WHEN i % 53 = 0 THEN 'failed' WHEN i % 11 = 0 THEN 'needs_review' ELSE 'completed' END"
    return f"""
WITH {d.series()}
INSERT INTO ai_processing_results (organization_id, photo_id, ai_provider, model, status, tags, tag_count,
    avg_confidence, min_confidence, api_cost_micros, input_tokens, output_tokens, units,
    queue_wait_time_ms, provider_response_time_ms, total_processing_time_ms, retry_count, error_kind, error,
    trace, worker_id, created_at)
SELECT :org, :first_photo + ((i - 1) % :n_photos), provider,
    CASE provider WHEN 'google-vision' THEN 'label-detection' WHEN 'gemini' THEN 'gemini-2.5-flash'
         ELSE 'local-analyzer-v1' END,
    status, {d.json_empty()}, CASE WHEN status = 'failed' THEN 0 ELSE 3 + i % 8 END,
    CASE WHEN status = 'failed' THEN NULL ELSE 0.35 + ((i * 7919) % 6400) / 10000.0 END,
    CASE WHEN status = 'failed' THEN NULL ELSE 0.25 + ((i * 7919) % 6400) / 10000.0 END,
    CASE WHEN status = 'failed' THEN 0 WHEN provider = 'google-vision' THEN 1500
         WHEN provider = 'gemini' THEN 200 + i % 400 ELSE 0 END,
    CASE WHEN provider = 'gemini' THEN 378 + i % 50 ELSE 0 END,
    CASE WHEN provider = 'gemini' THEN 40 + i % 60 ELSE 0 END,
    CASE WHEN provider = 'google-vision' THEN 1 ELSE 0 END,
    CASE WHEN i % 97 = 0 THEN 300000 + (i * 31) % 3000000 ELSE (i * 104729) % 90000 END,
    latency, latency + 25, CASE WHEN i % 29 = 0 THEN 1 ELSE 0 END,
    CASE WHEN status = 'failed' THEN 'timeout' END,
    CASE WHEN status = 'failed' THEN 'Provider timed out after 30 s' END,
    {d.json_empty()}, 'bench-worker-' || (i % 8),
    {d.days_before_now('30.0 * CAST(i - 1 AS DOUBLE PRECISION) / :total')}
FROM (
    SELECT i, provider, status,
        CASE WHEN status = 'failed' THEN 30000 WHEN provider = 'google-vision' THEN 120 + (i * 31) % 600
             WHEN provider = 'gemini' THEN 400 + (i * 17) % 2600 ELSE 15 + i % 60 END AS latency
    FROM (SELECT i, {provider} AS provider, {status} AS status FROM g) AS y
) AS x
"""


def _julian(ts: datetime) -> float:
    return ts.timestamp() / 86400.0 + 2440587.5


def _params(now: datetime, **kw: Any) -> dict[str, Any]:
    return {"now": now, "now_jd": _julian(now), **kw}


def fill(engine: Engine, *, photos: int, results: int, now: datetime, chunk: int = 1_000_000,
         small_org_photos: int = 10_000, small_org_results: int = 50_000) -> dict[str, Any]:
    """Two organizations: "Bench Co" (America/New_York) with the big numbers and "Small Co" beside it."""
    d = Dialect(engine.dialect.name)
    timings: dict[str, float] = {}
    with service_session(engine=engine) as s:
        big = Organization(name="Bench Co", slug="bench-co", timezone="America/New_York")
        small = Organization(name="Small Co", slug="small-co", timezone="UTC")
        s.add_all([big, small])
        s.flush()
        orgs = {"big": big.id, "small": small.id}
        for org in orgs.values():
            s.add(PipelineConfig(organization_id=org, active_provider="gemini", active_model="gemini-2.5-flash",
                                 fallback_provider="google-vision", daily_budget_micros=60_000_000,
                                 monthly_budget_micros=1_500_000_000))
            for provider in ("google-vision", "gemini", "local"):
                s.add(ProviderConfig(organization_id=org, provider=provider))
        from aiconsole.platform.passwords import hash_password

        s.add(User(organization_id=big.id, email=ADMIN_EMAIL, display_name="Bench Admin", role="admin",
                   password_hash=hash_password(ADMIN_PASSWORD)))

    plan = [("big", photos, results), ("small", small_org_photos, small_org_results)]
    for key, n_photos, n_results in plan:
        org = orgs[key]
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(_photos_sql(d)), _params(now, org=org, lo=1, hi=n_photos,
                                                       pending=max(n_photos // 50, 1),
                                                       processing=max(n_photos // 5000, 1)))
            first = conn.execute(select(func.min(Photo.id)).where(Photo.organization_id == org)).scalar_one()
        timings[f"{key}_photos_s"] = round(time.perf_counter() - started, 1)
        log(f"{key}: {n_photos:,} photos in {timings[f'{key}_photos_s']} s")
        started = time.perf_counter()
        for lo in range(1, n_results + 1, chunk):
            hi = min(lo + chunk - 1, n_results)
            with engine.begin() as conn:
                conn.execute(text(_results_sql(d)), _params(now, org=org, lo=lo, hi=hi, total=n_results,
                                                            first_photo=first, n_photos=n_photos))
            log(f"{key}: results {hi:,} / {n_results:,}")
        timings[f"{key}_results_s"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    with service_session(engine=engine) as s:
        # Platform-wide probes every 5 minutes for 30 days, and the big org's own checks every 15.
        rows = []
        for step in range(30 * 24 * 12):
            at = now - timedelta(minutes=5 * step)
            for provider in ("google-vision", "gemini", "local"):
                rows.append({"organization_id": None, "provider_name": provider, "status": "healthy",
                             "response_time_ms": 200, "error_rate": 0.01, "last_check": at})
                if step % 3 == 0:
                    rows.append({"organization_id": orgs["big"], "provider_name": provider,
                                 "status": "healthy", "response_time_ms": 250, "error_rate": 0.02,
                                 "last_check": at})
        s.execute(AiProviderHealth.__table__.insert(), rows)
    timings["health_rows_s"] = round(time.perf_counter() - started, 1)

    from aiconsole.pipeline import rollups

    started = time.perf_counter()
    with service_session(engine=engine) as s:
        written = sum(rollups.rebuild_rollups(s, organization_id=org) for org in orgs.values())
    timings["rollups_s"] = round(time.perf_counter() - started, 1)
    log(f"rollups: {written:,} rows in {timings['rollups_s']} s")

    started = time.perf_counter()
    if d.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    timings["analyze_s"] = round(time.perf_counter() - started, 1)
    return {"organizations": orgs, "fill_seconds": timings}


# ---------------------------------------------------------------------------------------- measuring


@contextmanager
def pointed_at(url: str, data_dir: Path, service_url: str | None = None) -> Iterator[None]:
    """Point get_settings()/get_engine() at `url` (service work at `service_url`, the tables' owner, when
    given) with the live cache off and no Redis."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AICONSOLE_") and not k.startswith("AICONSOLE_TEST")}
    for key in saved:
        del os.environ[key]
    pointed = {"AICONSOLE_DATABASE_URL": url, "AICONSOLE_DATA_DIR": str(data_dir),
               "AICONSOLE_LIVE_CACHE_TTL_SECONDS": "0"}
    if service_url:
        pointed["AICONSOLE_SERVICE_DATABASE_URL"] = service_url
    os.environ.update(pointed)
    get_settings.cache_clear()
    dispose_engines()
    try:
        yield
    finally:
        for key in pointed:
            os.environ.pop(key, None)
        os.environ.update(saved)
        get_settings.cache_clear()
        dispose_engines()


def time_functions(org: int, now: datetime, runs: int) -> dict[str, dict[str, float]]:
    """Median/p90/min/max milliseconds of each data function over `runs` runs after 2 warm-ups."""
    out: dict[str, dict[str, float]] = {}
    for name, fn in FUNCTIONS.items():
        for _ in range(2):
            fn(organization_id=org, now=now)
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            fn(organization_id=org, now=now)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        out[name] = {"median_ms": round(statistics.median(samples), 2),
                     "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 2),
                     "min_ms": round(samples[0], 2), "max_ms": round(samples[-1], 2)}
        log(f"  {name:16s} median {out[name]['median_ms']:8.2f} ms   p90 {out[name]['p90_ms']:8.2f} ms")
    return out


def statement_profile(org: int, now: datetime, explain: bool) -> list[dict[str, Any]]:
    """Each SQL statement of one live_snapshot run with its time; EXPLAIN ANALYZE it when asked."""
    engine = get_engine()
    captured: list[dict[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        ms = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
        captured.append({"ms": round(ms, 2), "sql": statement, "params": parameters})

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        live_status.live_snapshot(organization_id=org, now=now, use_cache=False)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    profile = []
    for item in captured:
        first = " ".join(item["sql"].split())[:110]
        entry: dict[str, Any] = {"ms": item["ms"], "sql": first}
        if explain and not first.upper().startswith(("SELECT SET_CONFIG", "BEGIN")):
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            with engine.connect() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT set_config('app.current_organization_id', :o, true)"), {"o": str(org)})
                plan = conn.exec_driver_sql(prefix + item["sql"], item["params"]).all()
            entry["plan"] = [" ".join(str(c) for c in row) for row in plan]
        profile.append(entry)
    return profile


def print_profile(profile: list[dict[str, Any]]) -> None:
    for entry in sorted(profile, key=lambda e: -e["ms"])[:12]:
        log(f"    {entry['ms']:7.2f} ms  {entry['sql']}")
        for line in entry.get("plan", []):
            print(f"               {line}")


def anchor_now(org: int) -> datetime:
    """One minute after the org's newest result: "now" for a database filled earlier."""
    with service_session() as s:
        newest = s.execute(select(func.max(AiProcessingResult.created_at))
                           .where(AiProcessingResult.organization_id == org)).scalar_one()
    return (newest or datetime.now(UTC)) + timedelta(minutes=1)


def prepare_database(url: str, data_dir: Path, fill_args: dict[str, Any] | None) -> dict[str, Any]:
    """Migrate and fill `url` (unless reusing it); returns the fill report."""
    report: dict[str, Any] = {}
    if fill_args is None:
        return report
    with pointed_at(url, data_dir):
        engine = get_engine()
        started = time.perf_counter()
        log(f"migrating {engine.dialect.name}")
        upgrade(url)
        report.update(fill(engine, now=datetime.now(UTC), **fill_args))
        report["fill_seconds"]["total_s"] = round(time.perf_counter() - started, 1)
    return report


def time_database(url: str, data_dir: Path, *, runs: int, explain: bool,
                  service_url: str | None = None) -> dict[str, Any]:
    """Time the data functions against `url` (as whatever role the URL names; service work at `service_url`)."""
    report: dict[str, Any] = {}
    with pointed_at(url, data_dir, service_url):
        engine = get_engine()
        report["dialect"] = engine.dialect.name
        with service_session() as s:
            org = s.execute(select(Organization.id).where(Organization.slug == "bench-co")).scalar_one()
            report["rows"] = {
                "photos": s.execute(select(func.count()).select_from(Photo)).scalar_one(),
                "results": s.execute(select(func.count()).select_from(AiProcessingResult)).scalar_one(),
                "rollups": s.execute(text("SELECT count(*) FROM processing_rollups_hourly")).scalar_one(),
                "health_rows": s.execute(select(func.count()).select_from(AiProviderHealth)).scalar_one(),
            }
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                role = conn.execute(text("SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles "
                                         "WHERE rolname = current_user")).one()
            report["role"] = {"name": role[0], "row_level_security_applies": not role[1]}
        now = anchor_now(org)
        report["now"] = now.isoformat()
        log(f"{engine.dialect.name}: {report['rows']}; timing {runs} runs at now={now:%Y-%m-%d %H:%M} UTC"
            + (f" as {report['role']['name']}" if "role" in report else ""))
        report["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        report["timings"] = time_functions(org, now, runs)
        report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        report["target_ms"] = TARGET_MS[engine.dialect.name]
        report["meets_target"] = report["timings"]["live_snapshot"]["median_ms"] <= report["target_ms"]
        profile = statement_profile(org, now, explain)
        print_profile(profile)
        report["statements"] = profile
    return report


@contextmanager
def app_role(db_url: str) -> Iterator[str]:
    """A LOGIN role without superuser or BYPASSRLS, as the console connects in production: RLS applies."""
    role = f"aibench_app_{uuid.uuid4().hex[:8]}"
    owner = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    user = db_url.split("://", 1)[1].split("@", 1)[0]
    try:
        yield db_url.replace(f"://{user}@", f"://{role}@", 1)
    finally:
        dispose_engines()
        with owner.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()


def bench_page(url: str, data_dir: Path, runs: int = 5, service_url: str | None = None) -> dict[str, Any]:
    """An AppTest run of app.py showing Live Status, logged in as the bench admin (median of `runs`)."""
    page, app = ROOT / "pages" / "live_status.py", ROOT / "app.py"
    missing = [str(p.relative_to(ROOT)) for p in (page, app) if not p.exists()]
    if missing:
        message = f"skipped: {', '.join(missing)} not written yet"
        log(f"page: {message}")
        return {"skipped": message}
    from streamlit.testing.v1 import AppTest

    from aiconsole.platform import auth
    from aiconsole.ui.session import TOKEN_KEY

    samples = []
    with pointed_at(url, data_dir, service_url):
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            for i in range(runs + 1):
                token = auth.login(email=ADMIN_EMAIL, password=ADMIN_PASSWORD).token
                at = AppTest.from_file(str(app), default_timeout=120)
                at.session_state[TOKEN_KEY] = token
                started = time.perf_counter()
                at.run()
                ms = (time.perf_counter() - started) * 1000
                if at.exception:
                    raise RuntimeError(f"the page raised: {at.exception}")
                metrics = {m.label for m in at.metric}
                if "Pending" not in metrics:
                    raise RuntimeError(f"the page did not show Live Status (metrics: {sorted(metrics)})")
                if i:  # the first run pays for imports and Streamlit start-up
                    samples.append(ms)
        finally:
            os.chdir(cwd)
    result = {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1),
              "max_ms": round(max(samples), 1), "runs": runs, "target_ms": PAGE_TARGET_MS}
    result["meets_target"] = result["median_ms"] <= PAGE_TARGET_MS
    log(f"page: AppTest run median {result['median_ms']} ms (min {result['min_ms']}, max {result['max_ms']})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-photos", type=int, default=1_000_000)
    parser.add_argument("--pg-results", type=int, default=5_000_000)
    parser.add_argument("--sqlite-photos", type=int, default=200_000)
    parser.add_argument("--sqlite-results", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-page", action="store_true")
    parser.add_argument("--keep-pg", action="store_true", help="keep the filled PostgreSQL database")
    parser.add_argument("--reuse-pg", metavar="DBNAME", help="time an already filled database")
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    parser.add_argument("--as-superuser", action="store_true",
                        help="time PostgreSQL as the filling superuser (RLS skipped) instead of an app role")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args()

    admin_url = normalize_database_url(os.environ.get("AICONSOLE_TEST_DATABASE_URL",
                                                      "postgresql://postgres@127.0.0.1:5432/test"))
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
        "runs": args.runs,
        "cache": "disabled (AICONSOLE_LIVE_CACHE_TTL_SECONDS=0, live_snapshot(use_cache=False))",
    }
    work = Path(tempfile.mkdtemp(prefix="aiconsole-bench-"))
    page_url: str | None = None

    if not args.skip_pg:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            report["machine"]["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
        name = args.reuse_pg or f"aibench_{uuid.uuid4().hex[:8]}"
        if not args.reuse_pg:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            fill_args = None if args.reuse_pg else {"photos": args.pg_photos, "results": args.pg_results}
            filled = prepare_database(url, work / "pg", fill_args)
            with app_role(url) as role_url:
                timing_url = url if args.as_superuser else role_url
                # The console's queries run as the app role; service work (login, counts) as the owner.
                report["postgresql"] = {**filled, **time_database(timing_url, work / "pg", runs=args.runs,
                                                                  explain=args.explain, service_url=url)}
                report["postgresql"]["database"] = name
                if not args.skip_page:
                    report["page"] = bench_page(timing_url, work / "pg", service_url=url)
                    report["page"]["database"] = "postgresql"
        finally:
            dispose_engines()
            if not (args.keep_pg or args.reuse_pg):
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                log(f"kept PostgreSQL database {name}")
            admin.dispose()
        page_url = url

    if not args.skip_sqlite:
        url = f"sqlite:///{work / 'sqlite' / 'bench.db'}"
        filled = prepare_database(url, work / "sqlite",
                                  {"photos": args.sqlite_photos, "results": args.sqlite_results,
                                   "small_org_photos": 2_000, "small_org_results": 10_000})
        report["sqlite"] = {**filled, **time_database(url, work / "sqlite", runs=args.runs,
                                                      explain=args.explain)}
        if not args.skip_page and page_url is None:
            report["page"] = bench_page(url, work / "sqlite")
            report["page"]["database"] = "sqlite"

    args.output.parent.mkdir(parents=True, exist_ok=True)
    for part in ("postgresql", "sqlite"):
        for entry in report.get(part, {}).get("statements", []):
            entry.pop("params", None)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    log(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    summary = []
    for part in ("postgresql", "sqlite"):
        if part in report:
            t = report[part]["timings"]["live_snapshot"]["median_ms"]
            summary.append(f"{part} live_snapshot {t} ms (target {TARGET_MS[part]:.0f})")
    if "page" in report and "median_ms" in report["page"]:
        summary.append(f"page {report['page']['median_ms']} ms (target {PAGE_TARGET_MS:.0f})")
    log("; ".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
