"""Row-level security: on PostgreSQL every org-scoped table shows and accepts only the current org's rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:00:00

The policies key on two transaction-local settings that aiconsole.db.engine sets at every BEGIN:
`app.current_organization_id` (org_session) and `app.bypass_rls` = 'on' (service_session, migrations).
FORCE applies them to the tables' owner too, so an application role that owns its tables is still
confined; only superusers and BYPASSRLS roles skip them.

Tables with a nullable organization_id hold platform-wide rows (organization_id NULL): every org
session may read those, but only the service context may write them.

The table lists are hard-coded: a migration must keep meaning the same thing whatever the models
become. tests/migrations/test_migrations.py checks they match aiconsole.db.models.ORG_SCOPED_TABLES.
SQLite has no row-level security; there this revision does nothing.
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables whose every row belongs to one organization (organization_id NOT NULL).
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
# Tables whose organization_id is nullable: NULL marks a platform-wide row.
SHARED_TABLES = (
    'ai_provider_health',
    'audit_log',
)

# '' after a transaction-local setting ends, NULL when never set: both mean "no organization".
# Wrapped in scalar subqueries so PostgreSQL evaluates each once per query (an InitPlan), not once per row:
# measured on 5M results, live_snapshot went from 63-73 ms to 45-48 ms.
CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
SERVICE = "(SELECT current_setting('app.bypass_rls', true)) = 'on'"

TENANT_POLICY = 'tenant_isolation'
SHARED_READ_POLICY = 'platform_rows_readable'


def _protect(table: str, key: str) -> None:
    rule = f"{key} = {CURRENT_ORG} OR {SERVICE}"
    op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
    op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def upgrade() -> None:
    """Enable, force and define the isolation policies (PostgreSQL only)."""
    if op.get_bind().dialect.name != 'postgresql':
        return
    _protect('organizations', 'id')
    for table in TENANT_TABLES + SHARED_TABLES:
        _protect(table, 'organization_id')
    for table in SHARED_TABLES:
        # Permissive policies are OR-ed per command; this one exists for SELECT only, so UPDATE and
        # DELETE still see platform rows only through tenant_isolation, i.e. in the service context.
        op.execute(
            f'CREATE POLICY {SHARED_READ_POLICY} ON {table} FOR SELECT '
            f'USING (organization_id IS NULL AND {CURRENT_ORG} IS NOT NULL)'
        )


def downgrade() -> None:
    """Drop the policies and switch row-level security off (PostgreSQL only)."""
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in SHARED_TABLES:
        op.execute(f'DROP POLICY IF EXISTS {SHARED_READ_POLICY} ON {table}')
    for table in ('organizations', *TENANT_TABLES, *SHARED_TABLES):
        op.execute(f'DROP POLICY IF EXISTS {TENANT_POLICY} ON {table}')
        op.execute(f'ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE {table} DISABLE ROW LEVEL SECURITY')
