"""Batch corrections: correction_batches (one run of a template over a selection of tags) and
correction_batch_items (every tag or photo it changed, with its exact values before and after); ground truth
may now come from a batch.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

- correction_batches: the template and its parameters, the selection (filters as JSON), the status
  (running, completed, failed, cancelled, undoing, undone), counts (matched, processed, changed, failed; after
  an undo restored and kept), who started and undid it and when, and the error that stopped it.
- correction_batch_items: one row per change (a tag renamed, accepted, rejected, removed or added; a photo's
  status and ground truth), its values before and after, and rows the batch could not change (with `error`); `undo_result` says
  what its undo did (restored, or kept because someone changed the row since). No foreign key to
  organizations: 100,000 of them are written per large batch and each check would lock the organization's
  row; an item belongs to its organization through batch_id (ON DELETE CASCADE), and RLS's WITH CHECK
  guards console writes.
- ground_truth.source also allows 'batch' (a label a batch correction confirmed). Downgrade turns those rows
  into 'review' rows (an admin's review in bulk) before restoring the three sources.

Both new tables belong to one organization: on PostgreSQL row-level security is enabled, forced and given
0006's policy, as in 0009 (RLS_TENANT_TABLES names them for tests/migrations). Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

# Creation order respects foreign keys; downgrade drops in the reverse order.
RLS_TENANT_TABLES = ('correction_batches', 'correction_batch_items')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'

TEMPLATES = "'rename', 'remove', 'add', 'accept', 'reject'"
STATUSES = "'running', 'completed', 'failed', 'cancelled', 'undoing', 'undone'"
ITEM_ACTIONS = "'rename', 'remove', 'add', 'accept', 'reject', 'photo'"
UNDO_RESULTS = "'restored', 'kept'"
SOURCES_BEFORE = "source IN ('review', 'import', 'adjudication')"
SOURCES_AFTER = "source IN ('review', 'import', 'adjudication', 'batch')"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def _truth_sources(rule: str) -> None:
    # Batch mode: SQLite rebuilds the table to change a CHECK; PostgreSQL drops and adds the constraint.
    with op.batch_alter_table('ground_truth') as batch:
        batch.drop_constraint(op.f('ck_ground_truth_source'), type_='check')
        batch.create_check_constraint(op.f('ck_ground_truth_source'), rule)


def upgrade() -> None:
    """Create the two tables and their indexes, protect them on PostgreSQL, allow ground truth from a batch."""
    op.create_table('correction_batches',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('template', sa.String(length=16), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('selection', JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('matched', sa.BigInteger(), nullable=False),
    sa.Column('processed', sa.BigInteger(), nullable=False),
    sa.Column('changed', sa.BigInteger(), nullable=False),
    sa.Column('failed', sa.BigInteger(), nullable=False),
    sa.Column('restored', sa.BigInteger(), nullable=False),
    sa.Column('kept', sa.BigInteger(), nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.Column('undone_by', ID, nullable=True),
    sa.Column('undone_at', TIMESTAMP, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint(f'template IN ({TEMPLATES})', name=op.f('ck_correction_batches_template')),
    sa.CheckConstraint(f'status IN ({STATUSES})', name=op.f('ck_correction_batches_status')),
    _fk('correction_batches', 'organization_id', 'organizations', 'CASCADE'),
    _fk('correction_batches', 'created_by', 'users', 'SET NULL'),
    _fk('correction_batches', 'undone_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correction_batches'))
    )
    op.create_index('ix_correction_batches_org_created', 'correction_batches', ['organization_id', 'created_at'])
    op.create_index(op.f('ix_correction_batches_created_by'), 'correction_batches', ['created_by'])
    op.create_index(op.f('ix_correction_batches_undone_by'), 'correction_batches', ['undone_by'])

    op.create_table('correction_batch_items',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('batch_id', ID, nullable=False),
    sa.Column('tag_id', ID, nullable=True),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('before', JSON, nullable=True),
    sa.Column('after', JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('undo_result', sa.String(length=16), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint(f'action IN ({ITEM_ACTIONS})', name=op.f('ck_correction_batch_items_action')),
    sa.CheckConstraint(f'undo_result IN ({UNDO_RESULTS})', name=op.f('ck_correction_batch_items_undo_result')),
    _fk('correction_batch_items', 'batch_id', 'correction_batches', 'CASCADE'),
    _fk('correction_batch_items', 'tag_id', 'photo_tags', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correction_batch_items'))
    )
    op.create_index(op.f('ix_correction_batch_items_batch_id'), 'correction_batch_items', ['batch_id'])
    op.create_index(op.f('ix_correction_batch_items_tag_id'), 'correction_batch_items', ['tag_id'])

    _truth_sources(SOURCES_AFTER)

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the two tables (their policies go with them); ground truth from batches becomes 'review'."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
    op.execute("UPDATE ground_truth SET source = 'review' WHERE source = 'batch'")
    _truth_sources(SOURCES_BEFORE)
