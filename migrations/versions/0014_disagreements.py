"""Provider and prompt-version disagreement: photo_disagreements (a photo's lowest Jaccard similarity between
two sources' label sets, and which two results), disagreement_refresh (each organization's refresh watermark),
and quality_settings.disagreement_threshold.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

- photo_disagreements: one row per photo (photo_id is the primary key, CASCADE) that has results from two or
  more sources (provider, model, prompt version): jaccard in 0..1 (CHECK), sources >= 2 (CHECK), the two
  results of the lowest pair (no foreign key: a result goes only with its photo), when computed. Indexed by
  (organization_id, jaccard, photo_id): the disagreement order's walk, lowest first.
- disagreement_refresh: per organization (primary key) how far results are counted: every result stamped
  before (through_created_at, through_result_id) is in the facts (quality/disagreement.py).
- quality_settings.disagreement_threshold: 0..1 (CHECK), 0.5 for the rows already there.

Both new tables belong to one organization: on PostgreSQL row-level security is enabled, forced and given
0006's policy, as in 0013 (RLS_TENANT_TABLES names them for tests/migrations). The disagreement order itself
needs no change to the queue orders: 0009 allowed 'disagreement' from the start. Downgrade drops the
tables and the column and gives back the disagreement order's claims (leases the code of 0013 cannot
resume); reviews made in that order stay: they are the record of decisions taken, and 0009 allows the order.
Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)

RLS_TENANT_TABLES = ('photo_disagreements', 'disagreement_refresh')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def upgrade() -> None:
    """Create the two tables and the threshold column; protect the tables with row-level security on PostgreSQL."""
    op.create_table('photo_disagreements',
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('jaccard', sa.Float(), nullable=False),
    sa.Column('sources', sa.Integer(), nullable=False),
    sa.Column('result_a_id', ID, nullable=False),
    sa.Column('result_b_id', ID, nullable=False),
    sa.Column('computed_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint('jaccard >= 0 AND jaccard <= 1', name=op.f('ck_photo_disagreements_jaccard')),
    sa.CheckConstraint('sources >= 2', name=op.f('ck_photo_disagreements_sources')),
    _fk('photo_disagreements', 'photo_id', 'photos', 'CASCADE'),
    _fk('photo_disagreements', 'organization_id', 'organizations', 'CASCADE'),
    sa.PrimaryKeyConstraint('photo_id', name=op.f('pk_photo_disagreements'))
    )
    op.create_index('ix_photo_disagreements_org_jaccard', 'photo_disagreements',
                    ['organization_id', 'jaccard', 'photo_id'])

    op.create_table('disagreement_refresh',
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('through_created_at', TIMESTAMP, nullable=True),
    sa.Column('through_result_id', sa.BigInteger(), nullable=False),
    sa.Column('refreshed_at', TIMESTAMP, nullable=False),
    _fk('disagreement_refresh', 'organization_id', 'organizations', 'CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_disagreement_refresh'))
    )

    with op.batch_alter_table('quality_settings') as batch:
        batch.add_column(sa.Column('disagreement_threshold', sa.Float(), nullable=False, server_default='0.5'))
        batch.create_check_constraint(op.f('ck_quality_settings_disagreement_threshold'),
                                      'disagreement_threshold >= 0 AND disagreement_threshold <= 1')

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the two tables (their policies go with them) and the threshold column; release the disagreement
    order's claims."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
    with op.batch_alter_table('quality_settings') as batch:
        batch.drop_constraint(op.f('ck_quality_settings_disagreement_threshold'), type_='check')
        batch.drop_column('disagreement_threshold')
    op.execute("DELETE FROM review_claims WHERE queue_order = 'disagreement'")
