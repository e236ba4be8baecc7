"""One row the database refuses never sinks a recording batch or the reaper's chunk (issue 9 item 1).

The refused row's photo fails alone with "could not be recorded: <reason>" (with a failed result row
standing in for it where the database takes one), every other photo of the batch (other organizations'
included) is recorded as usual, and infrastructure faults still fail the whole batch so the worker holds
it. Poisons are real database refusals: a value too long for its column and an out-of-range number on
PostgreSQL, a foreign key to an experiment deleted meanwhile, and a CHECK constraint (PostgreSQL) or
trigger (SQLite) that refuses one photo's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import OperationalError
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.pipeline import reaper
from aiconsole.pipeline.queue import ClaimedPhoto
from aiconsole.pipeline.recording import RecordReport, record_batch
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Experiment, Photo, PhotoTag, ProcessingRollupHourly
from aiconsole.platform.settings import Settings

qt = load_unit_module("test_queue")
rt = load_unit_module("test_recording")
T0 = qt.T0
NOW = T0 + timedelta(hours=1, minutes=1)
REASON = "could not be recorded: "


@pytest.fixture
def orgs(any_settings: Settings) -> tuple[int, int]:
    return users.create_organization(name="Poisoned").id, users.create_organization(name="Bystander").id


def _results() -> dict[int, AiProcessingResult]:
    with service_session() as s:
        return {r.photo_id: r for r in s.scalars(select(AiProcessingResult))}


def _tag_count(pid: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(PhotoTag).where(PhotoTag.photo_id == pid)) or 0)


def _rollup_results(org: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.sum(ProcessingRollupHourly.results_count)).where(
            ProcessingRollupHourly.organization_id == org)) or 0)


@contextmanager
def refusing_rows_of(photo_id: int) -> Iterator[None]:
    """The database refuses every result row of `photo_id` (a CHECK on PostgreSQL, a trigger on SQLite)."""
    with service_session() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"ALTER TABLE ai_processing_results ADD CONSTRAINT poison CHECK (photo_id <> {photo_id})"))
        else:
            s.execute(text(f"CREATE TRIGGER poison BEFORE INSERT ON ai_processing_results "
                           f"WHEN NEW.photo_id = {photo_id} BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"))
    yield


def _three_claimed(orgs: tuple[int, int]) -> tuple[list[int], list[ClaimedPhoto]]:
    poisoned, bystander = orgs
    ids = qt.add_photos(poisoned, 2, tag="a") + qt.add_photos(bystander, 1, tag="b")
    claimed = {c.id: c for c in rt.claim(3)}
    return ids, [claimed[i] for i in ids]


def _assert_the_others_recorded(ids: list[int], results: dict[int, AiProcessingResult]) -> None:
    for pid in ids:
        p = qt.photo(pid)
        assert (p.status, p.last_error, p.lease_owner) == ("completed", None, None), pid
        assert results[pid].status == "completed" and _tag_count(pid) == 1


def test_a_row_the_database_refuses_fails_its_photo_alone(orgs: tuple[int, int]) -> None:
    ids, (a, b, c) = _three_claimed(orgs)
    with refusing_rows_of(b.id):
        report = record_batch(worker_id="w1", now=NOW, outcomes=[
            rt.outcome(x, rt.result([("cat", 0.9)], cost=100)) for x in (a, b, c)])
    assert report == RecordReport(recorded=2, lost_lease=0, retried=0, failed=1, cost_micros=200, unrecordable=1)
    results = _results()
    _assert_the_others_recorded([ids[0], ids[2]], results)
    bad = qt.photo(ids[1])
    assert bad.status == "failed" and bad.lease_owner is None and bad.completed_at == NOW
    assert bad.last_error is not None and bad.last_error.startswith(REASON)
    assert "poison" in bad.last_error
    # Even a failed stand-in row is refused: the photo has none, and its tags were not written either.
    assert ids[1] not in results and _tag_count(ids[1]) == 0
    assert (_rollup_results(orgs[0]), _rollup_results(orgs[1])) == (1, 1)


def test_a_result_of_an_experiment_deleted_meanwhile_fails_alone(orgs: tuple[int, int]) -> None:
    ids, (a, b, c) = _three_claimed(orgs)
    with service_session() as s:
        experiment = Experiment(organization_id=orgs[0], name="gone", status="running")
        s.add(experiment)
        s.flush()
        experiment_id = experiment.id
    with service_session() as s:  # deleted while the photo's call was out
        s.execute(delete(Experiment).where(Experiment.id == experiment_id))
    report = record_batch(worker_id="w1", now=NOW, outcomes=[
        rt.outcome(a, rt.result([("cat", 0.9)])),
        rt.outcome(b, rt.result([("cat", 0.9)], cost=300), experiment_id=experiment_id, variant="B"),
        rt.outcome(c, rt.result([("cat", 0.9)]))])
    assert (report.recorded, report.failed, report.unrecordable, report.cost_micros) == (3, 1, 1, 300)
    results = _results()
    _assert_the_others_recorded([ids[0], ids[2]], results)
    bad = qt.photo(ids[1])
    assert bad.status == "failed" and bad.last_error is not None and bad.last_error.startswith(REASON)
    # The stand-in: failed, without the tags, the dangling experiment or its variant, keeping the cost paid.
    stand_in = results[ids[1]]
    assert (stand_in.status, stand_in.error_kind, stand_in.tag_count, stand_in.experiment_id, stand_in.variant,
            stand_in.api_cost_micros) == ("failed", "unrecordable", 0, None, None, 300)
    assert stand_in.error == bad.last_error
    assert _tag_count(ids[1]) == 0
    assert _rollup_results(orgs[0]) == 2


def test_numbers_no_database_column_can_hold_fail_their_photo_alone(orgs: tuple[int, int]) -> None:
    ids, (a, b, c) = _three_claimed(orgs)
    report = record_batch(worker_id="w1", now=NOW, outcomes=[
        rt.outcome(a, rt.result([("cat", 0.9)])),
        rt.outcome(b, rt.result([("cat", 0.9)], tokens=(2**70, 5))),
        rt.outcome(c, rt.result([("cat", 0.9)]))])
    assert (report.recorded, report.failed, report.unrecordable) == (3, 1, 1)
    results = _results()
    _assert_the_others_recorded([ids[0], ids[2]], results)
    bad = qt.photo(ids[1])
    assert bad.status == "failed"
    assert bad.last_error == f"{REASON}input_tokens {2**70} is outside the 64-bit integer range"
    assert (results[ids[1]].status, results[ids[1]].input_tokens) == ("failed", 0)


def test_the_reaper_reaps_the_rest_of_its_chunk_around_a_refused_row(orgs: tuple[int, int]) -> None:
    poisoned, bystander = orgs
    qt.set_config(poisoned, max_retries=1)
    qt.set_config(bystander, max_retries=1)
    ids = qt.add_photos(poisoned, 3, tag="a") + qt.add_photos(bystander, 2, tag="b")
    rt.claim(5, now=T0 + timedelta(hours=1))
    with refusing_rows_of(ids[1]):
        report = reaper.reap_expired(now=T0 + timedelta(hours=1, seconds=61))
    assert report == reaper.ReapReport(requeued=0, failed=5)
    results = _results()
    assert set(results) == set(ids) - {ids[1]}
    assert all(r.error_kind == "lease_expired" for r in results.values())
    with service_session() as s:
        photos = {p.id: p for p in s.scalars(select(Photo))}
    assert {p.status for p in photos.values()} == {"failed"}
    assert all(p.lease_owner is None for p in photos.values())
    bad = photos[ids[1]].last_error
    assert bad is not None and bad.startswith(REASON) and "poison" in bad
    assert "Lease expired on attempt 1 of 1" in bad  # why it failed in the first place stays
    assert (_rollup_results(poisoned), _rollup_results(bystander)) == (2, 2)
    # The next pass finds nothing stuck in processing.
    assert reaper.reap_expired(now=T0 + timedelta(hours=1, seconds=62)) == reaper.ReapReport(0, 0)


@pytest.mark.postgres
def test_a_value_too_long_for_its_column_fails_alone_on_postgres(pg_settings: Settings) -> None:
    orgs = users.create_organization(name="Long").id, users.create_organization(name="Short").id
    ids, (a, b, c) = _three_claimed(orgs)
    report = record_batch(worker_id="w1", now=NOW, outcomes=[
        rt.outcome(a, rt.result([("cat", 0.9)])),
        rt.outcome(b, rt.result([("cat", 0.9)], model="m" * 200), model="m" * 200),
        rt.outcome(c, rt.result([("cat", 0.9)]))])
    assert (report.recorded, report.failed, report.unrecordable) == (3, 1, 1)
    results = _results()
    _assert_the_others_recorded([ids[0], ids[2]], results)
    bad = qt.photo(ids[1])
    assert bad.last_error == f"{REASON}value too long for type character varying(128)"
    assert results[ids[1]].model == "m" * 128  # the stand-in fits its columns


@pytest.mark.postgres
def test_an_infrastructure_fault_still_fails_the_whole_batch(pg_settings: Settings) -> None:
    """A fault that is not the row's (here the server shutting down, SQLSTATE 57P01) keeps the batch held."""
    orgs = users.create_organization(name="Down").id, users.create_organization(name="Also down").id
    ids, claimed = _three_claimed(orgs)
    with service_session() as s:
        s.execute(text("""
CREATE FUNCTION shut_down() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'terminating connection' USING ERRCODE = 'admin_shutdown'; END $$"""))
        s.execute(text("CREATE TRIGGER shut_down BEFORE INSERT ON ai_processing_results "
                       "FOR EACH ROW EXECUTE FUNCTION shut_down()"))
    with pytest.raises(OperationalError):
        record_batch(worker_id="w1", now=NOW, outcomes=[rt.outcome(x, rt.result([("cat", 0.9)])) for x in claimed])
    assert _results() == {}
    assert {(qt.photo(i).status, qt.photo(i).lease_owner) for i in ids} == {("processing", "w1")}
