"""Drop the organization foreign keys of ai_processing_results and photo_tags.

Every recorded photo writes one result and about five tags; each organization foreign key check takes a
FOR KEY SHARE lock on the same organizations row from every worker at once (a MultiXact per new set of
lockers) and was a fifth of the recording statement's time. Both tables still reach the organization
through photo_id (ON DELETE CASCADE), and row-level security's WITH CHECK keeps console writes in their
organization.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("ai_processing_results", "photo_tags")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_organization_id_organizations", type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(f"fk_{table}_organization_id_organizations", "organizations",
                                     ["organization_id"], ["id"], ondelete="CASCADE")
