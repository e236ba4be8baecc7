"""Batch heartbeats: correction_batches.heartbeat_at (stamped by every chunk of a running batch) and the
status 'interrupted' (a running batch whose heartbeat went stale: its process stopped).

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-05

- heartbeat_at: nullable; a batch from before this migration has none, and its creation time stands in for it
  (a batch still 'running' from before the upgrade is read as interrupted once that is old enough).
- status also allows 'interrupted'. Downgrade turns interrupted batches into 'failed' ones (what the code of
  0010 calls a batch that stopped with what it did kept and undoable) before restoring the six statuses, and
  drops the column.

No new table: correction_batches keeps 0010's row-level security. Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | Sequence[str] | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
STATUSES_BEFORE = "'running', 'completed', 'failed', 'cancelled', 'undoing', 'undone'"
STATUSES_AFTER = STATUSES_BEFORE + ", 'interrupted'"


def _statuses(allowed: str) -> None:
    # Batch mode: SQLite rebuilds the table to change a CHECK; PostgreSQL drops and adds the constraint.
    with op.batch_alter_table('correction_batches') as batch:
        batch.drop_constraint(op.f('ck_correction_batches_status'), type_='check')
        batch.create_check_constraint(op.f('ck_correction_batches_status'), f'status IN ({allowed})')


def upgrade() -> None:
    """Add heartbeat_at and allow the status 'interrupted'."""
    with op.batch_alter_table('correction_batches') as batch:
        batch.add_column(sa.Column('heartbeat_at', TIMESTAMP, nullable=True))
    _statuses(STATUSES_AFTER)


def downgrade() -> None:
    """Interrupted batches become failed ones; the six statuses of 0010 again; no heartbeat_at."""
    op.execute("UPDATE correction_batches SET status = 'failed' WHERE status = 'interrupted'")
    _statuses(STATUSES_BEFORE)
    with op.batch_alter_table('correction_batches') as batch:
        batch.drop_column('heartbeat_at')
