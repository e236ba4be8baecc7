"""Row-level security, as PostgreSQL sees it: which tables are protected, and whether this role is bound.

The policies themselves are created by migrations/versions/0002_row_level_security.py and recreated by
0006_policies_without_bypass_setting.py. This module only reads the catalog, so the health check and the
tests can prove isolation is really in force: RLS silently does nothing for a superuser or a BYPASSRLS
role, the policies let the tables' owner through (that is the service role), and nothing protects a
table without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from aiconsole.platform.db.models import ORG_SCOPED_TABLES

# Every table row-level security must cover: organizations itself, the org-scoped tables, login sessions
# (their organization is their user's) and workers (platform-wide: the service role's alone).
PROTECTED_TABLES: tuple[str, ...] = ("organizations", *ORG_SCOPED_TABLES, "login_sessions", "workers")


@dataclass(frozen=True)
class TableRls:
    """Row-level security state of one table."""

    table: str
    enabled: bool
    forced: bool
    policies: tuple[str, ...]

    @property
    def protected(self) -> bool:
        """Enabled, forced (so the owner is bound too) and at least one policy."""
        return self.enabled and self.forced and bool(self.policies)


def table_rls(conn: Connection) -> dict[str, TableRls]:
    """The RLS state of every table in the current schema (PostgreSQL only), by table name."""
    _require_postgres(conn)
    rows = conn.execute(
        text(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   COALESCE(array_agg(p.polname ORDER BY p.polname)
                            FILTER (WHERE p.polname IS NOT NULL), '{}')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE c.relkind IN ('r', 'p')
            GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
            """
        )
    ).all()
    return {
        name: TableRls(table=name, enabled=enabled, forced=forced, policies=tuple(policies))
        for name, enabled, forced, policies in rows
    }


def unprotected_tables(conn: Connection) -> list[str]:
    """Tables that should be isolated by organization but are not (empty when all is well)."""
    states = table_rls(conn)
    return [t for t in PROTECTED_TABLES if t not in states or not states[t].protected]


def role_bypasses_rls(conn: Connection) -> bool:
    """Whether the connected role gets past the policies: a superuser, a BYPASSRLS role, or one that owns
    (or may act as the owner of) a protected table. Right for the service role; for the console's role it
    means only the application's own filters keep organizations apart."""
    _require_postgres(conn)
    # MEMBER, not USAGE: a NOINHERIT member cannot use the owner's rights directly but may SET ROLE to it.
    row = conn.execute(
        text(
            """
            SELECT r.rolsuper OR r.rolbypassrls OR EXISTS (
                       SELECT 1 FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
                       WHERE c.relname = ANY(:tables) AND c.relkind IN ('r', 'p')
                         AND pg_has_role(current_user, c.relowner, 'MEMBER'))
            FROM pg_roles r WHERE r.rolname = current_user
            """
        ),
        {"tables": list(PROTECTED_TABLES)},
    ).scalar_one()
    return bool(row)


def _require_postgres(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        raise ValueError(f"row-level security exists only on PostgreSQL, not on {conn.dialect.name}")
