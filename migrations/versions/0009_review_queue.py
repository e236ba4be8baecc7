"""Quality Control's tables: review claims (leases), reviews, their per-tag decisions, and ground truth.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

- review_claims: a reviewer's lease on one photo (one claim per photo: UNIQUE photo_id), until expires_at.
- reviews: one submitted review of a photo; claim_token is UNIQUE, so a review submitted twice is recorded once.
- review_decisions: per tag, approve / reject (with a reason) / rename, and tags the reviewer added, with the
  tag's label, confidence, rule verdict, provider, model and prompt version as they were when decided.
- ground_truth: a photo's labels after review, UNIQUE (photo_id, label).

Every table belongs to one organization: on PostgreSQL row-level security is enabled, forced and given 0006's
policy (the row's organization is the transaction's, or the role holds the table owner's privileges).
RLS_TENANT_TABLES names them for tests/migrations, which check that 0002, 0006 and later revisions together
protect every org-scoped table. SQLite has no row-level security. Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)

# Creation order respects foreign keys; downgrade drops in the reverse order.
RLS_TENANT_TABLES = ('review_claims', 'reviews', 'review_decisions', 'ground_truth')

# As in 0006, each wrapped in a scalar subquery so PostgreSQL evaluates it once per query, not per row.
CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'

ORDERS = "'lowest_confidence', 'oldest', 'random', 'disagreement'"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'),
                                   ondelete=ondelete)


def _org(table: str) -> tuple[sa.Column, sa.ForeignKeyConstraint]:
    return sa.Column('organization_id', ID, nullable=False), _fk(table, 'organization_id', 'organizations', 'CASCADE')


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def upgrade() -> None:
    """Create the four tables and their indexes; protect them with row-level security on PostgreSQL."""
    org_col, org_fk = _org('review_claims')
    op.create_table('review_claims',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    org_col,
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('reviewer_id', ID, nullable=False),
    sa.Column('token', sa.String(length=36), nullable=False),
    sa.Column('queue_order', sa.String(length=24), nullable=False),
    sa.Column('claimed_at', TIMESTAMP, nullable=False),
    sa.Column('expires_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint(f'queue_order IN ({ORDERS})', name=op.f('ck_review_claims_queue_order')),
    org_fk,
    _fk('review_claims', 'photo_id', 'photos', 'CASCADE'),
    _fk('review_claims', 'reviewer_id', 'users', 'CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_claims')),
    sa.UniqueConstraint('photo_id', name=op.f('uq_review_claims_photo_id')),
    sa.UniqueConstraint('token', name=op.f('uq_review_claims_token'))
    )
    op.create_index(op.f('ix_review_claims_reviewer_id'), 'review_claims', ['reviewer_id'])

    org_col, org_fk = _org('reviews')
    op.create_table('reviews',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    org_col,
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('reviewer_id', ID, nullable=True),
    sa.Column('claim_token', sa.String(length=36), nullable=False),
    sa.Column('queue_order', sa.String(length=24), nullable=False),
    sa.Column('claimed_at', TIMESTAMP, nullable=False),
    sa.Column('submitted_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint(f'queue_order IN ({ORDERS})', name=op.f('ck_reviews_queue_order')),
    org_fk,
    _fk('reviews', 'photo_id', 'photos', 'CASCADE'),
    _fk('reviews', 'reviewer_id', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
    sa.UniqueConstraint('claim_token', name=op.f('uq_reviews_claim_token'))
    )
    op.create_index('ix_reviews_org_submitted', 'reviews', ['organization_id', 'submitted_at'])
    op.create_index(op.f('ix_reviews_photo_id'), 'reviews', ['photo_id'])
    op.create_index(op.f('ix_reviews_reviewer_id'), 'reviews', ['reviewer_id'])

    org_col, org_fk = _org('review_decisions')
    op.create_table('review_decisions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    org_col,
    sa.Column('review_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('tag_id', ID, nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('label_before', sa.String(length=200), nullable=True),
    sa.Column('label_after', sa.String(length=200), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('ai_verdict', sa.String(length=16), nullable=True),
    sa.Column('ai_provider', sa.String(length=32), nullable=True),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('prompt_version_id', ID, nullable=True),
    sa.Column('reviewer_id', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("action IN ('approve', 'reject', 'rename', 'add')",
                       name=op.f('ck_review_decisions_action')),
    sa.CheckConstraint("reason IN ('wrong', 'too_generic', 'duplicate', 'offensive', 'other')",
                       name=op.f('ck_review_decisions_reason')),
    sa.CheckConstraint("(action = 'reject') = (reason IS NOT NULL)",
                       name=op.f('ck_review_decisions_reject_has_reason')),
    org_fk,
    _fk('review_decisions', 'review_id', 'reviews', 'CASCADE'),
    _fk('review_decisions', 'photo_id', 'photos', 'CASCADE'),
    _fk('review_decisions', 'tag_id', 'photo_tags', 'SET NULL'),
    _fk('review_decisions', 'prompt_version_id', 'prompt_versions', 'SET NULL'),
    _fk('review_decisions', 'reviewer_id', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions'))
    )
    op.create_index('ix_review_decisions_org_created', 'review_decisions', ['organization_id', 'created_at'])
    for column in ('review_id', 'photo_id', 'tag_id', 'prompt_version_id', 'reviewer_id'):
        op.create_index(op.f(f'ix_review_decisions_{column}'), 'review_decisions', [column])

    org_col, org_fk = _org('ground_truth')
    op.create_table('ground_truth',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    org_col,
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('review_id', ID, nullable=True),
    sa.Column('set_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("source IN ('review', 'import', 'adjudication')", name=op.f('ck_ground_truth_source')),
    org_fk,
    _fk('ground_truth', 'photo_id', 'photos', 'CASCADE'),
    _fk('ground_truth', 'review_id', 'reviews', 'SET NULL'),
    _fk('ground_truth', 'set_by', 'users', 'SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ground_truth')),
    sa.UniqueConstraint('photo_id', 'label', name=op.f('uq_ground_truth_photo_id_label'))
    )
    op.create_index('ix_ground_truth_org_label', 'ground_truth', ['organization_id', 'label'])
    op.create_index(op.f('ix_ground_truth_review_id'), 'ground_truth', ['review_id'])
    op.create_index(op.f('ix_ground_truth_set_by'), 'ground_truth', ['set_by'])

    if op.get_bind().dialect.name == 'postgresql':
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')


def downgrade() -> None:
    """Drop the four tables (their policies go with them)."""
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
