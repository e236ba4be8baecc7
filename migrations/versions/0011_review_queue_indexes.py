"""Indexes the review queue's next-photo queries walk (aiconsole/quality/queue_next.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

- ix_photo_tags_undecided_confidence: undecided AI tags not recorded as needs_review, by confidence (then photo) per
  organization: the tags a threshold change moved into the review band (a range of confidence), few in
  steady state, so the range holds only them;
- ix_photo_tags_needs_review_confidence: tags recorded as needs_review and not yet decided, by confidence;
- ix_photos_needs_review_created: photos in needs_review by arrival (the oldest order).

All partial, so each holds only what waits. Measured on PostgreSQL with 1,000,000 photos awaiting review
(benchmarks/bench_quality.py): the claims stop at the first matching row instead of ordering the queue.
Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDECIDED_AI = "reviewed_at IS NULL AND source = 'ai' AND review_state <> 'needs_review'"
RECORDED_REVIEW = "review_state = 'needs_review' AND reviewed_at IS NULL"
IN_REVIEW = "status = 'needs_review'"


def upgrade() -> None:
    op.create_index("ix_photo_tags_undecided_confidence", "photo_tags", ["organization_id", "confidence", "photo_id"],
                    postgresql_where=sa.text(UNDECIDED_AI), sqlite_where=sa.text(UNDECIDED_AI))
    op.create_index("ix_photo_tags_needs_review_confidence", "photo_tags",
                    ["organization_id", "confidence", "photo_id"],
                    postgresql_where=sa.text(RECORDED_REVIEW), sqlite_where=sa.text(RECORDED_REVIEW))
    op.create_index("ix_photos_needs_review_created", "photos", ["organization_id", "created_at"],
                    postgresql_where=sa.text(IN_REVIEW), sqlite_where=sa.text(IN_REVIEW))


def downgrade() -> None:
    op.drop_index("ix_photos_needs_review_created", table_name="photos")
    op.drop_index("ix_photo_tags_needs_review_confidence", table_name="photo_tags")
    op.drop_index("ix_photo_tags_undecided_confidence", table_name="photo_tags")
