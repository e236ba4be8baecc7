"""AI tag rollup for quality analytics: quality_ai_tags (each AI tag as the AI made it: label, confidence, when)
and quality_tag_daily (AI tags per organization, UTC day, AI label and confidence bin), both kept by triggers
on photo_tags, so the writers of tags need no change.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

- quality_ai_tags: one row per source 'ai' tag (tag_id the primary key, no foreign key: the delete trigger
  reads it before removing it), with the AI's label, which a rename of the tag leaves as it was. Backfilled:
  the label before a corrected tag's first rename decision, else the label. Indexed by (organization_id,
  created_at) for a window's partial UTC days and (organization_id, ai_label, confidence) for a threshold off
  the rollup's grid, read in its one bin. A table beside photo_tags rather than a column of it: a batch's added
  tag is recorded, and compared by its undo, with exactly photo_tags' columns.
- quality_tag_daily: (organization_id, day, ai_label, conf_bin) -> n; day is the UTC date of created_at;
  conf_bin in 0..99 is the highest k with confidence >= k/100 (the comparisons quality.review_sql.bin_sql
  makes, as a binary-search CASE), so 'confidence >= k/100' is exactly 'conf_bin >= k'. Backfilled.
- Triggers on photo_tags. PostgreSQL: statement-level AFTER INSERT and AFTER DELETE over transition tables
  (one grouped statement for each, rollup rows taken in key order so concurrent workers lock them in one
  order: no deadlock); a delete only subtracts (no insert: no foreign key check against an organization being
  deleted). A row-level AFTER UPDATE for the columns the key comes from (organization_id, created_at,
  confidence, source), which nothing updates today. SQLite: the same as row-level triggers.

Both tables belong to one organization: row-level security as in 0013 (RLS_TENANT_TABLES). The triggers run as
the writer: the console's role holds DML on every table, and the policy binds it to its organization as it
does for the tags. Frozen: no application imports.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | Sequence[str] | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
TIMESTAMP = sa.DateTime(timezone=True)

RLS_TENANT_TABLES = ('quality_ai_tags', 'quality_tag_daily')

CURRENT_ORG = "(SELECT NULLIF(current_setting('app.current_organization_id', true), '')::bigint)"
TENANT_POLICY = 'tenant_isolation'

BINS = 100
KEY = 'organization_id, day, ai_label, conf_bin'
FACT = 'tag_id, organization_id, created_at, ai_label, confidence'
FIRST_RENAME_LABEL = ("(SELECT d.label_before FROM review_decisions d WHERE d.tag_id = photo_tags.id"
                      " AND d.action = 'rename' ORDER BY d.id LIMIT 1)")
TRIGGERS = ('quality_tag_daily_update', 'quality_tag_daily_delete', 'quality_tag_daily_insert')


def _bin(column: str, dialect: str, lo: int = 0, hi: int = BINS - 1) -> str:
    """The highest k in lo..hi with column >= k/100, as nested CASEs (k/100 as the same double the code binds)."""
    if lo == hi:
        return str(lo)
    mid = (lo + hi + 1) // 2
    edge = f"CAST({mid / BINS!r} AS DOUBLE PRECISION)" if dialect == 'postgresql' else repr(mid / BINS)
    return (f"CASE WHEN {column} >= {edge} THEN {_bin(column, dialect, mid, hi)} "
            f"ELSE {_bin(column, dialect, lo, mid - 1)} END")


def _day(column: str, dialect: str) -> str:
    return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)" if dialect == 'postgresql' else f"date({column})"


def _service(table: str) -> str:
    return (f"(SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_catalog.pg_class c "
            f"WHERE c.oid = '{table}'::regclass)")


def _grouped(facts: str, dialect: str) -> str:
    """AI tags (rows with FACT's columns) grouped by the rollup key, in key order."""
    return (f"SELECT organization_id, {_day('created_at', dialect)} AS day, ai_label, "
            f"{_bin('confidence', dialect)} AS conf_bin, count(*) AS n FROM {facts} "
            f"GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")


def _postgres_triggers() -> None:
    pg = 'postgresql'
    upsert = f"ON CONFLICT ({KEY}) DO UPDATE SET n = q.n + EXCLUDED.n"
    match = ("q.organization_id = g.organization_id AND q.day = g.day AND q.ai_label = g.ai_label "
             "AND q.conf_bin = g.conf_bin")
    op.execute(f"""CREATE FUNCTION quality_tag_daily_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO quality_ai_tags ({FACT}) SELECT id, organization_id, created_at, label, confidence
    FROM new_tags WHERE source = 'ai';
  INSERT INTO quality_tag_daily AS q ({KEY}, n)
    {_grouped("(SELECT created_at, organization_id, label AS ai_label, confidence FROM new_tags"
              " WHERE source = 'ai') AS t", pg)}
    {upsert};
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER quality_tag_daily_insert AFTER INSERT ON photo_tags REFERENCING NEW TABLE AS "
               "new_tags FOR EACH STATEMENT EXECUTE FUNCTION quality_tag_daily_insert()")
    # The rollup rows are locked in key order first (an UPDATE ... FROM locks in whatever order its join yields).
    gone = "(SELECT f.* FROM quality_ai_tags f JOIN old_tags o ON o.id = f.tag_id) AS t"
    op.execute(f"""CREATE FUNCTION quality_tag_daily_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM quality_tag_daily q JOIN ({_grouped(gone, pg)}) g ON {match}
    ORDER BY q.organization_id, q.day, q.ai_label, q.conf_bin FOR UPDATE OF q;
  UPDATE quality_tag_daily q SET n = q.n - g.n FROM ({_grouped(gone, pg)}) g WHERE {match};
  DELETE FROM quality_ai_tags f USING old_tags o WHERE f.tag_id = o.id;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER quality_tag_daily_delete AFTER DELETE ON photo_tags REFERENCING OLD TABLE AS "
               "old_tags FOR EACH STATEMENT EXECUTE FUNCTION quality_tag_daily_delete()")
    op.execute(f"""CREATE FUNCTION quality_tag_daily_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  was quality_ai_tags%ROWTYPE;
BEGIN
  DELETE FROM quality_ai_tags WHERE tag_id = OLD.id RETURNING * INTO was;
  IF was.tag_id IS NOT NULL THEN
    UPDATE quality_tag_daily SET n = n - 1 WHERE organization_id = was.organization_id
      AND day = {_day('was.created_at', pg)} AND ai_label = was.ai_label AND conf_bin = {_bin('was.confidence', pg)};
  END IF;
  IF NEW.source = 'ai' THEN
    INSERT INTO quality_ai_tags ({FACT})
      VALUES (NEW.id, NEW.organization_id, NEW.created_at, COALESCE(was.ai_label, NEW.label), NEW.confidence);
    INSERT INTO quality_tag_daily AS q ({KEY}, n) VALUES (NEW.organization_id, {_day('NEW.created_at', pg)},
      COALESCE(was.ai_label, NEW.label), {_bin('NEW.confidence', pg)}, 1) {upsert};
  END IF;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER quality_tag_daily_update AFTER UPDATE OF organization_id, created_at, confidence, "
               "source ON photo_tags FOR EACH ROW WHEN (OLD.organization_id IS DISTINCT FROM NEW.organization_id "
               "OR OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.confidence IS DISTINCT FROM "
               "NEW.confidence OR OLD.source IS DISTINCT FROM NEW.source) EXECUTE FUNCTION quality_tag_daily_update()")


def _sqlite_triggers() -> None:
    sq = 'sqlite'
    fact_of = "(SELECT {} FROM quality_ai_tags WHERE tag_id = OLD.id)"
    subtract = (f"UPDATE quality_tag_daily SET n = n - 1 WHERE EXISTS {fact_of.format('1')} "
                f"AND organization_id = {fact_of.format('organization_id')} "
                f"AND day = {fact_of.format(_day('created_at', sq))} AND ai_label = {fact_of.format('ai_label')} "
                f"AND conf_bin = {fact_of.format(_bin('confidence', sq))};")
    add = (f"INSERT INTO quality_tag_daily ({KEY}, n) SELECT organization_id, {_day('created_at', sq)}, ai_label, "
           f"{_bin('confidence', sq)}, 1 FROM quality_ai_tags WHERE tag_id = NEW.id "
           f"ON CONFLICT ({KEY}) DO UPDATE SET n = n + 1;")
    op.execute(f"CREATE TRIGGER quality_tag_daily_insert AFTER INSERT ON photo_tags FOR EACH ROW "
               f"WHEN NEW.source = 'ai' BEGIN "
               f"INSERT INTO quality_ai_tags ({FACT}) VALUES (NEW.id, NEW.organization_id, NEW.created_at, "
               f"NEW.label, NEW.confidence); {add} END")
    op.execute(f"CREATE TRIGGER quality_tag_daily_delete AFTER DELETE ON photo_tags FOR EACH ROW BEGIN "
               f"{subtract} DELETE FROM quality_ai_tags WHERE tag_id = OLD.id; END")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ('organization_id', 'created_at', 'confidence',
                                                               'source'))
    op.execute(f"CREATE TRIGGER quality_tag_daily_update AFTER UPDATE OF organization_id, created_at, confidence, "
               f"source ON photo_tags FOR EACH ROW WHEN {changed} BEGIN {subtract} "
               f"INSERT OR REPLACE INTO quality_ai_tags ({FACT}) SELECT NEW.id, NEW.organization_id, NEW.created_at, "
               f"COALESCE({fact_of.format('ai_label')}, NEW.label), NEW.confidence WHERE NEW.source = 'ai'; "
               f"DELETE FROM quality_ai_tags WHERE tag_id = OLD.id AND NEW.source IS NOT 'ai'; "
               f"{add} END")


def upgrade() -> None:
    """Create and backfill both tables, then the triggers; protect the tables with row-level security."""
    dialect = op.get_bind().dialect.name
    op.create_table('quality_ai_tags',
    sa.Column('tag_id', ID, autoincrement=False, nullable=False),
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('ai_label', sa.String(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('tag_id', name=op.f('pk_quality_ai_tags'))
    )
    op.create_index('ix_quality_ai_tags_org_created', 'quality_ai_tags', ['organization_id', 'created_at'])
    op.create_index('ix_quality_ai_tags_org_label_confidence', 'quality_ai_tags',
                    ['organization_id', 'ai_label', 'confidence'])
    op.create_table('quality_tag_daily',
    sa.Column('organization_id', ID, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('ai_label', sa.String(length=200), nullable=False),
    sa.Column('conf_bin', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.CheckConstraint(f'conf_bin >= 0 AND conf_bin < {BINS}', name=op.f('ck_quality_tag_daily_conf_bin')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                            name=op.f('fk_quality_tag_daily_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('organization_id', 'day', 'ai_label', 'conf_bin', name=op.f('pk_quality_tag_daily'))
    )
    op.execute(f"INSERT INTO quality_ai_tags ({FACT}) SELECT id, organization_id, created_at, CASE WHEN "
               f"review_state = 'corrected' THEN COALESCE({FIRST_RENAME_LABEL}, label) ELSE label END, confidence "
               f"FROM photo_tags WHERE source = 'ai'")
    op.execute(f"INSERT INTO quality_tag_daily ({KEY}, n) SELECT g.organization_id, g.day, g.ai_label, g.conf_bin, "
               f"g.n FROM ({_grouped('quality_ai_tags', dialect)}) g JOIN organizations o ON o.id = g.organization_id")

    if dialect == 'postgresql':
        _postgres_triggers()
        for table in RLS_TENANT_TABLES:
            rule = f"organization_id = {CURRENT_ORG} OR {_service(table)}"
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE {table} FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {TENANT_POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})')
    else:
        _sqlite_triggers()


def downgrade() -> None:
    """Drop the triggers and both tables (their policies go with them)."""
    postgres = op.get_bind().dialect.name == 'postgresql'
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON photo_tags" if postgres else f"DROP TRIGGER IF EXISTS {name}")
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table('quality_tag_daily')
    op.drop_table('quality_ai_tags')
