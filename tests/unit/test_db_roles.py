"""The role script: docs/postgres-roles.sql is what role_setup_sql() prints, and role names are never SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiconsole.platform.db.roles import (
    DEFAULT_CONSOLE_ROLE,
    DEFAULT_SERVICE_ROLE,
    role_setup_sql,
    role_setup_statements,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "postgres-roles.sql"


def test_the_documented_script_is_the_generated_one() -> None:
    assert DOC.read_text() == role_setup_sql(), "regenerate docs/postgres-roles.sql from role_setup_sql()"


def test_the_console_role_gets_data_access_and_never_ownership() -> None:
    script = role_setup_sql("con", "svc")
    assert "CREATE ROLE svc LOGIN NOSUPERUSER NOBYPASSRLS" in script
    assert "CREATE ROLE con LOGIN NOSUPERUSER NOBYPASSRLS" in script
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO con;" in script
    assert "OWNER TO svc" in script and "OWNER TO con" not in script
    assert "TRUNCATE" not in script.replace("no TRUNCATE", "")
    assert DEFAULT_CONSOLE_ROLE not in script and DEFAULT_SERVICE_ROLE not in script


@pytest.mark.parametrize("name", ["", "Console", "9lives", "con; DROP TABLE users", "con'--", "x" * 64])
def test_a_role_name_that_is_not_a_plain_identifier_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain role name"):
        role_setup_statements(name, "svc")
    with pytest.raises(ValueError, match="not a plain role name"):
        role_setup_statements("con", name)


def test_one_role_cannot_be_both() -> None:
    with pytest.raises(ValueError, match="two different roles"):
        role_setup_statements("same", "same")
