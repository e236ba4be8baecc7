"""The `aiconsole` CLI through typer's CliRunner (and `up` as a real process running Streamlit)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from aiconsole.admin import users
from aiconsole.cli.console import streamlit_command
from aiconsole.cli.main import app
from aiconsole.platform import auth
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import Organization, Worker
from aiconsole.platform.migrate import ROOT
from aiconsole.platform.settings import Settings

runner = CliRunner()
ADMIN_PW = "first-admin-password"


def _init(*extra: str) -> None:
    result = runner.invoke(app, ["init", "--admin-email", "Root@Example.com", "--admin-password", ADMIN_PW,
                                 "--org-name", "Acme Photos", *extra])
    assert result.exit_code == 0, result.output


def test_init_creates_the_organization_and_first_admin_once(settings: Settings) -> None:
    _init()
    root = users.find_user(email="root@example.com", settings=settings)
    assert root is not None and root.role == "platform_admin" and root.has_password
    assert auth.login(email="root@example.com", password=ADMIN_PW, settings=settings).actor.role == "platform_admin"
    again = runner.invoke(app, ["init", "--admin-email", "other@example.com", "--admin-password", ADMIN_PW,
                                "--org-name", "Acme Photos"])
    assert again.exit_code == 0 and "already has an active admin" in again.output
    assert users.find_user(email="other@example.com", settings=settings) is None
    # A second organization's first admin is an admin, not another platform admin.
    _second = runner.invoke(app, ["init", "--admin-email", "b@example.com", "--admin-password", ADMIN_PW,
                                  "--org-name", "Org B"])
    assert _second.exit_code == 0, _second.output
    assert users.find_user(email="b@example.com", settings=settings).role == "admin"  # type: ignore[union-attr]


def test_init_prompts_for_what_is_missing_and_hides_the_password(settings: Settings) -> None:
    result = runner.invoke(app, ["init"], input=f"Prompted Org\nroot@example.com\n{ADMIN_PW}\n{ADMIN_PW}\n")
    assert result.exit_code == 0, result.output
    assert "Created organization Prompted Org" in result.output
    assert ADMIN_PW not in result.output
    assert auth.login(email="root@example.com", password=ADMIN_PW, settings=settings).actor.email == (
        "root@example.com")


def test_errors_are_one_red_line_with_exit_code_2(settings: Settings) -> None:
    result = runner.invoke(app, ["init", "--admin-email", "not-an-email", "--admin-password", ADMIN_PW,
                                 "--org-name", "Acme"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: 'not-an-email' is not a valid email address")
    assert "Enter an address such as" in lines[0]
    assert "Traceback" not in result.output
    short = runner.invoke(app, ["user", "add", "x@example.com", "--password", "short"])
    assert short.exit_code == 2 and "too short" in short.stderr and "at least 8" in short.stderr


def test_unreachable_database_is_one_line_without_the_password(settings: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from aiconsole.platform.db import dispose_engines
    from aiconsole.platform.settings import get_settings

    monkeypatch.setenv("AICONSOLE_DATABASE_URL", "postgresql://aic:s3cr3t-pw@127.0.0.1:1/nowhere")
    get_settings.cache_clear()
    dispose_engines()
    for command in (["migrate"], ["user", "list"], ["user", "disable", "a@example.com"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert "the database" in result.stderr.lower() and "AICONSOLE_DATABASE_URL" in result.stderr
        assert "s3cr3t-pw" not in result.output and "Traceback" not in result.output


def test_user_add_list_disable_enable(settings: Settings) -> None:
    _init()
    added = runner.invoke(app, ["user", "add", "Ana@Example.com", "--role", "analyst", "--name", "Ana",
                                "--password", "ana-password-1"])
    assert added.exit_code == 0 and "Added ana@example.com (analyst) to Acme Photos." in added.output
    prompted = runner.invoke(app, ["user", "add", "rev@example.com", "--role", "reviewer"],
                             input="rev-password-1\nrev-password-1\n")
    assert prompted.exit_code == 0, prompted.output
    sso = runner.invoke(app, ["user", "add", "sso@example.com", "--sso"])
    assert sso.exit_code == 0, sso.output
    dup = runner.invoke(app, ["user", "add", "ANA@example.com", "--password", "ana-password-1"])
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    bad_role = runner.invoke(app, ["user", "add", "z@example.com", "--role", "owner", "--password", "zzzzzzzz1"])
    assert bad_role.exit_code == 2 and "Unknown role 'owner'" in bad_role.stderr

    listed = runner.invoke(app, ["user", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["email"]: r for r in json.loads(listed.output)}
    assert set(rows) == {"ana@example.com", "rev@example.com", "root@example.com", "sso@example.com"}
    assert (rows["ana@example.com"]["role"], rows["ana@example.com"]["organization"]) == ("analyst", "Acme Photos")
    assert rows["sso@example.com"]["sso_only"] is True and rows["rev@example.com"]["sso_only"] is False
    table = runner.invoke(app, ["user", "list", "--org", "acme-photos"]).output.splitlines()
    assert table[0].split() == ["EMAIL", "ROLE", "ORGANIZATION", "STATE", "LAST", "LOGIN"]
    assert len(table) == 5 and "ana@example.com" in table[1] and "never" in table[1]

    assert runner.invoke(app, ["user", "disable", "ana@example.com"]).output.strip() == (
        "ana@example.com is disabled.")
    assert users.find_user(email="ana@example.com", settings=settings).is_active is False  # type: ignore[union-attr]
    assert "disabled" in runner.invoke(app, ["user", "list"]).output
    assert runner.invoke(app, ["user", "enable", "ana@example.com"]).exit_code == 0
    assert auth.login(email="ana@example.com", password="ana-password-1", settings=settings).actor.role == "analyst"
    last = runner.invoke(app, ["user", "disable", "root@example.com"])
    assert last.exit_code == 2 and "last active admin" in last.stderr
    missing = runner.invoke(app, ["user", "disable", "ghost@example.com"])
    assert missing.exit_code == 2 and "no user with email ghost@example.com" in missing.stderr


def test_user_add_needs_an_org_when_several_exist(settings: Settings) -> None:
    none_yet = runner.invoke(app, ["user", "add", "a@example.com", "--password", "aaaaaaaa1"])
    assert none_yet.exit_code == 2 and "aiconsole init" in none_yet.stderr
    users.create_organization(name="One", settings=settings)
    users.create_organization(name="Two", settings=settings)
    result = runner.invoke(app, ["user", "add", "a@example.com", "--password", "aaaaaaaa1"])
    assert result.exit_code == 2 and "Pass --org with one of: One, Two." in result.stderr
    ok = runner.invoke(app, ["user", "add", "a@example.com", "--password", "aaaaaaaa1", "--org", "two"])
    assert ok.exit_code == 0 and "to Two." in ok.output


def test_health_json_exit_codes(settings: Settings) -> None:
    degraded = runner.invoke(app, ["health", "--json"])
    assert degraded.exit_code == 1
    report = json.loads(degraded.output)
    assert report["status"] == "degraded"
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "database": "healthy", "redis": "healthy", "workers": "degraded"}
    with service_session(engine=get_engine(settings)) as s:
        s.add(Worker(id="w1", hostname="box", pid=1, last_heartbeat_at=datetime.now(UTC)))
    healthy = runner.invoke(app, ["health", "--json"])
    assert healthy.exit_code == 0, healthy.output
    assert json.loads(healthy.output)["status"] == "healthy"
    text_out = runner.invoke(app, ["health"])
    assert text_out.exit_code == 0 and text_out.output.startswith("aiconsole: healthy")


def test_help_lists_every_command_group_in_order() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^[│|] (\w+) ", result.output, re.M)
    assert listed == ["init", "migrate", "demo", "health", "up", "enqueue", "worker", "emulate", "user",
                      "quality", "stats"]


def test_streamlit_command_line() -> None:
    cmd = streamlit_command(app_path=ROOT / "app.py", host="0.0.0.0", port=9000, headless=True)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    args = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert args == {"--server.address": "0.0.0.0", "--server.port": "9000", "--server.headless": "true",
                    "--browser.gatherUsageStats": "false"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return int(resp.status)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_serves_the_console_and_forwards_signals(settings: Settings, sig: signal.Signals) -> None:
    with_demo = sig == signal.SIGINT
    if with_demo:  # an existing demo organization (seeding a full one is the demo tests' job)
        users.create_organization(name="Demo Photos Inc.", is_demo=True, settings=settings)
    port = _free_port()
    env = {**os.environ, "AICONSOLE_DATA_DIR": str(settings.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "aiconsole", "up", "--no-demo",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = _get(f"http://127.0.0.1:{port}/_stcore/health")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, "the console never answered"
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert f"aiconsole console: http://127.0.0.1:{port}" in output
    with pytest.raises(OSError):  # the child went down with us
        _get(f"http://127.0.0.1:{port}/_stcore/health")
    if with_demo:
        from aiconsole.demo.seed import DEMO_LOGINS

        assert "Demo logins" in output
        for email, password, role in DEMO_LOGINS:
            assert re.search(rf"^  {re.escape(email)} +{re.escape(password)}  {role}$", output, re.M), output
    else:
        assert "Demo logins" not in output  # --no-demo on an empty database seeds nothing
        with service_session(engine=get_engine(settings)) as s:
            assert s.query(Organization).count() == 0


def test_db_roles_prints_the_documented_script_and_refuses_a_non_identifier() -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from aiconsole.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["db-roles"])
    assert result.exit_code == 0, result.output
    assert result.output == (Path(__file__).resolve().parents[2] / "docs" / "postgres-roles.sql").read_text()
    bad = runner.invoke(app, ["db-roles", "--console", "x;drop"])
    assert bad.exit_code == 2
    assert "not a plain role name" in bad.output
