"""Index the ON DELETE SET NULL foreign keys, so deleting a parent does not scan the child table;
and partial indexes for the oldest pending photo and the workers' claim order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_ai_processing_results_experiment_id", "ai_processing_results", "experiment_id"),
    ("ix_ai_processing_results_prompt_version_id", "ai_processing_results", "prompt_version_id"),
    ("ix_corrections_tag_id", "corrections", "tag_id"),
    ("ix_photo_tags_result_id", "photo_tags", "result_id"),
)


PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])
    op.create_index("ix_photos_pending_created", "photos", ["organization_id", "created_at"],
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_photos_pending_priority", "photos", [sa.text("priority DESC"), "created_at", "id"],
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_photos_pending_priority", table_name="photos")
    op.drop_index("ix_photos_pending_created", table_name="photos")
    for name, table, _column in reversed(INDEXES):
        op.drop_index(name, table_name=table)
