"""Migration 0016 on both databases: correction_batches gains heartbeat_at (empty for batches already there)
and the status 'interrupted'; the items of a batch survive SQLite's rebuild of the table; downgrade turns
interrupted batches into failed ones, refuses 'interrupted' again and drops the column."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from aiconsole.platform.db.engine import make_engine
from aiconsole.platform.migrate import downgrade, upgrade

HERE = Path(__file__).resolve().parent
PREVIOUS = "0014"


def _load(name: str) -> ModuleType:
    """A sibling migration test module (its seed rows and statements), loaded by path."""
    spec = importlib.util.spec_from_file_location(f"{name}_helpers", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cbm = _load("test_correction_batches_migration")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'heartbeats.db'}"
    return str(request.getfixturevalue("pg_url"))


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("correction_batches")}


def test_0016_adds_heartbeats_and_the_interrupted_status_and_downgrade_removes_them(url: str) -> None:
    upgrade(url, PREVIOUS)
    engine = make_engine(url)
    try:
        ids = cbm._seed(engine)
        with engine.begin() as conn:
            old = conn.execute(text(cbm.BATCH), {**ids, "template": "rename", "status": "running"}).scalar_one()
            conn.execute(text(cbm.ITEM), {**ids, "batch": old, "action": "rename", "undo": None})
        cbm._refused(engine, cbm.BATCH, {**ids, "template": "add", "status": "interrupted"},
                     "ck_correction_batches_status")
        upgrade(url, "0016")
        assert "heartbeat_at" in _columns(engine)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT heartbeat_at FROM correction_batches WHERE id = :b"),
                                {"b": old}).scalar_one() is None
            assert conn.execute(text("SELECT count(*) FROM correction_batch_items WHERE batch_id = :b"),
                                {"b": old}).scalar_one() == 1
            conn.execute(text("UPDATE correction_batches SET status = 'interrupted', heartbeat_at = CURRENT_TIMESTAMP"
                              " WHERE id = :b"), {"b": old})
        cbm._refused(engine, cbm.BATCH, {**ids, "template": "add", "status": "paused"}, "ck_correction_batches_status")
        downgrade(url, PREVIOUS)
        assert "heartbeat_at" not in _columns(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM correction_batches WHERE id = :b"),
                                {"b": old}).scalar_one() == "failed"
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE correction_batches SET status = 'interrupted'"))
        upgrade(url)
    finally:
        engine.dispose()
