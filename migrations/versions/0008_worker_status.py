"""workers.last_error: why a worker is unhealthy (Redis or the database down), beside its status.

A worker that cannot reach Redis or the database holds its photos and heartbeats status 'unhealthy' with
the reason here, so system health (`aiconsole health`, Live Status) says which worker and why; the column
is cleared when the worker works again. Existing rows get NULL (nothing known to be wrong).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("last_error")
