"""Migration 0017 on both databases: photo_tags.ai_label is backfilled (the label before a corrected tag's first
rename, else the label) and quality_tag_daily with the AI tags per UTC day, AI label and k/100 bin; after it the
triggers keep both (an insert without ai_label, a delete); row-level security protects the table on
PostgreSQL; downgrade removes the table, its triggers and the column, and tags can be written again."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.db.rls import table_rls
from aiconsole.platform.migrate import downgrade, upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tag_daily.db'}"
    return str(request.getfixturevalue("pg_url"))


TAG = ("INSERT INTO photo_tags (organization_id, photo_id, label, confidence, source, review_state, created_at)"
       " VALUES (:org, :photo, :label, :conf, :source, :state, :at) RETURNING id")
RENAME = ("INSERT INTO review_decisions (organization_id, review_id, photo_id, tag_id, action, label_before,"
          " label_after, created_at) VALUES (:org, :review, :photo, :tag, 'rename', :before, :after,"
          " CURRENT_TIMESTAMP)")


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        org = conn.execute(text("INSERT INTO organizations (name, slug, timezone, is_demo, created_at)"
                                " VALUES ('A', 'a', 'UTC', false, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        photo = conn.execute(text(
            "INSERT INTO photos (organization_id, sha256, storage_uri, filename, content_type, byte_size, width,"
            " height, source, status, priority, attempts, created_at, updated_at) VALUES (:org, 'h', 'mem://1',"
            " 'a.jpg', 'image/jpeg', 1, 8, 8, 'api', 'completed', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org}).scalar_one()
        review = conn.execute(text(
            "INSERT INTO reviews (organization_id, photo_id, reviewer_id, claim_token, queue_order, claimed_at,"
            " submitted_at) VALUES (:org, :photo, NULL, 'r1', 'random', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            " RETURNING id"), {"org": org, "photo": photo}).scalar_one()
        at = "2026-03-02 23:59:59"
        rows = [("cat", 0.58, "ai", "accepted"), ("kitten", 0.5799999, "ai", "corrected"),
                ("oak", 0.83, "ai", "corrected"), ("grass", 1.0, "human", "accepted")]
        ids = [conn.execute(text(TAG), {"org": org, "photo": photo, "label": label, "conf": conf, "source": source,
                                        "state": state, "at": at}).scalar_one()
               for label, conf, source, state in rows]
        # The kitten was a 'cat' before its first rename (and a 'lion' after a second one); the oak has none.
        for before, after in (("cat", "lion"), ("lion", "kitten")):
            conn.execute(text(RENAME), {"org": org, "review": review, "photo": photo, "tag": ids[1],
                                        "before": before, "after": after})
    return {"org": org, "photo": photo}


def _daily(engine: Engine) -> list[tuple[str, str, int, int]]:
    with engine.connect() as conn:
        return [(str(d), label, int(b), int(n)) for d, label, b, n in conn.execute(text(
            "SELECT day, ai_label, conf_bin, n FROM quality_tag_daily ORDER BY ai_label, conf_bin"))]


def test_backfill_triggers_rls_and_downgrade(url: str) -> None:
    upgrade(url, "0016")
    engine = make_engine(url)
    try:
        seed = _seed(engine)
        upgrade(url, "0017")
        with engine.connect() as conn:
            labels = conn.execute(text("SELECT t.label, f.ai_label FROM photo_tags t LEFT JOIN quality_ai_tags f"
                                       " ON f.tag_id = t.id ORDER BY t.id")).all()
        assert [tuple(r) for r in labels] == [("cat", "cat"), ("kitten", "cat"), ("oak", "oak"), ("grass", None)]
        # 0.58 >= 58/100; 0.5799999 is below it: bin 57. The human tag is not counted.
        assert _daily(engine) == [("2026-03-02", "cat", 57, 1), ("2026-03-02", "cat", 58, 1),
                                  ("2026-03-02", "oak", 83, 1)]
        with engine.begin() as conn:
            conn.execute(text(TAG), {**seed, "label": "cat", "conf": 0.581, "source": "ai", "state": "accepted",
                                     "at": "2026-03-03 00:00:00"})
            # Renamed, then deleted: subtracted under the AI's label.
            conn.execute(text("UPDATE photo_tags SET label = 'pine' WHERE label = 'oak'"))
            conn.execute(text("DELETE FROM photo_tags WHERE label = 'pine'"))
            assert conn.execute(text("SELECT count(*) FROM quality_ai_tags")).scalar_one() == 3
        assert _daily(engine) == [("2026-03-02", "cat", 57, 1), ("2026-03-02", "cat", 58, 1),
                                  ("2026-03-03", "cat", 58, 1), ("2026-03-02", "oak", 83, 0)]
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                rls = table_rls(conn)
                assert rls["quality_tag_daily"].protected and rls["quality_ai_tags"].protected
        downgrade(url, "0016")
        assert not {"quality_tag_daily", "quality_ai_tags"} & set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            conn.execute(text(TAG), {**seed, "label": "dog", "conf": 0.5, "source": "ai", "state": "accepted",
                                     "at": "2026-03-03 00:00:00"})
        upgrade(url, "head")
        assert ("2026-03-03", "dog", 50, 1) in _daily(engine)
    finally:
        engine.dispose()
