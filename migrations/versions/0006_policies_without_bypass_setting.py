"""Row-level security without a setting-based bypass: the policies let the service role through by who it is.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

0002's policies let every row through when `app.bypass_rls` = 'on', a setting any role may set:
`set_config('app.bypass_rls', 'on', true)` on a console connection read every organization. These
policies name no setting but the organization: a row is visible and writable when it belongs to
`app.current_organization_id`, or when the current role holds the privileges of the table's owner (the
service role, which runs the migrations and so owns the tables). Such a role could switch row-level
security off anyway, so letting it through gives nothing away; the console's role owns nothing and is
a member of nothing, so it gets nothing. Superusers and BYPASSRLS roles skip policies as before.

New policies too:
- login_sessions has no organization column: a session belongs to its user's organization, so an
  organization's session may see and end (revoke_sessions) only its own users' sessions, and can
  neither extend another organization's session nor create one for another organization's user.
- workers rows belong to no organization (a worker serves them all): only the service role reads or
  writes them; health and the CLI read heartbeats through service sessions, never an org session.

The table lists are hard-coded, like 0002's: tests/migrations/test_policies_migration.py checks they
cover every table of aiconsole.platform.db.rls.PROTECTED_TABLES. SQLite has no row-level security;
there this revision does nothing. downgrade puts 0002's policies back and drops the two new ones.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of 0002's lists: every row belongs to one organization, or (shared) may be platform-wide.
TENANT_TABLES = (
    'ai_dashboard_metrics',
    'ai_processing_results',
    'corrections',
    'experiments',
    'photo_tags',
    'photos',
    'pipeline_config',
    'processing_rollups_hourly',
    'prompt_labels',
    'prompt_versions',
    'prompts',
    'provider_configs',
    'users',
    'validation_runs',
)
SHARED_TABLES = (
    'ai_provider_health',
    'audit_log',
)
# Newly protected here.
USER_SCOPED_TABLES = ('login_sessions',)
SERVICE_ONLY_TABLES = ('workers',)

# As in 0002: each wrapped in a scalar subquery, so PostgreSQL evaluates it once per query, not per row.
CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
LEGACY_SERVICE = "(SELECT current_setting('app.bypass_rls', true)) = 'on'"

TENANT_POLICY = 'tenant_isolation'
SERVICE_POLICY = 'service_only'


def _service(table: str) -> str:
    # USAGE: the role has the owner's privileges without SET ROLE, i.e. it could ALTER TABLE itself.
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def _rules() -> dict[str, tuple[str, str]]:
    """Table -> (policy name, rule) for every protected table."""
    rules = {'organizations': (TENANT_POLICY, f"id = {CURRENT_ORG} OR {_service('organizations')}")}
    for table in TENANT_TABLES + SHARED_TABLES:
        rules[table] = (TENANT_POLICY, f"organization_id = {CURRENT_ORG} OR {_service(table)}")
    for table in USER_SCOPED_TABLES:
        # users is itself confined to the current organization, and the subquery names it explicitly too.
        own_user = (f"EXISTS (SELECT 1 FROM users u WHERE u.id = {table}.user_id "
                    f"AND u.organization_id = {CURRENT_ORG})")
        rules[table] = (TENANT_POLICY, f"{own_user} OR {_service(table)}")
    for table in SERVICE_ONLY_TABLES:
        rules[table] = (SERVICE_POLICY, _service(table))
    return rules


def _create(table: str, policy: str, rule: str) -> None:
    op.execute(f'CREATE POLICY {policy} ON {table} USING ({rule}) WITH CHECK ({rule})')


def upgrade() -> None:
    """Recreate the isolation policies without the setting, and protect login_sessions and workers."""
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, (policy, rule) in _rules().items():
        if table in USER_SCOPED_TABLES + SERVICE_ONLY_TABLES:
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
        else:
            op.execute(f'DROP POLICY {TENANT_POLICY} ON {table}')
        _create(table, policy, rule)


def downgrade() -> None:
    """Back to 0002's setting-based policies; login_sessions and workers unprotected again."""
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, (policy, _rule) in _rules().items():
        op.execute(f'DROP POLICY {policy} ON {table}')
        if table in USER_SCOPED_TABLES + SERVICE_ONLY_TABLES:
            op.execute(f'ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} DISABLE ROW LEVEL SECURITY')
        else:
            key = 'id' if table == 'organizations' else 'organization_id'
            _create(table, TENANT_POLICY, f"{key} = {CURRENT_ORG} OR {LEGACY_SERVICE}")
