"""Golden sets: golden_sets (one frozen version of a named set of reviewed photos), golden_set_items (each
photo with its ground-truth labels at freeze time) and golden_set_runs (validation runs using a set).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

- golden_sets: name and version (UNIQUE per organization; version >= 1), description, how the photos were
  chosen (selection, JSON), photo and label counts and the labels' counts (label_counts, JSON), who froze it
  and when.
- golden_set_items: one row per photo (UNIQUE golden_set_id, photo_id) with its sha256, filename and labels
  (JSON list) copied at freeze time; photo_id is SET NULL when the photo is deleted, the copy stays. No
  foreign key to organizations (a set freezes up to 100,000 rows at once, and each check would lock the
  organization's row); an item belongs to its organization through golden_set_id (ON DELETE CASCADE), and
  RLS's WITH CHECK guards console writes.
- golden_set_runs: a validation run registered on a set (UNIQUE golden_set_id, validation_run_id); the set
  is locked until released_at (the application refuses to delete it, under a lock of the set's row);
  deleting the validation run or the set deletes its rows (CASCADE).

All three belong to one organization: on PostgreSQL row-level security is enabled, forced and given 0006's
policy, as in 0009 (RLS_TENANT_TABLES names them for tests/migrations). Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

# Creation order respects foreign keys; downgrade drops in the reverse order.
RLS_TENANT_TABLES = ('golden_sets', 'golden_set_items', 'golden_set_runs')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def upgrade() -> None:
    """Create the three tables and their indexes; protect them with row-level security on PostgreSQL."""
    op.create_table('golden_sets',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('selection', JSON, nullable=False),
    sa.Column('photo_count', sa.BigInteger(), nullable=False),
    sa.Column('label_count', sa.BigInteger(), nullable=False),
    sa.Column('label_counts', JSON, nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_golden_sets_version')),
    _fk('golden_sets', 'organization_id', 'organizations', 'CASCADE'),
    _fk('golden_sets', 'created_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_golden_sets')),
    sa.UniqueConstraint('organization_id', 'name', 'version',
                        name=op.f('uq_golden_sets_organization_id_name_version'))
    )
    op.create_index(op.f('ix_golden_sets_created_by'), 'golden_sets', ['created_by'])

    op.create_table('golden_set_items',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('golden_set_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=512), nullable=False),
    sa.Column('labels', JSON, nullable=False),
    _fk('golden_set_items', 'golden_set_id', 'golden_sets', 'CASCADE'),
    _fk('golden_set_items', 'photo_id', 'photos', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_golden_set_items')),
    sa.UniqueConstraint('golden_set_id', 'photo_id', name=op.f('uq_golden_set_items_golden_set_id_photo_id'))
    )
    op.create_index(op.f('ix_golden_set_items_golden_set_id'), 'golden_set_items', ['golden_set_id'])
    op.create_index(op.f('ix_golden_set_items_photo_id'), 'golden_set_items', ['photo_id'])

    op.create_table('golden_set_runs',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('golden_set_id', ID, nullable=False),
    sa.Column('validation_run_id', ID, nullable=False),
    sa.Column('registered_at', TIMESTAMP, nullable=False),
    sa.Column('released_at', TIMESTAMP, nullable=True),
    _fk('golden_set_runs', 'organization_id', 'organizations', 'CASCADE'),
    _fk('golden_set_runs', 'golden_set_id', 'golden_sets', 'CASCADE'),
    _fk('golden_set_runs', 'validation_run_id', 'validation_runs', 'CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_golden_set_runs')),
    sa.UniqueConstraint('golden_set_id', 'validation_run_id',
                        name=op.f('uq_golden_set_runs_golden_set_id_validation_run_id'))
    )
    op.create_index(op.f('ix_golden_set_runs_golden_set_id'), 'golden_set_runs', ['golden_set_id'])
    op.create_index(op.f('ix_golden_set_runs_validation_run_id'), 'golden_set_runs', ['validation_run_id'])

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the three tables (their policies go with them)."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
