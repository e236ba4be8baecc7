"""Initial schema: every table, constraint and index of the console, on SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 13:27:35.237058

Frozen: this file must not import the application's models or types, so that it creates the
same schema whatever the models look like later. Column types are spelled out here instead:
integer ids (INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments; BIGINT on
PostgreSQL), JSON (JSONB on PostgreSQL) and timezone-aware timestamps (timestamptz on PostgreSQL;
on SQLite the application stores naive UTC text, see aiconsole.db.types.UTCDateTime).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
TIMESTAMP = sa.DateTime(timezone=True)

# Creation order respects foreign keys; downgrade drops in the reverse order.
TABLES = (
    'organizations',
    'workers',
    'ai_dashboard_metrics',
    'ai_provider_health',
    'photos',
    'processing_rollups_hourly',
    'users',
    'audit_log',
    'experiments',
    'login_sessions',
    'prompts',
    'provider_configs',
    'validation_runs',
    'pipeline_config',
    'prompt_versions',
    'ai_processing_results',
    'prompt_labels',
    'photo_tags',
    'corrections',
)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table('organizations',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('name', name=op.f('uq_organizations_name')),
    sa.UniqueConstraint('slug', name=op.f('uq_organizations_slug'))
    )
    op.create_table('workers',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('processed_count', sa.BigInteger(), nullable=False),
    sa.Column('started_at', TIMESTAMP, nullable=False),
    sa.Column('last_heartbeat_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    op.create_index(op.f('ix_workers_last_heartbeat_at'), 'workers', ['last_heartbeat_at'], unique=False)

    op.create_table('ai_dashboard_metrics',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('metric_type', sa.String(length=64), nullable=False),
    sa.Column('metric_value', sa.Float(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('timestamp', TIMESTAMP, nullable=False),
    sa.Column('metadata', JSON, nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_ai_dashboard_metrics_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_dashboard_metrics'))
    )
    op.create_index('ix_ai_dashboard_metrics_lookup', 'ai_dashboard_metrics', ['organization_id', 'metric_type', 'timestamp'], unique=False)

    op.create_table('ai_provider_health',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=True),
    sa.Column('provider_name', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response_time_ms', sa.Integer(), nullable=True),
    sa.Column('error_rate', sa.Float(), nullable=True),
    sa.Column('last_check', TIMESTAMP, nullable=False),
    sa.Column('error_details', JSON, nullable=True),
    sa.CheckConstraint("status IN ('healthy', 'degraded', 'down', 'unknown')", name=op.f('ck_ai_provider_health_status')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_ai_provider_health_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_provider_health'))
    )
    op.create_index('ix_ai_provider_health_org_checked', 'ai_provider_health', ['organization_id', 'last_check'], unique=False)
    op.create_index('ix_ai_provider_health_provider_checked', 'ai_provider_health', ['provider_name', 'last_check'], unique=False)

    op.create_table('photos',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_uri', sa.Text(), nullable=False),
    sa.Column('filename', sa.String(length=512), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('byte_size', sa.BigInteger(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_expires_at', TIMESTAMP, nullable=True),
    sa.Column('next_attempt_at', TIMESTAMP, nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('started_at', TIMESTAMP, nullable=True),
    sa.Column('completed_at', TIMESTAMP, nullable=True),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'needs_review', 'failed')", name=op.f('ck_photos_status')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_photos_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photos')),
    sa.UniqueConstraint('organization_id', 'sha256', name=op.f('uq_photos_organization_id_sha256'))
    )
    op.create_index('ix_photos_organization_id_status', 'photos', ['organization_id', 'status'], unique=False)
    # The claim query's index: pending photos of an org by priority (highest first), then age.
    # Partial on both dialects so it holds only the queue, not the history.
    op.create_index('ix_photos_pending_claim', 'photos', ['organization_id', sa.text('priority DESC'), 'created_at'], unique=False, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    # The reaper's index: leases of photos being processed, by expiry.
    op.create_index('ix_photos_processing_lease', 'photos', ['lease_expires_at'], unique=False, sqlite_where=sa.text("status = 'processing'"), postgresql_where=sa.text("status = 'processing'"))

    op.create_table('processing_rollups_hourly',
    sa.Column('organization_id', ID, autoincrement=False, nullable=False),
    sa.Column('hour', TIMESTAMP, nullable=False),
    sa.Column('ai_provider', sa.String(length=32), nullable=False),
    sa.Column('results_count', sa.Integer(), nullable=False),
    sa.Column('completed_count', sa.Integer(), nullable=False),
    sa.Column('needs_review_count', sa.Integer(), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('retry_count_sum', sa.Integer(), nullable=False),
    sa.Column('tag_count', sa.Integer(), nullable=False),
    sa.Column('cost_micros', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.BigInteger(), nullable=False),
    sa.Column('output_tokens', sa.BigInteger(), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('confidence_sum', sa.Float(), nullable=False),
    sa.Column('confidence_count', sa.Integer(), nullable=False),
    sa.Column('latency_ms_sum', sa.BigInteger(), nullable=False),
    sa.Column('queue_wait_ms_sum', sa.BigInteger(), nullable=False),
    sa.Column('latency_b0', sa.Integer(), nullable=False),
    sa.Column('latency_b1', sa.Integer(), nullable=False),
    sa.Column('latency_b2', sa.Integer(), nullable=False),
    sa.Column('latency_b3', sa.Integer(), nullable=False),
    sa.Column('latency_b4', sa.Integer(), nullable=False),
    sa.Column('latency_b5', sa.Integer(), nullable=False),
    sa.Column('latency_b6', sa.Integer(), nullable=False),
    sa.Column('latency_b7', sa.Integer(), nullable=False),
    sa.Column('latency_b8', sa.Integer(), nullable=False),
    sa.Column('latency_b9', sa.Integer(), nullable=False),
    sa.Column('wait_b0', sa.Integer(), nullable=False),
    sa.Column('wait_b1', sa.Integer(), nullable=False),
    sa.Column('wait_b2', sa.Integer(), nullable=False),
    sa.Column('wait_b3', sa.Integer(), nullable=False),
    sa.Column('wait_b4', sa.Integer(), nullable=False),
    sa.Column('wait_b5', sa.Integer(), nullable=False),
    sa.Column('wait_b6', sa.Integer(), nullable=False),
    sa.Column('wait_b7', sa.Integer(), nullable=False),
    sa.Column('wait_b8', sa.Integer(), nullable=False),
    sa.Column('wait_b9', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_processing_rollups_hourly_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', 'hour', 'ai_provider', name=op.f('pk_processing_rollups_hourly'))
    )
    op.create_table('users',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', TIMESTAMP, nullable=True),
    sa.Column('last_login_at', TIMESTAMP, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("role IN ('platform_admin', 'admin', 'developer', 'analyst', 'reviewer', 'viewer')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_users_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('audit_log',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=True),
    sa.Column('user_id', ID, nullable=True),
    sa.Column('actor', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity_type', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('before', JSON, nullable=True),
    sa.Column('after', JSON, nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('reversible', sa.Boolean(), nullable=False),
    sa.Column('reverted_by_id', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_audit_log_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reverted_by_id'], ['audit_log.id'], name=op.f('fk_audit_log_reverted_by_id_audit_log'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_org_created', 'audit_log', ['organization_id', 'created_at'], unique=False)
    op.create_index('ix_audit_log_org_entity', 'audit_log', ['organization_id', 'entity_type', 'entity_id'], unique=False)

    op.create_table('experiments',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('hypothesis', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('variants', JSON, nullable=False),
    sa.Column('primary_metric', sa.String(length=64), nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('started_at', TIMESTAMP, nullable=True),
    sa.Column('ended_at', TIMESTAMP, nullable=True),
    sa.CheckConstraint("status IN ('draft', 'running', 'stopped', 'completed')", name=op.f('ck_experiments_status')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_experiments_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_experiments_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiments')),
    sa.UniqueConstraint('organization_id', 'name', name=op.f('uq_experiments_organization_id_name'))
    )
    op.create_table('login_sessions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('expires_at', TIMESTAMP, nullable=False),
    sa.Column('revoked_at', TIMESTAMP, nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_sessions_token_hash'))
    )
    op.create_index(op.f('ix_login_sessions_user_id'), 'login_sessions', ['user_id'], unique=False)

    op.create_table('prompts',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_prompts_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_prompts_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompts')),
    sa.UniqueConstraint('organization_id', 'name', name=op.f('uq_prompts_organization_id_name'))
    )
    op.create_table('provider_configs',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('encrypted_secret', sa.Text(), nullable=True),
    sa.Column('secret_last4', sa.String(length=4), nullable=True),
    sa.Column('rate_limit_per_minute', sa.Integer(), nullable=False),
    sa.Column('timeout_seconds', sa.Float(), nullable=False),
    sa.Column('max_concurrency', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=512), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('price_overrides', JSON, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', ID, nullable=True),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("provider IN ('google-vision', 'gemini', 'local')", name=op.f('ck_provider_configs_provider')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_provider_configs_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_provider_configs_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_configs')),
    sa.UniqueConstraint('organization_id', 'provider', name=op.f('uq_provider_configs_organization_id_provider'))
    )
    op.create_table('validation_runs',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('config', JSON, nullable=False),
    sa.Column('metrics', JSON, nullable=False),
    sa.Column('created_by', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_validation_runs_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_validation_runs_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_validation_runs'))
    )
    op.create_table('pipeline_config',
    sa.Column('organization_id', ID, autoincrement=False, nullable=False),
    sa.Column('active_provider', sa.String(length=32), nullable=False),
    sa.Column('active_model', sa.String(length=128), nullable=False),
    sa.Column('active_prompt_id', ID, nullable=True),
    sa.Column('fallback_provider', sa.String(length=32), nullable=True),
    sa.Column('accept_threshold', sa.Float(), nullable=False),
    sa.Column('reject_threshold', sa.Float(), nullable=False),
    sa.Column('label_overrides', JSON, nullable=False),
    sa.Column('max_cost_per_photo_micros', sa.BigInteger(), nullable=True),
    sa.Column('daily_budget_micros', sa.BigInteger(), nullable=True),
    sa.Column('monthly_budget_micros', sa.BigInteger(), nullable=True),
    sa.Column('max_retries', sa.Integer(), nullable=False),
    sa.Column('worker_concurrency', sa.Integer(), nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('pause_reason', sa.Text(), nullable=True),
    sa.Column('paused_at', TIMESTAMP, nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', ID, nullable=True),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("active_provider IN ('google-vision', 'gemini', 'local')", name=op.f('ck_pipeline_config_active_provider')),
    sa.CheckConstraint('reject_threshold <= accept_threshold', name=op.f('ck_pipeline_config_thresholds')),
    sa.ForeignKeyConstraint(['active_prompt_id'], ['prompts.id'], name=op.f('fk_pipeline_config_active_prompt_id_prompts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_pipeline_config_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_pipeline_config_updated_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('organization_id', name=op.f('pk_pipeline_config'))
    )
    op.create_table('prompt_versions',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('prompt_id', ID, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('variables', JSON, nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('author_id', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_prompt_versions_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_prompt_versions_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_prompt_versions_prompt_id_prompts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_versions')),
    sa.UniqueConstraint('prompt_id', 'version', name=op.f('uq_prompt_versions_prompt_id_version'))
    )
    op.create_table('ai_processing_results',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('ai_provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('prompt_version_id', ID, nullable=True),
    sa.Column('experiment_id', ID, nullable=True),
    sa.Column('variant', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tags', JSON, nullable=False),
    sa.Column('tag_count', sa.Integer(), nullable=False),
    sa.Column('avg_confidence', sa.Float(), nullable=True),
    sa.Column('min_confidence', sa.Float(), nullable=True),
    sa.Column('api_cost_micros', sa.BigInteger(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('queue_wait_time_ms', sa.Integer(), nullable=False),
    sa.Column('provider_response_time_ms', sa.Integer(), nullable=False),
    sa.Column('total_processing_time_ms', sa.Integer(), nullable=False),
    sa.Column('retry_count', sa.Integer(), nullable=False),
    sa.Column('error_kind', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('trace', JSON, nullable=False),
    sa.Column('worker_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("status IN ('completed', 'needs_review', 'failed')", name=op.f('ck_ai_processing_results_status')),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_ai_processing_results_experiment_id_experiments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_ai_processing_results_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_ai_processing_results_photo_id_photos'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prompt_version_id'], ['prompt_versions.id'], name=op.f('fk_ai_processing_results_prompt_version_id_prompt_versions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_processing_results'))
    )
    op.create_index(op.f('ix_ai_processing_results_photo_id'), 'ai_processing_results', ['photo_id'], unique=False)
    op.create_index('ix_results_org_created_provider', 'ai_processing_results', ['organization_id', 'created_at', 'ai_provider'], unique=False)

    op.create_table('prompt_labels',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('prompt_id', ID, nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('version_id', ID, nullable=False),
    sa.Column('updated_by', ID, nullable=True),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_prompt_labels_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_prompt_labels_prompt_id_prompts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], name=op.f('fk_prompt_labels_updated_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['version_id'], ['prompt_versions.id'], name=op.f('fk_prompt_labels_version_id_prompt_versions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_labels')),
    sa.UniqueConstraint('prompt_id', 'label', name=op.f('uq_prompt_labels_prompt_id_label'))
    )
    op.create_table('photo_tags',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('result_id', ID, nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('review_state', sa.String(length=16), nullable=False),
    sa.Column('reviewed_by', ID, nullable=True),
    sa.Column('reviewed_at', TIMESTAMP, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.CheckConstraint("review_state IN ('accepted', 'needs_review', 'rejected', 'corrected')", name=op.f('ck_photo_tags_review_state')),
    sa.CheckConstraint("source IN ('ai', 'human')", name=op.f('ck_photo_tags_source')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_photo_tags_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_photo_tags_photo_id_photos'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['result_id'], ['ai_processing_results.id'], name=op.f('fk_photo_tags_result_id_ai_processing_results'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id'], name=op.f('fk_photo_tags_reviewed_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_tags'))
    )
    op.create_index('ix_photo_tags_org_review_state', 'photo_tags', ['organization_id', 'review_state'], unique=False)
    op.create_index(op.f('ix_photo_tags_photo_id'), 'photo_tags', ['photo_id'], unique=False)

    op.create_table('corrections',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('photo_id', ID, nullable=False),
    sa.Column('tag_id', ID, nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('before', JSON, nullable=True),
    sa.Column('after', JSON, nullable=True),
    sa.Column('user_id', ID, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_corrections_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_corrections_photo_id_photos'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['photo_tags.id'], name=op.f('fk_corrections_tag_id_photo_tags'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_corrections_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_corrections'))
    )
    op.create_index('ix_corrections_org_created', 'corrections', ['organization_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_corrections_photo_id'), 'corrections', ['photo_id'], unique=False)


def downgrade() -> None:
    """Drop every table (their indexes and constraints go with them)."""
    for table in reversed(TABLES):
        op.drop_table(table)
