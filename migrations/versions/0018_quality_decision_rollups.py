"""Rollups of review decisions and of the AI tags' review state for the quality analytics view, kept by triggers,
so the writers need no change and the view reads thousands of rows instead of every decision of the window.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04

- review_decisions.random_order: the decision was made in a random-order review (its review's queue_order),
  set on insert by a trigger. Stored because a decision deleted with its review (ON DELETE CASCADE) can no
  longer be joined to it, and the delete must subtract from the same rollup row the insert added to.
- quality_decision_daily: judged decisions (approve, rename, reject of an AI tag with a confidence) per
  organization, UTC day, provider, model, AI label (label_before), random_order, whether the rules had
  accepted the tag, and k/100 confidence bin (0017's bins) -> count, sum of confidence, approved, renamed.
  Window totals (per label, per model, the histogram, calibration) read its whole UTC days.
- quality_decision_hourly: every decision per organization, UTC hour, action, random_order, accepted and
  judged -> count. Per local day series (precision, decisions a day) read its whole hours.
- quality_tag_hourly: AI tags per organization, UTC hour of creation and AI label -> all, reviewed
  (reviewed_at set), awaiting review (not reviewed, review_state needs_review): the review rate of the AI tags
  made in a window.

Triggers. PostgreSQL: statement-level over transition tables, rollup rows taken in key order (no deadlock
between a review, a batch and the workers); deletes only subtract (no insert: no foreign key check against an
organization being deleted). The tag triggers fire before 0017's (PostgreSQL fires a table's triggers for one
event in name order: quality_tag_counts_* < quality_tag_daily_*), so a deleted tag's AI label is still in
quality_ai_tags. SQLite: the same as row-level triggers (the tag subtract BEFORE DELETE, for the same reason).
All backfilled. Every table belongs to one organization: row-level security (RLS_TENANT_TABLES).
Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | Sequence[str] | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)

RLS_TENANT_TABLES = ('quality_decision_daily', 'quality_decision_hourly', 'quality_tag_hourly')
CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'

BINS = 100
SQLITE_HOUR = '%Y-%m-%d %H:00:00.000000'  # SQLAlchemy's SQLite DateTime text (platform/db/sql.py)
DAILY_KEY = ('organization_id', 'day', 'ai_provider', 'model', 'label', 'random_order', 'ai_accepted', 'conf_bin')
DAILY_SUMS = ('n', 'conf_sum', 'approved', 'renamed')
HOURLY_KEY = ('organization_id', 'hour', 'action', 'random_order', 'ai_accepted', 'judged')
TAG_KEY = ('organization_id', 'hour', 'ai_label')
TAG_SUMS = ('n', 'reviewed', 'awaiting')
ACCEPTED, APPROVED, RENAMED = "ai_verdict = 'accepted'", "action = 'approve'", "action = 'rename'"
JUDGED = "action IN ('approve', 'rename', 'reject') AND confidence IS NOT NULL"
DECISION_TRIGGERS = ('quality_decision_random', 'quality_decision_insert', 'quality_decision_delete')
TAG_TRIGGERS = ('quality_tag_counts_insert', 'quality_tag_counts_delete', 'quality_tag_counts_update')


def _bin(column: str, dialect: str, lo: int = 0, hi: int = BINS - 1) -> str:
    """The highest k in lo..hi with column >= k/100, as nested CASEs (0017's, the comparisons the code makes)."""
    if lo == hi:
        return str(lo)
    mid = (lo + hi + 1) // 2
    edge = f"CAST({mid / BINS!r} AS DOUBLE PRECISION)" if dialect == 'postgresql' else repr(mid / BINS)
    return (f"CASE WHEN {column} >= {edge} THEN {_bin(column, dialect, mid, hi)} "
            f"ELSE {_bin(column, dialect, lo, mid - 1)} END")


def _day(column: str, dialect: str) -> str:
    return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)" if dialect == 'postgresql' else f"date({column})"


def _hour(column: str, dialect: str) -> str:
    if dialect == 'postgresql':
        return f"(date_trunc('hour', ({column}) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return f"strftime('{SQLITE_HOUR}', {column})"


def _truth(condition: str, dialect: str) -> str:
    """A condition as a non-null boolean column value (0/1 on SQLite)."""
    return f"COALESCE({condition}, false)" if dialect == 'postgresql' else f"COALESCE({condition}, 0)"


def _count_if(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _cols(names: Sequence[str]) -> str:
    return ', '.join(names)


def _positions(n: int) -> str:
    return ', '.join(str(i) for i in range(1, n + 1))


def _daily(facts: str, dialect: str) -> str:
    """Judged decisions (rows of review_decisions' columns) grouped by the daily key, in key order."""
    k = len(DAILY_KEY)
    return (f"SELECT organization_id, {_day('created_at', dialect)} AS day, COALESCE(ai_provider, '') AS ai_provider, "
            f"COALESCE(model, '') AS model, COALESCE(label_before, '') AS label, random_order, "
            f"{_truth(ACCEPTED, dialect)} AS ai_accepted, {_bin('confidence', dialect)} AS conf_bin, "
            f"count(*) AS n, sum(confidence) AS conf_sum, {_count_if(APPROVED)} AS approved, "
            f"{_count_if(RENAMED)} AS renamed FROM {facts} WHERE {JUDGED} "
            f"GROUP BY {_positions(k)} ORDER BY {_positions(k)}")


def _hourly(facts: str, dialect: str) -> str:
    """Decisions grouped by the hourly key, in key order."""
    k = len(HOURLY_KEY)
    return (f"SELECT organization_id, {_hour('created_at', dialect)} AS hour, action, random_order, "
            f"{_truth(ACCEPTED, dialect)} AS ai_accepted, {_truth(JUDGED, dialect)} AS judged, "
            f"count(*) AS n FROM {facts} GROUP BY {_positions(k)} ORDER BY {_positions(k)}")


def _tags(facts: str, dialect: str, sign: str = '') -> str:
    """AI tags (organization_id, created_at, ai_label, reviewed_at, review_state) grouped by the tag key."""
    waiting = "reviewed_at IS NULL AND review_state = 'needs_review'"
    return (f"SELECT organization_id, {_hour('created_at', dialect)} AS hour, ai_label, {sign}count(*) AS n, "
            f"{sign}{_count_if('reviewed_at IS NOT NULL')} AS reviewed, {sign}{_count_if(waiting)} AS awaiting "
            f"FROM {facts} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def _match(key: Sequence[str]) -> str:
    return ' AND '.join(f'q.{c} = g.{c}' for c in key)


def _upsert(key: Sequence[str], sums: Sequence[str]) -> str:
    return f"ON CONFLICT ({_cols(key)}) DO UPDATE SET " + ', '.join(f'{c} = q.{c} + EXCLUDED.{c}' for c in sums)


def _pg_subtract(table: str, key: Sequence[str], sums: Sequence[str], grouped: str) -> str:
    """Lock the rollup rows in key order, then subtract the grouped facts from them."""
    return (f"PERFORM 1 FROM {table} q JOIN ({grouped}) g ON {_match(key)} ORDER BY "
            f"{', '.join('q.' + c for c in key)} FOR UPDATE OF q;\n"
            f"  UPDATE {table} q SET {', '.join(f'{c} = q.{c} - g.{c}' for c in sums)} FROM ({grouped}) g "
            f"WHERE {_match(key)};")


def _pg_function(name: str, body: str) -> None:
    op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  {body}\n  RETURN NULL;\n"
               f"END $$")


def _postgres_triggers() -> None:
    pg = 'postgresql'
    op.execute("""CREATE FUNCTION quality_decision_random() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.random_order := EXISTS (SELECT 1 FROM reviews r WHERE r.id = NEW.review_id AND r.queue_order = 'random');
  RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER quality_decision_random BEFORE INSERT ON review_decisions FOR EACH ROW "
               "EXECUTE FUNCTION quality_decision_random()")
    _pg_function('quality_decision_insert',
                 f"INSERT INTO quality_decision_daily AS q ({_cols(DAILY_KEY)}, {_cols(DAILY_SUMS)}) "
                 f"{_daily('new_rows', pg)} {_upsert(DAILY_KEY, DAILY_SUMS)};\n"
                 f"  INSERT INTO quality_decision_hourly AS q ({_cols(HOURLY_KEY)}, n) {_hourly('new_rows', pg)} "
                 f"{_upsert(HOURLY_KEY, ('n',))};")
    op.execute("CREATE TRIGGER quality_decision_insert AFTER INSERT ON review_decisions REFERENCING NEW TABLE AS "
               "new_rows FOR EACH STATEMENT EXECUTE FUNCTION quality_decision_insert()")
    _pg_function('quality_decision_delete',
                 _pg_subtract('quality_decision_daily', DAILY_KEY, DAILY_SUMS, _daily('old_rows', pg)) + "\n  "
                 + _pg_subtract('quality_decision_hourly', HOURLY_KEY, ('n',), _hourly('old_rows', pg)))
    op.execute("CREATE TRIGGER quality_decision_delete AFTER DELETE ON review_decisions REFERENCING OLD TABLE AS "
               "old_rows FOR EACH STATEMENT EXECUTE FUNCTION quality_decision_delete()")

    new_ai = ("(SELECT organization_id, created_at, label AS ai_label, reviewed_at, review_state FROM new_tags "
              "WHERE source = 'ai') AS t")
    _pg_function('quality_tag_counts_insert',
                 f"INSERT INTO quality_tag_hourly AS q ({_cols(TAG_KEY)}, {_cols(TAG_SUMS)}) {_tags(new_ai, pg)} "
                 f"{_upsert(TAG_KEY, TAG_SUMS)};")
    op.execute("CREATE TRIGGER quality_tag_counts_insert AFTER INSERT ON photo_tags REFERENCING NEW TABLE AS "
               "new_tags FOR EACH STATEMENT EXECUTE FUNCTION quality_tag_counts_insert()")
    gone = ("(SELECT o.organization_id, o.created_at, f.ai_label, o.reviewed_at, o.review_state FROM old_tags o "
            "JOIN quality_ai_tags f ON f.tag_id = o.id) AS t")
    _pg_function('quality_tag_counts_delete',
                 _pg_subtract('quality_tag_hourly', TAG_KEY, TAG_SUMS, _tags(gone, pg)))
    op.execute("CREATE TRIGGER quality_tag_counts_delete AFTER DELETE ON photo_tags REFERENCING OLD TABLE AS "
               "old_tags FOR EACH STATEMENT EXECUTE FUNCTION quality_tag_counts_delete()")
    # An update moves a tag's counts from its old state to its new one (a review sets reviewed_at and the
    # review state); only rows whose state changed, netted per rollup row, and nothing when none did.
    changed = ("SELECT {side}.organization_id, {side}.created_at, f.ai_label, {side}.reviewed_at, {side}.review_state "
               "FROM old_tags o JOIN new_tags n ON n.id = o.id JOIN quality_ai_tags f ON f.tag_id = o.id "
               "WHERE (o.reviewed_at IS DISTINCT FROM n.reviewed_at OR o.review_state IS DISTINCT FROM n.review_state "
               "OR o.created_at IS DISTINCT FROM n.created_at) AND n.source = 'ai'")
    delta = (f"SELECT organization_id, hour, ai_label, sum(n) AS n, sum(reviewed) AS reviewed, "
             f"sum(awaiting) AS awaiting FROM (({_tags('(' + changed.format(side='n') + ') AS t', pg)}) UNION ALL "
             f"({_tags('(' + changed.format(side='o') + ') AS t', pg, sign='-')})) d GROUP BY 1, 2, 3 "
             f"HAVING sum(n) <> 0 OR sum(reviewed) <> 0 OR sum(awaiting) <> 0 ORDER BY 1, 2, 3")
    _pg_function('quality_tag_counts_update',
                 f"INSERT INTO quality_tag_hourly AS q ({_cols(TAG_KEY)}, {_cols(TAG_SUMS)}) {delta} "
                 f"{_upsert(TAG_KEY, TAG_SUMS)};")
    op.execute("CREATE TRIGGER quality_tag_counts_update AFTER UPDATE ON photo_tags REFERENCING OLD TABLE AS "
               "old_tags NEW TABLE AS new_tags FOR EACH STATEMENT EXECUTE FUNCTION quality_tag_counts_update()")


def _sqlite_triggers() -> None:
    sq = 'sqlite'
    this = "(SELECT * FROM review_decisions WHERE id = {}) AS d"
    add_decision = (f"INSERT INTO quality_decision_daily ({_cols(DAILY_KEY)}, {_cols(DAILY_SUMS)}) "
                    f"SELECT * FROM ({_daily(this.format('NEW.id'), sq)}) WHERE true {_upsert_sqlite(DAILY_KEY, DAILY_SUMS)}; "
                    f"INSERT INTO quality_decision_hourly ({_cols(HOURLY_KEY)}, n) "
                    f"SELECT * FROM ({_hourly(this.format('NEW.id'), sq)}) WHERE true {_upsert_sqlite(HOURLY_KEY, ('n',))};")
    op.execute("CREATE TRIGGER quality_decision_insert AFTER INSERT ON review_decisions FOR EACH ROW BEGIN "
               "UPDATE review_decisions SET random_order = EXISTS (SELECT 1 FROM reviews r WHERE r.id = NEW.review_id "
               f"AND r.queue_order = 'random') WHERE id = NEW.id; {add_decision} END")
    old = ("(SELECT OLD.organization_id AS organization_id, OLD.created_at AS created_at, OLD.ai_provider AS "
           "ai_provider, OLD.model AS model, OLD.label_before AS label_before, OLD.random_order AS random_order, "
           "OLD.ai_verdict AS ai_verdict, OLD.confidence AS confidence, OLD.action AS action) AS d")
    op.execute(f"CREATE TRIGGER quality_decision_delete AFTER DELETE ON review_decisions FOR EACH ROW BEGIN "
               f"{_sqlite_subtract('quality_decision_daily', DAILY_KEY, DAILY_SUMS, _daily(old, sq))} "
               f"{_sqlite_subtract('quality_decision_hourly', HOURLY_KEY, ('n',), _hourly(old, sq))} END")
    new = ("(SELECT NEW.organization_id AS organization_id, NEW.created_at AS created_at, NEW.label AS ai_label, "
           "NEW.reviewed_at AS reviewed_at, NEW.review_state AS review_state) AS t")
    op.execute(f"CREATE TRIGGER quality_tag_counts_insert AFTER INSERT ON photo_tags FOR EACH ROW "
               f"WHEN NEW.source = 'ai' BEGIN INSERT INTO quality_tag_hourly ({_cols(TAG_KEY)}, {_cols(TAG_SUMS)}) "
               f"SELECT * FROM ({_tags(new, sq)}) WHERE true {_upsert_sqlite(TAG_KEY, TAG_SUMS)}; END")
    gone = ("(SELECT OLD.organization_id AS organization_id, OLD.created_at AS created_at, f.ai_label AS ai_label, "
            "OLD.reviewed_at AS reviewed_at, OLD.review_state AS review_state FROM quality_ai_tags f "
            "WHERE f.tag_id = OLD.id) AS t")
    subtract_tag = _sqlite_subtract('quality_tag_hourly', TAG_KEY, TAG_SUMS, _tags(gone, sq))
    op.execute(f"CREATE TRIGGER quality_tag_counts_delete BEFORE DELETE ON photo_tags FOR EACH ROW BEGIN "
               f"{subtract_tag} END")
    now = gone.replace('OLD.', 'NEW.')
    op.execute(f"CREATE TRIGGER quality_tag_counts_update AFTER UPDATE OF reviewed_at, review_state, created_at "
               f"ON photo_tags FOR EACH ROW WHEN NEW.source = 'ai' AND (OLD.reviewed_at IS NOT NEW.reviewed_at "
               f"OR OLD.review_state IS NOT NEW.review_state OR OLD.created_at IS NOT NEW.created_at) BEGIN "
               f"{subtract_tag} INSERT INTO quality_tag_hourly ({_cols(TAG_KEY)}, {_cols(TAG_SUMS)}) "
               f"SELECT * FROM ({_tags(now, sq)}) WHERE true {_upsert_sqlite(TAG_KEY, TAG_SUMS)}; END")


def _upsert_sqlite(key: Sequence[str], sums: Sequence[str]) -> str:
    # SQLite's upsert after INSERT ... SELECT needs a WHERE before ON CONFLICT (parsing ambiguity), and no alias.
    return f"ON CONFLICT ({_cols(key)}) DO UPDATE SET " + ', '.join(f'{c} = {c} + excluded.{c}' for c in sums)


def _sqlite_subtract(table: str, key: Sequence[str], sums: Sequence[str], grouped: str) -> str:
    sets = ', '.join(f'{c} = {c} - (SELECT g.{c} FROM ({grouped}) g WHERE '
                     + ' AND '.join(f'g.{k} = {table}.{k}' for k in key) + ')' for c in sums)
    exists = f"EXISTS (SELECT 1 FROM ({grouped}) g WHERE " + ' AND '.join(f'g.{k} = {table}.{k}' for k in key) + ')'
    return f"UPDATE {table} SET {sets} WHERE {exists};"


def _org_fk() -> sa.ForeignKey:
    return sa.ForeignKey('organizations.id', ondelete='CASCADE')


def _create_tables() -> None:
    op.create_table('quality_decision_daily',
    sa.Column('organization_id', ID, _org_fk(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('ai_provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('random_order', sa.Boolean(), nullable=False),
    sa.Column('ai_accepted', sa.Boolean(), nullable=False),
    sa.Column('conf_bin', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('conf_sum', sa.Float(), nullable=False),
    sa.Column('approved', sa.BigInteger(), nullable=False),
    sa.Column('renamed', sa.BigInteger(), nullable=False),
    sa.CheckConstraint(f'conf_bin >= 0 AND conf_bin < {BINS}', name=op.f('ck_quality_decision_daily_conf_bin')),
    sa.PrimaryKeyConstraint(*DAILY_KEY, name=op.f('pk_quality_decision_daily'))
    )
    op.create_table('quality_decision_hourly',
    sa.Column('organization_id', ID, _org_fk(), nullable=False),
    sa.Column('hour', TIMESTAMP, nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('random_order', sa.Boolean(), nullable=False),
    sa.Column('ai_accepted', sa.Boolean(), nullable=False),
    sa.Column('judged', sa.Boolean(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint(*HOURLY_KEY, name=op.f('pk_quality_decision_hourly'))
    )
    op.create_table('quality_tag_hourly',
    sa.Column('organization_id', ID, _org_fk(), nullable=False),
    sa.Column('hour', TIMESTAMP, nullable=False),
    sa.Column('ai_label', sa.String(length=200), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('reviewed', sa.BigInteger(), nullable=False),
    sa.Column('awaiting', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint(*TAG_KEY, name=op.f('pk_quality_tag_hourly'))
    )


def upgrade() -> None:
    """Add random_order, create and backfill the rollups, then the triggers; row-level security on each table."""
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('review_decisions') as batch:
        batch.add_column(sa.Column('random_order', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE review_decisions SET random_order = EXISTS (SELECT 1 FROM reviews r "
               "WHERE r.id = review_decisions.review_id AND r.queue_order = 'random')")
    _create_tables()
    op.execute(f"INSERT INTO quality_decision_daily ({_cols(DAILY_KEY)}, {_cols(DAILY_SUMS)}) "
               f"{_daily('review_decisions', dialect)}")
    op.execute(f"INSERT INTO quality_decision_hourly ({_cols(HOURLY_KEY)}, n) {_hourly('review_decisions', dialect)}")
    tags = ("(SELECT f.organization_id, f.created_at, f.ai_label, t.reviewed_at, t.review_state "
            "FROM quality_ai_tags f JOIN photo_tags t ON t.id = f.tag_id) AS t")
    op.execute(f"INSERT INTO quality_tag_hourly ({_cols(TAG_KEY)}, {_cols(TAG_SUMS)}) {_tags(tags, dialect)}")
    if dialect == 'postgresql':
        _postgres_triggers()
        for table in RLS_TENANT_TABLES:
            rule = (f"organization_id = {CURRENT_ORG} OR (SELECT pg_has_role(current_user, c.relowner, 'USAGE') "
                    f"FROM pg_catalog.pg_class c WHERE c.oid = '{table}'::regclass)")
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')
    else:
        _sqlite_triggers()


def downgrade() -> None:
    """Drop the triggers, the rollups (their policies go with them) and random_order."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, names in (('review_decisions', DECISION_TRIGGERS), ('photo_tags', TAG_TRIGGERS)):
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")
            if postgres:
                op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    for table in reversed(RLS_TENANT_TABLES):
        op.drop_table(table)
    with op.batch_alter_table('review_decisions') as batch:
        batch.drop_column('random_order')
