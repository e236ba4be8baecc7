"""Batch corrections on SQLite and PostgreSQL: each template's exact effect (tags, photo status, ground truth,
items), filters and the preview, chunks with a small chunk size and the bound on rows recorded meanwhile, a row
the database refuses counted failed while the rest apply, undo restoring exactly (removed tags with their links
included) and keeping what someone changed since, a cancelled or failed run, refusals for reviewers and
viewers, and the audit entries' summaries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, select, text, update
from unit_helpers import load_unit_module

from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import (
    CorrectionBatch,
    CorrectionBatchItem,
    GroundTruth,
    Photo,
    PhotoTag,
    Prompt,
    PromptVersion,
    Review,
    ReviewDecision,
)
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import batch_undo, batches
from aiconsole.quality.batch_select import BatchFilter

h = load_unit_module("test_review_queue")
T0, NOW = h.T0, h.NOW
LATER = NOW + timedelta(hours=1)
ANY = BatchFilter()
TAGS: Table = PhotoTag.__table__  # type: ignore[assignment]


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Batch Org")


@pytest.fixture
def scene(team: Any) -> dict[str, int]:
    """a: a band 'cat' beside an accepted 'grass'; b: cat accepted, dog rejected (by the AI); c: a band 'dog'
    from gemini; d: a 'cat' a person rejected; e: 'cat' in the band beside 'kitten' at 0.7 (band too)."""
    o = team.org
    ids = {
        "a": h.add_photo(o, [("cat", 0.5, "needs_review"), ("grass", 0.85, "accepted")], minute=0),
        "b": h.add_photo(o, [("cat", 0.92, "accepted"), ("dog", 0.3, "rejected")], status="completed", minute=1),
        "c": h.add_photo(o, [("dog", 0.45, "needs_review")], minute=2, provider="gemini", model="gemini-2.5-flash"),
        "d": h.add_photo(o, [("cat", 0.2, "rejected")], status="completed", minute=3),
        "e": h.add_photo(o, [("cat", 0.6, "needs_review"), ("kitten", 0.7, "accepted")], minute=4),
    }
    with service_session() as s:
        s.execute(update(PhotoTag).where(PhotoTag.photo_id == ids["d"])
                  .values(reviewed_by=team.first.user_id, reviewed_at=T0))
    return ids


def tags(org: int) -> dict[int, dict[str, Any]]:
    """Every tag of the organization, every column, by id."""
    with service_session() as s:
        return {r.id: dict(r._mapping) for r in s.execute(select(TAGS).where(TAGS.c.organization_id == org))}


def on_photo(org: int, photo_id: int) -> dict[str, tuple[str, Any]]:
    return {t["label"]: (t["review_state"], t["reviewed_by"]) for t in tags(org).values() if t["photo_id"] == photo_id}


def statuses(org: int) -> dict[int, str]:
    with service_session() as s:
        return dict(s.execute(select(Photo.id, Photo.status).where(Photo.organization_id == org)).all())


def truth(org: int) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    with service_session() as s:
        for r in s.execute(select(GroundTruth.photo_id, GroundTruth.label, GroundTruth.source)
                           .where(GroundTruth.organization_id == org).order_by(GroundTruth.label)):
            out.setdefault(r.photo_id, []).append((r.label, r.source))
    return out


def items(batch_id: int) -> list[tuple[str, int, Any, Any, str | None]]:
    with service_session() as s:
        return [(i.action, i.photo_id, i.before, i.after, i.error) for i in s.scalars(
            select(CorrectionBatchItem).where(CorrectionBatchItem.batch_id == batch_id)
            .order_by(CorrectionBatchItem.id))]


def truth_row(org: int, photo_id: int, label: str, by: int | None) -> dict[str, Any]:
    """A ground-truth row a batch writes, as a photo item holds it."""
    return {"organization_id": org, "photo_id": photo_id, "label": label, "source": "batch", "review_id": None,
            "set_by": by, "created_at": NOW.isoformat()}


def run(actor: Any, template: str, filters: BatchFilter = ANY, **params: Any) -> batches.BatchRow:
    return batches.run_batch(actor, filters=filters, template=template, params=params, now=NOW)


def counts(b: batches.BatchRow) -> tuple[int, int, int, int]:
    return b.matched, b.processed, b.changed, b.failed


def test_rename_renames_merges_moves_photos_out_of_review_and_rewrites_ground_truth(team: Any,
                                                                                    scene: dict[str, int]) -> None:
    o, me, at = team.org, team.admin.user_id, NOW.isoformat()
    b = run(team.admin, "rename", from_label=" Cat ", to_label="kitten")
    # d's cat was rejected: not renamed. e has a live kitten already: its cat is rejected, one kitten stays.
    assert (b.status, counts(b), b.description) == ("completed", (3, 3, 3, 0), "rename 'cat' to 'kitten'")
    assert on_photo(o, scene["a"]) == {"kitten": ("corrected", me), "grass": ("accepted", None)}
    assert on_photo(o, scene["b"]) == {"kitten": ("corrected", me), "dog": ("rejected", None)}
    assert on_photo(o, scene["d"]) == {"cat": ("rejected", team.first.user_id)}
    assert on_photo(o, scene["e"]) == {"cat": ("rejected", me), "kitten": ("accepted", None)}
    # a waits no more (grass is above the accept threshold); e still does (kitten at 0.7 is in the band).
    assert statuses(o) == {scene["a"]: "completed", scene["b"]: "completed", scene["c"]: "needs_review",
                           scene["d"]: "completed", scene["e"]: "needs_review"}
    assert truth(o) == {scene["a"]: [("kitten", "batch")], scene["b"]: [("kitten", "batch")]}
    before = {"label": "cat", "review_state": "needs_review", "reviewed_by": None, "reviewed_at": None}
    assert items(b.id) == [
        ("rename", scene["a"], before, {"label": "kitten", "review_state": "corrected", "reviewed_by": me,
                                        "reviewed_at": at}, None),
        ("rename", scene["b"], {**before, "review_state": "accepted"},
         {"label": "kitten", "review_state": "corrected", "reviewed_by": me, "reviewed_at": at}, None),
        ("rename", scene["e"], before, {"label": "cat", "review_state": "rejected", "reviewed_by": me,
                                        "reviewed_at": at}, None),
        ("photo", scene["a"], {"status": "needs_review", "ground_truth": []},
         {"status": "completed", "ground_truth": [truth_row(o, scene["a"], "kitten", me)]}, None),
        ("photo", scene["b"], {"status": "completed", "ground_truth": []},
         {"status": "completed", "ground_truth": [truth_row(o, scene["b"], "kitten", me)]}, None)]
    start, finish = (list_entries(team.admin, action=f"quality.batch.{a}")[0] for a in ("start", "finish"))
    assert start.summary == f"Started batch #{b.id}: rename 'cat' to 'kitten' on 3 tags (3 photos)"
    assert finish.summary == (f"Batch #{b.id} (rename 'cat' to 'kitten') completed: 3 tags changed, 0 failed, "
                              "1 photo out of review")
    assert start.actor == team.admin.email and finish.entity_id == str(b.id)


def test_remove_deletes_the_label_and_add_gives_every_selected_photo_one(team: Any, scene: dict[str, int]) -> None:
    o, me = team.org, team.admin.user_id
    removed = run(team.admin, "remove", label="grass")
    assert counts(removed) == (1, 1, 1, 0)
    assert on_photo(o, scene["a"]) == {"cat": ("needs_review", None)}
    (action, photo, before, after, _), = items(removed.id)
    assert (action, photo, after, before["label"], before["confidence"], before["links"]) == (
        "remove", scene["a"], None, "grass", 0.85, {})
    added = run(team.admin, "add", BatchFilter(label="cat"), label="Pet")
    assert (counts(added), added.description) == ((4, 4, 4, 0), "add 'pet' to every selected photo")
    for key in ("a", "b", "d", "e"):
        assert on_photo(o, scene[key])["pet"] == ("accepted", me)
    assert "pet" not in on_photo(o, scene["c"])
    assert truth(o)[scene["a"]] == [("pet", "batch")]
    new = {t["id"]: t for t in tags(o).values() if t["label"] == "pet"}
    assert {t["source"] for t in new.values()} == {"human"} and {t["confidence"] for t in new.values()} == {1.0}
    assert run(team.admin, "add", BatchFilter(label="cat"), label="pet").matched == 0  # each has one now


def test_accept_and_reject_leave_out_what_a_person_decided_that_way(team: Any, scene: dict[str, int]) -> None:
    o, me = team.org, team.admin.user_id
    accepted = run(team.admin, "accept", at_least=0.9)
    assert counts(accepted) == (1, 1, 1, 0)
    assert on_photo(o, scene["b"])["cat"] == ("accepted", me)
    assert run(team.admin, "accept", at_least=0.9).matched == 0  # a person accepted it now
    rejected = run(team.admin, "reject", at_most=0.45)
    # b's dog (rejected by the AI, not a person) and c's dog; d's cat was rejected by a person already.
    assert (counts(rejected), rejected.description) == ((2, 2, 2, 0), "reject tags at or below 0.45")
    assert on_photo(o, scene["c"]) == {"dog": ("rejected", me)}
    assert on_photo(o, scene["d"]) == {"cat": ("rejected", team.first.user_id)}
    assert statuses(o)[scene["c"]] == "completed"
    assert truth(o) == {scene["b"]: [("cat", "batch")]}


def test_filters_and_the_preview(team: Any, scene: dict[str, int]) -> None:
    o = team.org
    with service_session() as s:
        prompt = Prompt(organization_id=o, name="tagger")
        s.add(prompt)
        s.flush()
        version = PromptVersion(organization_id=o, prompt_id=prompt.id, version=1, content="List tags.")
        s.add(version)
        s.flush()
        vid = version.id
    late = h.add_photo(o, [("cat", 0.55, "needs_review")], minute=90, prompt_version_id=vid)

    def matched(f: BatchFilter, template: str = "accept", **params: Any) -> int:
        p = batches.preview(team.admin, filters=f, template=template, params=params or {"at_least": 0.0},
                            thumbnails=False)
        return p.matched

    assert matched(ANY) == 9  # every tag: accepting overturns d's rejection when the filter does not leave it out
    assert matched(BatchFilter(label="CAT")) == 5
    assert matched(BatchFilter(min_confidence=0.45, max_confidence=0.6)) == 4  # both ends included
    assert matched(BatchFilter(provider="gemini")) == matched(BatchFilter(model="gemini-2.5-flash")) == 1
    assert matched(BatchFilter(prompt_version_id=vid)) == 1
    assert matched(BatchFilter(since=T0 + timedelta(minutes=4))) == 3
    assert matched(BatchFilter(until=T0 + timedelta(minutes=1))) == 2
    assert matched(BatchFilter(tag_states=("rejected",))) == 2
    assert matched(BatchFilter(decided=True), "reject", at_most=1.0) == 0
    assert matched(BatchFilter(decided=False, photo_statuses=("completed",))) == 2
    p = batches.preview(team.admin, filters=BatchFilter(label="cat"), template="rename",
                        params={"from_label": "cat", "to_label": "kitten"}, sample_size=2)
    assert (p.unit, p.matched, p.photos) == ("tag", 4, 4)
    assert [(x.photo_id, x.label, x.confidence) for x in p.sample] == [(late, "cat", 0.55), (scene["e"], "cat", 0.6)]
    assert p.sample[0].thumbnail is None and "mem" in (p.sample[0].thumbnail_problem or "")
    add = batches.preview(team.admin, filters=BatchFilter(label="cat"), template="add", params={"label": "kitten"},
                          thumbnails=False)
    assert (add.unit, add.matched, add.photos) == ("photo", 4, 4)  # e has a kitten already
    assert BatchFilter.from_json(BatchFilter(since=T0, tag_states=("accepted",)).to_json()) == \
        BatchFilter(since=T0, tag_states=("accepted",))


@pytest.mark.parametrize(("template", "params", "wrong"), [
    ("merge", {}, "no batch template"), ("rename", {"from_label": "cat", "to_label": " CAT"}, "changes nothing"),
    ("add", {"label": "  "}, "label is empty"), ("accept", {"at_least": 1.5}, "between 0 and 1"),
    ("reject", {"at_most": True}, "between 0 and 1"), ("remove", {"label": "x", "at_most": 1}, "takes no at_most"),
])
def test_templates_check_their_parameters(team: Any, template: str, params: dict[str, Any], wrong: str) -> None:
    with pytest.raises(ValidationFailed, match=wrong):
        run(team.admin, template, **params)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(CorrectionBatch)) == 0


def test_filters_are_checked(team: Any) -> None:
    for f, wrong in ((BatchFilter(min_confidence=0.8, max_confidence=0.2), "range 0.8-0.2 is empty"),
                     (BatchFilter(since=NOW, until=T0), "ends before it starts"),
                     (BatchFilter(tag_states=("maybe",)), "no tag state 'maybe'")):
        with pytest.raises(ValidationFailed, match=wrong):
            run(team.admin, "accept", f, at_least=0.5)
    with pytest.raises(ValidationFailed, match="chunk of 0 rows"):
        batches.run_batch(team.admin, filters=ANY, template="accept", params={"at_least": 0.5}, chunk_size=0)


def test_chunks_report_progress_and_leave_tags_recorded_meanwhile_alone(team: Any) -> None:
    o = team.org
    for i in range(23):
        h.add_photo(o, [("cat", 0.5, "needs_review")], minute=i)
    seen: list[tuple[int, int, int, int]] = []

    def progress(p: batches.BatchProgress) -> None:
        seen.append((p.total, p.processed, p.changed, p.failed))
        if len(seen) == 1:  # a worker records another cat while the batch runs
            h.add_photo(o, [("cat", 0.5, "needs_review")], minute=100)

    b = batches.run_batch(team.admin, filters=ANY, template="rename", params={"from_label": "cat", "to_label": "lynx"},
                          chunk_size=5, progress=progress, now=NOW)
    assert seen == [(23, 5, 5, 0), (23, 10, 10, 0), (23, 15, 15, 0), (23, 20, 20, 0), (23, 23, 23, 0)]
    assert counts(b) == (23, 23, 23, 0)
    assert sorted(t["label"] for t in tags(o).values()) == ["cat"] + ["lynx"] * 23
    assert len(items(b.id)) == 46  # 23 tags and 23 photos (out of review, 'lynx' their ground truth)


def _refuse_updates_of(tag_id: int, settings: Settings) -> None:
    """A trigger that makes the database refuse any change to one tag (a row's own fault, as the batch sees it)."""
    engine = get_engine(settings)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER frozen BEFORE UPDATE ON photo_tags WHEN OLD.id = {tag_id} "
                              "BEGIN SELECT RAISE(ABORT, 'tag is frozen'); END"))
        else:
            conn.execute(text("CREATE FUNCTION frozen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                              "RAISE EXCEPTION 'tag is frozen' USING ERRCODE = 'check_violation'; END $$"))
            conn.execute(text(f"CREATE TRIGGER frozen BEFORE UPDATE ON photo_tags FOR EACH ROW "
                              f"WHEN (OLD.id = {tag_id}) EXECUTE FUNCTION frozen()"))


def test_a_row_the_database_refuses_is_counted_failed_and_the_rest_apply(team: Any, any_settings: Settings) -> None:
    o = team.org
    photos = [h.add_photo(o, [("cat", 0.5 + i / 100, "needs_review")], minute=i) for i in range(7)]
    frozen = min(t["id"] for t in tags(o).values() if t["photo_id"] == photos[4])
    _refuse_updates_of(frozen, any_settings)
    b = batches.run_batch(team.admin, filters=ANY, template="accept", params={"at_least": 0.0}, chunk_size=3, now=NOW)
    assert (b.status, counts(b)) == ("completed", (7, 7, 6, 1))
    assert tags(o)[frozen]["review_state"] == "needs_review"
    assert sum(1 for t in tags(o).values() if t["review_state"] == "accepted") == 6
    refused = [i for i in items(b.id) if i[4] is not None]
    assert len(refused) == 1 and refused[0][1] == photos[4] and "tag is frozen" in (refused[0][4] or "")
    assert statuses(o)[photos[4]] == "needs_review" and statuses(o)[photos[3]] == "completed"
    undone = batch_undo.undo_batch(team.admin, batch_id=b.id, chunk_size=4, now=LATER)
    assert (undone.restored, undone.kept) == (12, 0)  # 6 tags and 6 photos; the refused row was never changed
    assert {t["review_state"] for t in tags(o).values()} == {"needs_review"}


def _snapshot(org: int) -> tuple[Any, ...]:
    with service_session() as s:
        links = s.execute(select(ReviewDecision.id, ReviewDecision.tag_id).order_by(ReviewDecision.id)).all()
    return tags(org), statuses(org), {p: [label for label, _ in v] for p, v in truth(org).items()}, links


@pytest.mark.parametrize(("template", "filters", "params"), [
    ("rename", ANY, {"from_label": "cat", "to_label": "kitten"}),
    ("remove", ANY, {"label": "cat"}),
    ("add", BatchFilter(label="dog"), {"label": "pet"}),
    ("accept", ANY, {"at_least": 0.5}),
    ("reject", BatchFilter(decided=False), {"at_most": 0.6}),
])
def test_undo_restores_exactly_what_the_batch_changed(team: Any, scene: dict[str, int], template: str,
                                                      filters: BatchFilter, params: dict[str, Any]) -> None:
    o = team.org
    with service_session() as s:  # d's cat was decided in a review: the decision points at the tag
        review = Review(organization_id=o, photo_id=scene["d"], reviewer_id=team.first.user_id, claim_token="t1",
                        queue_order="random", claimed_at=T0)
        s.add(review)
        s.flush()
        tag_id = s.scalar(select(PhotoTag.id).where(PhotoTag.photo_id == scene["d"]))
        s.add(ReviewDecision(organization_id=o, review_id=review.id, photo_id=scene["d"], tag_id=tag_id,
                             action="reject", reason="wrong", label_before="cat", reviewer_id=team.first.user_id))
        s.add(GroundTruth(organization_id=o, photo_id=scene["b"], label="cat", source="review"))
    before = _snapshot(o)
    # One tag a chunk: a photo with two tags gets two photo items, which one undo chunk of three puts back in turn.
    b = batches.run_batch(team.admin, filters=filters, template=template, params=params, chunk_size=1, now=NOW)
    assert b.changed > 0 and _snapshot(o) != before
    undone = batch_undo.undo_batch(team.admin, batch_id=b.id, chunk_size=3, now=LATER)
    assert undone.kept == 0 and undone.batch.status == "undone" and undone.batch.undone_by == team.admin.email
    assert _snapshot(o) == before
    with pytest.raises(ConflictError, match="undone already"):
        batch_undo.undo_batch(team.admin, batch_id=b.id)


def test_undo_keeps_and_reports_rows_changed_since(team: Any, scene: dict[str, int]) -> None:
    o = team.org
    first = run(team.admin, "rename", BatchFilter(label="cat", decided=False), from_label="cat", to_label="kitten")
    assert first.changed == 3
    # Someone renames one of them again (another batch), and a photo is deleted since.
    second = run(team.admin, "rename", BatchFilter(min_confidence=0.9), from_label="kitten", to_label="tiger")
    assert second.changed == 1
    with service_session() as s:
        s.execute(text("DELETE FROM photos WHERE id = :p"), {"p": scene["a"]})
    undone = batch_undo.undo_batch(team.admin, batch_id=first.id, now=LATER)
    # e's cat comes back; b's tag and ground truth are kept (tiger now); a's tag and photo are gone.
    assert (undone.restored, undone.kept) == (1, 4)
    kept = {(k.photo_id, k.action): k for k in undone.kept_rows}
    assert set(kept) == {(scene["b"], "rename"), (scene["b"], "photo"), (scene["a"], "rename"), (scene["a"], "photo")}
    tiger = kept[(scene["b"], "rename")]
    assert (tiger.reason, tiger.left["label"], tiger.now and tiger.now["label"]) == (  # type: ignore[index]
        "changed since the batch", "kitten", "tiger")
    assert kept[(scene["b"], "photo")].now == {"status": "completed",
                                                "ground_truth": [truth_row(o, scene["b"], "tiger", team.admin.user_id)]}
    assert kept[(scene["a"], "rename")].now is None and kept[(scene["a"], "rename")].reason == "no longer there"
    assert on_photo(o, scene["b"])["tiger"][0] == "corrected" and on_photo(o, scene["e"])["cat"] == (
        "needs_review", None)
    entry = list_entries(team.admin, action="quality.batch.undo")[0]
    assert entry.summary == (f"Undid batch #{first.id} (rename 'cat' to 'kitten'): 1 change restored, 4 kept as "
                             "they are (changed or removed since)")
    again = batch_undo.undo_batch(team.admin, batch_id=second.id, now=LATER)
    assert (again.restored, again.kept) == (2, 0) and on_photo(o, scene["b"])["kitten"][0] == "corrected"
    assert truth(o)[scene["b"]] == [("kitten", "batch")]


def test_a_running_batch_cannot_be_undone_and_a_stopped_one_can(team: Any, scene: dict[str, int]) -> None:
    o = team.org

    def stop(p: batches.BatchProgress) -> None:
        raise KeyboardInterrupt  # the page left mid-batch (Streamlit's stop is a BaseException too)

    with pytest.raises(KeyboardInterrupt):
        batches.run_batch(team.admin, filters=ANY, template="accept", params={"at_least": 0.0}, chunk_size=2,
                          progress=stop, now=NOW)
    b = batches.list_batches(team.viewer)[0]
    assert (b.status, b.processed, b.matched, b.undoable) == ("cancelled", 2, 8, True)
    assert list_entries(team.admin, action="quality.batch.finish")[0].summary == (
        f"Batch #{b.id} (accept tags at or above 0) was cancelled: 2 tags changed, 0 failed, 1 photo out of "
        "review; stopped after 2 of 8 tags")

    def boom(p: batches.BatchProgress) -> None:
        raise RuntimeError("disk full")

    failed = batches.run_batch(team.admin, filters=ANY, template="reject", params={"at_most": 1.0}, chunk_size=3,
                               progress=boom, now=NOW)
    assert (failed.status, failed.error, failed.changed) == ("failed", "RuntimeError: disk full", 3)
    with service_session() as s:
        s.execute(update(CorrectionBatch).where(CorrectionBatch.id == b.id).values(status="running"))
    with pytest.raises(ConflictError, match="still running"):
        batch_undo.undo_batch(team.admin, batch_id=b.id)
    assert batch_undo.undo_batch(team.admin, batch_id=failed.id).restored == 3 + 1  # a photo left review
    assert [x.status for x in batches.list_batches(team.admin)] == ["undone", "running"]
    assert o == team.org


def test_only_admins_run_and_undo_batches(team: Any, scene: dict[str, int]) -> None:
    b = run(team.admin, "accept", at_least=0.9)
    for who in (team.first, team.viewer):
        with pytest.raises(PermissionDenied, match=r"\(quality\.batch\)"):
            run(who, "accept", at_least=0.9)
        with pytest.raises(PermissionDenied, match=r"\(quality\.batch\)"):
            batches.preview(who, filters=ANY, template="accept", params={"at_least": 0.9})
        with pytest.raises(PermissionDenied, match=r"\(quality\.batch\)"):
            batch_undo.undo_batch(who, batch_id=b.id)
        assert [x.id for x in batches.list_batches(who)] == [b.id]  # seeing them is for every role
    other = h.make_team("Other Org")
    with pytest.raises(Exception, match="not in this organization"):
        batch_undo.undo_batch(other.admin, batch_id=b.id)
    assert batches.get_batch(team.viewer, batch_id=b.id).created_by == team.admin.email
