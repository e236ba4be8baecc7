"""Test support for row-level security: a fresh PostgreSQL database with aiconsole's two roles.

Roles are cluster-wide, so each database gets its own uniquely named console and service roles, both
LOGIN NOSUPERUSER NOBYPASSRLS, created by the very statements docs/postgres-roles.sql holds, and dropped
with the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pg_databases
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.roles import role_setup_statements
from aiconsole.platform.migrate import upgrade

# How the roles meet the schema: set up on an empty database and migrated as the service role, or set up
# on a database a superuser migrated earlier (every table is handed over to the service role).
KINDS = ("fresh", "adopted")


@dataclass(frozen=True)
class TwoRoles:
    """One database, its URLs per role, and an engine per role (the superuser's for setup and checks)."""

    database: str
    console_role: str
    service_role: str
    console_url: str
    service_url: str
    admin_url: str
    console: Engine
    service: Engine
    admin: Engine


def set_up_roles(admin: Engine, console_role: str, service_role: str) -> None:
    """Run the documented role script on `admin`'s database."""
    with admin.begin() as conn:
        for statement in role_setup_statements(console_role, service_role):
            conn.execute(text(statement))


@contextmanager
def two_role_database(kind: str = "fresh") -> Iterator[TwoRoles]:
    """A new migrated database with a console and a service role; everything dropped afterwards."""
    assert kind in KINDS, kind
    tag = uuid.uuid4().hex[:10]
    database, console_role, service_role = f"aict_rls_{tag}", f"aict_con_{tag}", f"aict_svc_{tag}"
    pg_databases.create(database)
    admin_url = make_url(pg_databases.url_of(database))
    urls = {role: admin_url.set(username=role, password=uuid.uuid4().hex) for role in (console_role, service_role)}
    engines: list[Engine] = []
    try:
        admin = make_engine(admin_url.render_as_string(hide_password=False), pool_size=1)
        engines.append(admin)
        if kind == "adopted":
            upgrade(admin_url.render_as_string(hide_password=False))
        set_up_roles(admin, console_role, service_role)
        with admin.begin() as conn:
            for role, url in urls.items():
                conn.execute(text(f"ALTER ROLE {role} PASSWORD '{url.password}'"))
        service_url, console_url = (urls[r].render_as_string(hide_password=False) for r in (service_role, console_role))
        if kind == "fresh":
            upgrade(service_url)
        console = make_engine(console_url, pool_size=2)
        service = make_engine(service_url, pool_size=2)
        engines += [console, service]
        yield TwoRoles(database=database, console_role=console_role, service_role=service_role,
                       console_url=console_url, service_url=service_url,
                       admin_url=admin_url.render_as_string(hide_password=False),
                       console=console, service=service, admin=admin)
    finally:
        for engine in engines:
            engine.dispose()
        pg_databases.drop(database)
        server = create_engine(pg_databases.admin_url(), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            for role in (console_role, service_role):
                conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        server.dispose()
