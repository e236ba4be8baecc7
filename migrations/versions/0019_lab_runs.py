"""Batch tests of the Testing Lab: lab_runs (one batch test: prompt x provider/model over a set of photos, its
status, counts, cost and heartbeat) and lab_run_items (each photo's tags beside production's, cost, latency).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04

lab_run_items has no foreign key to organizations (a run writes one row per photo); it belongs to its
organization through run_id (CASCADE), and RLS's WITH CHECK guards console writes. Both tables belong to one
organization: on PostgreSQL row-level security is enabled, forced and given 0006's policy, as in 0014
(RLS_TENANT_TABLES names them for tests/migrations). Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0019'
down_revision: str | Sequence[str] | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

RLS_TENANT_TABLES = ('lab_runs', 'lab_run_items')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'
SOURCES = "'sample', 'golden', 'filter', 'shadow'"
STATUSES = "'running', 'completed', 'cancelled', 'interrupted', 'failed'"
ITEM_STATUSES = "'pending', 'done', 'failed'"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def upgrade() -> None:
    """Create the two tables and their indexes; protect them with row-level security on PostgreSQL."""
    op.create_table('lab_runs',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('selection', JSON, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('prompt_version_id', ID, nullable=True),
    sa.Column('draft', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('processed', sa.BigInteger(), nullable=False),
    sa.Column('failed', sa.BigInteger(), nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), nullable=False),
    sa.Column('estimate_micros', sa.BigInteger(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.Column('heartbeat_at', TIMESTAMP, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint(f'source IN ({SOURCES})', name=op.f('ck_lab_runs_source')),
    sa.CheckConstraint(f'status IN ({STATUSES})', name=op.f('ck_lab_runs_status')),
    _fk('lab_runs', 'organization_id', 'organizations', 'CASCADE'),
    _fk('lab_runs', 'prompt_version_id', 'prompt_versions', 'SET NULL'),
    _fk('lab_runs', 'created_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_runs'))
    )
    op.create_index('ix_lab_runs_org_created', 'lab_runs', ['organization_id', 'created_at'])
    op.create_index(op.f('ix_lab_runs_prompt_version_id'), 'lab_runs', ['prompt_version_id'])
    op.create_index(op.f('ix_lab_runs_created_by'), 'lab_runs', ['created_by'])

    op.create_table('lab_run_items',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('run_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tags', JSON, nullable=False),
    sa.Column('production_labels', JSON, nullable=False),
    sa.Column('tag_count', sa.Integer(), nullable=False),
    sa.Column('accepted_count', sa.Integer(), nullable=False),
    sa.Column('jaccard', sa.Float(), nullable=True),
    sa.Column('cost_micros', sa.BigInteger(), nullable=False),
    sa.Column('latency_ms', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.CheckConstraint(f'status IN ({ITEM_STATUSES})', name=op.f('ck_lab_run_items_status')),
    _fk('lab_run_items', 'run_id', 'lab_runs', 'CASCADE'),
    _fk('lab_run_items', 'photo_id', 'photos', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lab_run_items')),
    sa.UniqueConstraint('run_id', 'photo_id', name=op.f('uq_lab_run_items_run_id_photo_id'))
    )
    op.create_index('ix_lab_run_items_org_finished', 'lab_run_items', ['organization_id', 'finished_at'])
    op.create_index(op.f('ix_lab_run_items_run_id'), 'lab_run_items', ['run_id'])
    op.create_index(op.f('ix_lab_run_items_photo_id'), 'lab_run_items', ['photo_id'])

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the two tables (their policies go with them)."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
