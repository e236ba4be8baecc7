"""Durations, token and unit counts and rollup counters become BIGINT: a wait over 24.8 days fit no INTEGER.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

A photo retried 30 days after it was queued waited 2,592,000,000 ms, past INTEGER's 2,147,483,647: on
PostgreSQL its result row failed the whole recording batch and the reaper's chunk. Widened: the result's
`*_ms`, token and unit counts, the health sample's response time, and every counter of the hourly rollups.
Attempts, tag counts, versions and the like stay INTEGER.

PostgreSQL rewrites each table once (one ALTER TABLE per table, every column in it), holding an ACCESS
EXCLUSIVE lock meanwhile: on a large ai_processing_results that takes a while, so run it with the workers
stopped. SQLite stores 64-bit integers in INTEGER anyway; there only the declared types change (a batch
copy of each table). ai_processing_results is the parent of photo_tags.result_id (ON DELETE SET NULL) and
SQLite's DROP TABLE of the old copy deletes its rows first, which would null every tag's result_id: the
links are kept aside and put back.

downgrade narrows back; values above INTEGER's maximum are capped to it on PostgreSQL (the narrow schema
cannot hold them).
"""
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INT_MAX = 2**31 - 1

# Frozen copy of the widened columns as of this revision: table -> (column, nullable).
_ROLLUP_COUNTERS = (
    'results_count', 'completed_count', 'needs_review_count', 'failed_count', 'retry_count_sum', 'tag_count',
    'confidence_count', *(f'latency_b{i}' for i in range(10)), *(f'wait_b{i}' for i in range(10)),
)
WIDENED: dict[str, tuple[tuple[str, bool], ...]] = {
    'ai_processing_results': tuple((c, False) for c in (
        'input_tokens', 'output_tokens', 'units', 'queue_wait_time_ms', 'provider_response_time_ms',
        'total_processing_time_ms')),
    'ai_provider_health': (('response_time_ms', True),),
    'processing_rollups_hourly': tuple((c, False) for c in _ROLLUP_COUNTERS),
}


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger(), 'BIGINT', using=None)


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer(), 'INTEGER', using=f'LEAST({{col}}, {INT_MAX})')


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int], sql_type: str, *,
            using: str | None) -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table, columns in WIDENED.items():
            clauses = ', '.join(
                f'ALTER COLUMN {col} TYPE {sql_type}' + (f' USING {using.format(col=col)}' if using else '')
                for col, _ in columns)
            op.execute(f'ALTER TABLE {table} {clauses}')
        return
    with _result_links_kept():
        for table, columns in WIDENED.items():
            with op.batch_alter_table(table) as batch:
                for col, nullable in columns:
                    batch.alter_column(col, existing_type=old, type_=new, existing_nullable=nullable)


@contextmanager
def _result_links_kept() -> Iterator[None]:
    """SQLite: photo_tags.result_id put back as it was before ai_processing_results was copied (see above)."""
    op.execute('CREATE TEMPORARY TABLE _0007_result_links AS '
               'SELECT id, result_id FROM photo_tags WHERE result_id IS NOT NULL')
    yield
    op.execute('UPDATE photo_tags SET result_id = (SELECT k.result_id FROM _0007_result_links k '
               'WHERE k.id = photo_tags.id) WHERE id IN (SELECT id FROM _0007_result_links)')
    op.execute('DROP TABLE _0007_result_links')
