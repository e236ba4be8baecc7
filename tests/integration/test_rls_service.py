"""The two roles at work: service work (a worker claiming, recording and reaping; login) functions as the
service role, a NOSUPERUSER NOBYPASSRLS role the policies let through because it owns the tables, while
user sessions run as the console's role; health tells the modes apart; the role script runs twice."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from rls_roles import TwoRoles, set_up_roles, two_role_database
from sqlalchemy import func, select, text

from aiconsole.admin import users
from aiconsole.pipeline import queue, reaper
from aiconsole.pipeline.recording import record_batch
from aiconsole.platform import auth
from aiconsole.platform.db import dispose_engines, get_engine, get_service_engine, org_session, service_session
from aiconsole.platform.db.models import AiProcessingResult, User, Worker
from aiconsole.platform.db.rls import role_bypasses_rls, unprotected_tables
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import AuthError
from aiconsole.platform.health import check_database
from aiconsole.platform.passwords import hash_password
from aiconsole.platform.settings import Settings, get_settings

pytestmark = pytest.mark.postgres

UNIT = Path(__file__).resolve().parent.parent / "unit"


def _load(name: str) -> ModuleType:
    # Shared helpers live with the unit tests; load them by path (tests/ is not a package).
    spec = importlib.util.spec_from_file_location(f"{name}_helpers", UNIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


qt = _load("test_queue")
rt = _load("test_recording")


def _point_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, console: str, service: str | None) -> Settings:
    for key in list(os.environ):
        if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AICONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AICONSOLE_DATABASE_URL", console)
    if service is not None:
        monkeypatch.setenv("AICONSOLE_SERVICE_DATABASE_URL", service)
    get_settings.cache_clear()
    dispose_engines()
    return get_settings()


@pytest.fixture
def roles() -> Iterator[TwoRoles]:
    with two_role_database("fresh") as db:
        try:
            yield db
        finally:
            dispose_engines()
            get_settings.cache_clear()


@pytest.fixture
def two_roles(roles: TwoRoles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TwoRoles:
    """The process configured as the console is: AICONSOLE_DATABASE_URL and AICONSOLE_SERVICE_DATABASE_URL."""
    _point_at(monkeypatch, tmp_path, roles.console_url, roles.service_url)
    return roles


def _current_role(engine_role: str) -> tuple[str, bool]:
    engine = get_service_engine() if engine_role == "service" else get_engine()
    with engine.connect() as conn:
        name, privileged = conn.execute(text("SELECT current_user, rolsuper OR rolbypassrls FROM pg_roles "
                                             "WHERE rolname = current_user")).one()
    return str(name), bool(privileged)


def test_each_session_kind_connects_as_its_role(two_roles: TwoRoles) -> None:
    assert _current_role("console") == (two_roles.console_role, False)
    assert _current_role("service") == (two_roles.service_role, False)
    org = users.create_organization(name="Alpha").id
    with service_session() as s:
        assert s.execute(text("SELECT current_user")).scalar_one() == two_roles.service_role
    with org_session(org) as s:
        assert s.execute(text("SELECT current_user")).scalar_one() == two_roles.console_role


def test_a_worker_claims_records_heartbeats_and_reaps_as_the_service_role(two_roles: TwoRoles) -> None:
    org = users.create_organization(name="Alpha").id
    other = users.create_organization(name="Beta").id
    qt.set_config(org, max_retries=1)
    qt.set_config(other, max_retries=1)
    qt.add_photos(org, 3, start=utcnow() - timedelta(minutes=1))
    qt.add_photos(other, 2, tag="o", start=utcnow() - timedelta(minutes=1))
    now = utcnow()
    queue.heartbeat(worker_id="w1", hostname="h", pid=1, concurrency=2, processed=0)
    batch = queue.claim_batch(worker_id="w1", limit=10, lease_seconds=30, now=now)
    assert len(batch) == 5 and {c.organization_id for c in batch} == {org, other}
    report = record_batch(worker_id="w1", now=now, outcomes=[
        rt.outcome(c, rt.result([("cat", 0.9)], cost=10)) for c in batch[:4]])
    assert (report.recorded, report.cost_micros) == (4, 40)
    reaped = reaper.reap_expired(now=now + timedelta(seconds=31))
    assert reaped.failed + reaped.requeued == 1
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(AiProcessingResult)) == 5
        assert s.scalars(select(Worker.id)).all() == ["w1"]
    # The console's role, meanwhile, sees one organization's results and no worker.
    with org_session(org) as s:
        assert set(s.execute(text("SELECT organization_id FROM ai_processing_results")).scalars()) == {org}
        assert s.execute(text("SELECT count(*) FROM workers")).scalar_one() == 0


def test_login_resume_and_logout_run_as_the_service_role(two_roles: TwoRoles) -> None:
    org = users.create_organization(name="Alpha").id
    with service_session() as s:
        s.add(User(organization_id=org, email="ada@alpha.test", display_name="Ada", role="admin",
                   password_hash=hash_password("correct horse battery")))
    with pytest.raises(AuthError):
        auth.login(email="ada@alpha.test", password="wrong")
    login = auth.login(email="ada@alpha.test", password="correct horse battery")
    assert auth.resume(login.token).organization_id == org
    assert auth.logout(login.token) is True
    with pytest.raises(AuthError, match="logged out"):
        auth.resume(login.token)


def test_health_with_two_roles_says_the_console_is_bound(two_roles: TwoRoles) -> None:
    check = check_database(get_settings())
    assert check.status == "healthy", check.message
    assert check.details["rls_mode"] == "two roles"
    assert check.details["role_bypasses_rls"] is False
    assert check.details["service_role_bypasses_rls"] is True
    assert "binds the console's role to one organization" in check.message


def test_health_warns_when_the_console_role_can_act_as_the_owner(two_roles: TwoRoles) -> None:
    with two_roles.admin.begin() as conn:
        conn.execute(text(f"GRANT {two_roles.service_role} TO {two_roles.console_role}"))
    check = check_database(get_settings())
    assert check.status == "degraded"
    assert check.details["role_bypasses_rls"] is True
    assert "bypasses row-level security" in check.message


def test_health_with_one_owning_role_reports_the_weaker_mode(roles: TwoRoles, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    check = check_database(_point_at(monkeypatch, tmp_path, roles.service_url, None))
    assert check.status == "healthy"
    assert (check.details["rls_mode"], check.details["role_bypasses_rls"]) == ("single role", True)
    assert "only the application's filters keep organizations apart" in check.message


def test_health_with_one_bound_role_says_service_work_sees_nothing(roles: TwoRoles, monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    settings = _point_at(monkeypatch, tmp_path, roles.console_url, None)
    check = check_database(settings)
    assert check.status == "degraded"
    assert check.details["service_role_bypasses_rls"] is False
    assert "AICONSOLE_SERVICE_DATABASE_URL" in check.message
    # Which is true: with no setting to lean on, the bound role's service session finds no organization.
    with roles.service.begin() as conn:
        conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                          " VALUES ('Alpha', 'alpha', 'UTC', false, now())"))
    with service_session() as s:
        assert s.execute(text("SELECT count(*) FROM organizations")).scalar_one() == 0


def test_the_role_script_can_run_again(roles: TwoRoles) -> None:
    set_up_roles(roles.admin, roles.console_role, roles.service_role)
    with roles.console.connect() as conn:
        assert role_bypasses_rls(conn) is False
        assert unprotected_tables(conn) == []
    with roles.service.connect() as conn:
        assert role_bypasses_rls(conn) is True


def test_health_names_the_service_connection_when_it_fails(roles: TwoRoles, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    unreachable = roles.service_url.replace("127.0.0.1:5432", "127.0.0.1:1")
    assert unreachable != roles.service_url
    check = check_database(_point_at(monkeypatch, tmp_path, roles.console_url, unreachable))
    assert check.status == "down"
    assert "AICONSOLE_SERVICE_DATABASE_URL" in check.message and check.error
    assert roles.service_url.split("@")[0].split(":")[-1] not in check.message  # the password stays masked
