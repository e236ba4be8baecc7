"""The two PostgreSQL roles aiconsole connects as, and the SQL that creates them.

The service role owns the tables (it runs the migrations); the row-level security policies let their
owner through by who it is, so workers, the reaper, login and the CLI see every organization. The
console's role only holds SELECT, INSERT, UPDATE and DELETE: it owns nothing, so it can neither switch row-level
security off nor change a policy, and no setting it may set widens what the policies show it.

docs/postgres-roles.sql is `role_setup_sql()` with the default names (a test keeps the two equal).
"""

from __future__ import annotations

import re

DEFAULT_CONSOLE_ROLE = "aiconsole_console"
DEFAULT_SERVICE_ROLE = "aiconsole_service"

# Unquoted-identifier spelling only: the names are pasted into DDL, which takes no bind parameters.
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_HEADER = """\
-- aiconsole's two PostgreSQL roles. Run as a superuser (or your platform's admin role), connected to
-- aiconsole's own database, e.g.
--   psql -d aiconsole -f docs/postgres-roles.sql
-- Safe to run again. On an empty database, run it before `aiconsole migrate` (then migrate as the service
-- role); on a database migrated earlier by another role, it hands every table over to the service role.
-- Then give both roles a password:
--   ALTER ROLE {service} PASSWORD '...';  ALTER ROLE {console} PASSWORD '...';
-- and point the processes at them (see docs/ARCHITECTURE.md, "Organizations are isolated twice"):
--   console (user sessions as the first, login as the second):
--             AICONSOLE_DATABASE_URL=postgresql://{console}:...@host/aiconsole
--             AICONSOLE_SERVICE_DATABASE_URL=postgresql://{service}:...@host/aiconsole
--   workers, `aiconsole migrate` and the other CLI commands:
--             AICONSOLE_DATABASE_URL=postgresql://{service}:...@host/aiconsole
"""


def _role(name: str) -> str:
    if not _ROLE_NAME.fullmatch(name):
        raise ValueError(f"'{name[:80]}' is not a plain role name (lower-case letters, digits and _, "
                         "not starting with a digit, at most 63 characters)")
    return name


def _create_role(name: str, comment: str) -> str:
    # CREATE ROLE has no IF NOT EXISTS; the block makes the script safe to run twice.
    return (f"-- {comment}\n"
            f"DO $$\nBEGIN\n"
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN\n"
            f"    CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;\n"
            f"  END IF;\n"
            f"END $$;")


def role_setup_statements(console_role: str = DEFAULT_CONSOLE_ROLE, service_role: str = DEFAULT_SERVICE_ROLE,
                          *, schema: str = "public") -> list[str]:
    """The statements that create both roles and grant what each needs, in order (PostgreSQL)."""
    console, service, schema = _role(console_role), _role(service_role), _role(schema)
    if console == service:
        raise ValueError("the console's role and the service role must be two different roles")
    return [
        _create_role(service, "Owns the tables and runs migrations; the policies let the owner through.\n"
                              "-- (ALTER ROLE ... BYPASSRLS works too, and skips even the per-row check.)"),
        _create_role(console, "User sessions: bound by row-level security to the organization they name."),
        "-- Nothing may let the console act as the service role: a member would pass the policies.\n"
        "DO $$\nBEGIN\n"
        f"  IF pg_has_role('{console}', '{service}', 'MEMBER') THEN\n"
        f"    RAISE EXCEPTION '% is a member of %: REVOKE % FROM %', '{console}', '{service}',\n"
        f"      '{service}', '{console}';\n"
        "  END IF;\nEND $$;",
        "DO $$\nBEGIN\n"
        f"  EXECUTE format('GRANT CONNECT ON DATABASE %I TO {service}, {console}', current_database());\n"
        "END $$;",
        f"GRANT USAGE, CREATE ON SCHEMA {schema} TO {service};",
        f"GRANT USAGE ON SCHEMA {schema} TO {console};",
        "-- Tables migrated earlier by another role become the service role's (sequences follow their tables).\n"
        "DO $$\nDECLARE t regclass;\nBEGIN\n"
        "  FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
        f"           WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p')\n"
        f"             AND c.relowner <> '{service}'::regrole LOOP\n"
        f"    EXECUTE format('ALTER TABLE %s OWNER TO {service}', t);\n"
        "  END LOOP;\nEND $$;",
        "-- Data access only: no TRUNCATE, no REFERENCES, no TRIGGER, and no ownership (so no ALTER TABLE).\n"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {console};",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {console};",
        "-- The same for every table and sequence later migrations create.\n"
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {service} IN SCHEMA {schema}\n"
        f"  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {console};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {service} IN SCHEMA {schema}\n  GRANT USAGE ON SEQUENCES TO {console};",
    ]


def role_setup_sql(console_role: str = DEFAULT_CONSOLE_ROLE, service_role: str = DEFAULT_SERVICE_ROLE,
                   *, schema: str = "public") -> str:
    """The whole script: a header saying how to run it, then `role_setup_statements()`."""
    statements = role_setup_statements(console_role, service_role, schema=schema)
    header = _HEADER.format(console=console_role, service=service_role)
    return header + "\n" + "\n\n".join(statements) + "\n"
