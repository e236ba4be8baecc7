"""pipeline_config.pause_kind: why an organization is paused (manual, daily_budget, monthly_budget,
circuit_open, provider_disabled), so the worker lifts its own pauses by kind instead of by matching the
reason's text.

Existing pauses are classified from the reason texts the worker wrote until now; any other pause is manual.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the vocabulary and of the worker's reason texts as of this revision.
PAUSE_KINDS = ("manual", "daily_budget", "monthly_budget", "circuit_open", "provider_disabled")
REASON_KINDS = (("Daily budget of %", "daily_budget"), ("Monthly budget of %", "monthly_budget"),
                ("Provider circuit open:%", "circuit_open"), ("Provider disabled:%", "provider_disabled"))


def upgrade() -> None:
    with op.batch_alter_table("pipeline_config") as batch:
        batch.add_column(sa.Column("pause_kind", sa.String(length=32), nullable=True))
        batch.create_check_constraint(op.f("ck_pipeline_config_pause_kind"),
                                      "pause_kind IN (" + ", ".join(repr(k) for k in PAUSE_KINDS) + ")")
    config = sa.table("pipeline_config", sa.column("paused", sa.Boolean), sa.column("pause_reason", sa.Text),
                      sa.column("pause_kind", sa.String))
    for pattern, kind in REASON_KINDS:
        op.execute(config.update().where(config.c.paused.is_(True), config.c.pause_kind.is_(None),
                                         config.c.pause_reason.like(pattern)).values(pause_kind=kind))
    op.execute(config.update().where(config.c.paused.is_(True), config.c.pause_kind.is_(None))
               .values(pause_kind="manual"))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_config") as batch:
        batch.drop_constraint(op.f("ck_pipeline_config_pause_kind"), type_="check")
        batch.drop_column("pause_kind")
