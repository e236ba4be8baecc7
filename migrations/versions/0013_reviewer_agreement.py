"""Reviewer agreement: quality_settings (an organization's share of reviewed photos sent to a second reviewer,
versioned) and double_reviews (a photo routed to a second, blind reviewer, and its adjudication); reviews and
review_claims accept the queue order 'second_review'.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

- quality_settings: one row per organization (organization_id is the primary key): double_review_share in
  0..1 (CHECK), version >= 1 (CHECK), who changed it last and when. No row means the default share.
- double_reviews: one per photo (UNIQUE photo_id); first_review_id is NOT NULL and CASCADE (undoing the first
  review takes the routing with it), second_review_id SET NULL; status waiting / reviewed / adjudicated
  (CHECK); who adjudicated and when.
- reviews.queue_order and review_claims.queue_order allow 'second_review' besides 0009's orders (batch mode:
  SQLite rebuilds the tables, with foreign keys off as env.py runs every revision).

Both new tables belong to one organization: on PostgreSQL row-level security is enabled, forced and given
0006's policy, as in 0009 (RLS_TENANT_TABLES names them for tests/migrations). Downgrade deletes second
reviews and second-review claims (0012's CHECK would refuse them) with the two tables.
Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)

# Creation order respects foreign keys; downgrade drops in the reverse order.
RLS_TENANT_TABLES = ('quality_settings', 'double_reviews')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'

ORDERS_BEFORE = "queue_order IN ('lowest_confidence', 'oldest', 'random', 'disagreement')"
ORDERS_AFTER = "queue_order IN ('lowest_confidence', 'oldest', 'random', 'disagreement', 'second_review')"
STATUSES = "'waiting', 'reviewed', 'adjudicated'"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def _orders(rule: str) -> None:
    for table in ('review_claims', 'reviews'):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f'ck_{table}_queue_order'), type_='check')
            batch.create_check_constraint(op.f(f'ck_{table}_queue_order'), rule)


def upgrade() -> None:
    """Create the two tables, widen the queue orders; protect the tables with row-level security on PostgreSQL."""
    op.create_table('quality_settings',
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('double_review_share', sa.Float(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', ID, nullable=True),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint('double_review_share >= 0 AND double_review_share <= 1',
                       name=op.f('ck_quality_settings_double_review_share')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_quality_settings_version')),
    _fk('quality_settings', 'organization_id', 'organizations', 'CASCADE'),
    _fk('quality_settings', 'updated_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_quality_settings'))
    )
    op.create_index(op.f('ix_quality_settings_updated_by'), 'quality_settings', ['updated_by'])

    op.create_table('double_reviews',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('first_review_id', ID, nullable=False),
    sa.Column('second_review_id', ID, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('adjudicated_by', ID, nullable=True),
    sa.Column('adjudicated_at', TIMESTAMP, nullable=True),
    sa.CheckConstraint(f'status IN ({STATUSES})', name=op.f('ck_double_reviews_status')),
    _fk('double_reviews', 'organization_id', 'organizations', 'CASCADE'),
    _fk('double_reviews', 'photo_id', 'photos', 'CASCADE'),
    _fk('double_reviews', 'first_review_id', 'reviews', 'CASCADE'),
    _fk('double_reviews', 'second_review_id', 'reviews', 'SET NULL'),
    _fk('double_reviews', 'adjudicated_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_double_reviews')),
    sa.UniqueConstraint('photo_id', name=op.f('uq_double_reviews_photo_id'))
    )
    op.create_index('ix_double_reviews_org_status', 'double_reviews', ['organization_id', 'status'])
    op.create_index(op.f('ix_double_reviews_first_review_id'), 'double_reviews', ['first_review_id'])
    op.create_index(op.f('ix_double_reviews_second_review_id'), 'double_reviews', ['second_review_id'])
    op.create_index(op.f('ix_double_reviews_adjudicated_by'), 'double_reviews', ['adjudicated_by'])

    _orders(ORDERS_AFTER)

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the two tables (their policies go with them); second reviews and their claims are deleted."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
    op.execute("DELETE FROM review_claims WHERE queue_order = 'second_review'")
    # Spelled out: SQLite migrates with foreign keys off, so no CASCADE or SET NULL would fire.
    second = "(SELECT id FROM reviews WHERE queue_order = 'second_review')"
    op.execute(f"DELETE FROM review_decisions WHERE review_id IN {second}")
    op.execute(f"UPDATE ground_truth SET review_id = NULL WHERE review_id IN {second}")
    op.execute("DELETE FROM reviews WHERE queue_order = 'second_review'")
    _orders(ORDERS_BEFORE)
