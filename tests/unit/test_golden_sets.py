"""Golden sets on SQLite and PostgreSQL: frozen snapshots of reviewed photos (by filter or a random sample) with
their labels at freeze time, versions of a name, the Testing Lab's read, locks while a validation run uses a
set, audited deletes, limits, permissions and organizations kept apart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, GoldenSet, GoldenSetItem, Photo, ValidationRun
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import golden_sets as gs
from aiconsole.quality import ground_truth_import as gti
from aiconsole.quality.decisions import TagDecision, submit_review

h = load_unit_module("test_review_queue")
NOW = h.NOW
ALL = gs.GoldenFilters()


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Golden Org")


@pytest.fixture
def photos(team: Any) -> dict[str, int]:
    """cat (reviewed), dog+animal (reviewed an hour later), none (reviewed, every tag rejected), bird (truth by
    import), and one never reviewed."""
    ids = {
        "cat": h.add_photo(team.org, [("cat", 0.5, "needs_review")], minute=0),
        "dog": h.add_photo(team.org, [("dog", 0.55, "needs_review"), ("animal", 0.6, "needs_review")], minute=1),
        "none": h.add_photo(team.org, [("car", 0.45, "needs_review")], minute=2),
        "bird": h.add_photo(team.org, [("bird", 0.9, "accepted")], status="completed", minute=3),
        "unreviewed": h.add_photo(team.org, [("sky", 0.52, "needs_review")], minute=4),
    }
    for key, when in (("cat", NOW), ("dog", NOW + timedelta(hours=1)), ("none", NOW + timedelta(hours=2))):
        item = h.claim(team.first, order="oldest", now=when)
        assert item.photo_id == ids[key]
        decisions = ([TagDecision(tag_id=t.tag_id, action="reject", reason="wrong") for t in item.tags]
                     if key == "none" else h.approve_all(item))
        submit_review(team.first, token=item.token, decisions=decisions, now=when)
    gti.import_truth(team.admin, data=f"photo_id,labels\n{ids['bird']},bird\n", now=NOW + timedelta(hours=3))
    return ids


def items(actor: Actor, set_id: int) -> list[tuple[int | None, tuple[str, ...]]]:
    return [(i.photo_id, i.labels) for i in gs.golden_set_items(actor, set_id=set_id)]


def validation_run(org: int) -> int:
    with service_session() as s:
        run = ValidationRun(organization_id=org, name="candidate v5", status="running")
        s.add(run)
        s.flush()
        return run.id


def test_a_set_freezes_every_reviewed_photo_with_its_labels(team: Any, photos: dict[str, int]) -> None:
    p = photos
    assert gs.candidate_count(team.viewer, filters=ALL) == 4
    made = gs.create_golden_set(team.admin, name="  Everything   reviewed ", filters=ALL, description="baseline")
    assert (made.name, made.version, made.photo_count, made.label_count) == ("Everything reviewed", 1, 4, 4)
    assert made.label_counts == {"animal": 1, "bird": 1, "cat": 1, "dog": 1} and not made.locked
    assert made.selection == {"label": None, "source": None, "since": None, "until": None, "sample": None,
                              "matched": 4}
    # The photo whose every tag was rejected is in, with no label: "none of these" is its truth.
    assert items(team.viewer, made.id) == [(p["cat"], ("cat",)), (p["dog"], ("animal", "dog")), (p["none"], ()),
                                           (p["bird"], ("bird",))]
    (entry,) = _audits(team.org, "golden_set.create")
    assert entry.summary == "Froze golden set 'Everything reviewed' v1: 4 photos of 4 matched"
    assert entry.actor == team.admin.email and entry.entity_id == str(made.id)


def test_a_set_stays_frozen_and_a_new_version_is_a_new_snapshot(team: Any, photos: dict[str, int]) -> None:
    p = photos
    v1 = gs.create_golden_set(team.admin, name="cats", filters=gs.GoldenFilters(label="Cat"))
    assert items(team.viewer, v1.id) == [(p["cat"], ("cat",))]
    gti.import_truth(team.admin, data=f"photo_id,labels\n{p['cat']},cat;kitten\n{p['dog']},dog;cat\n")
    assert items(team.viewer, v1.id) == [(p["cat"], ("cat",))]  # the import changed nothing frozen
    v2 = gs.create_golden_set(team.admin, name="CATS", filters=gs.GoldenFilters(label="cat"))
    assert (v2.name, v2.version, v2.photo_count) == ("cats", 2, 2)
    assert items(team.viewer, v2.id) == [(p["cat"], ("cat", "kitten")), (p["dog"], ("cat", "dog"))]
    listed = gs.list_golden_sets(team.viewer)
    assert [(r.name, r.version, r.photo_count, r.created_by) for r in listed] == [
        ("cats", 2, 2, team.admin.email), ("cats", 1, 1, team.admin.email)]
    assert gs.get_golden_set(team.viewer, set_id=v1.id).label_counts == {"cat": 1}
    assert gs.get_golden_set(team.viewer, set_id=v2.id).label_counts == {"cat": 2, "dog": 1, "kitten": 1}
    # A photo deleted since stays in the snapshot by its copy.
    with service_session() as s:
        s.execute(delete(Photo).where(Photo.id == p["cat"]))
    assert items(team.viewer, v1.id) == [(None, ("cat",))]
    assert next(gs.golden_set_items(team.viewer, set_id=v1.id)).filename == "p0.jpg"


def test_filters_by_label_source_and_dates(team: Any, photos: dict[str, int]) -> None:
    p = photos

    def matched(**kw: Any) -> int:
        return gs.candidate_count(team.viewer, filters=gs.GoldenFilters(**kw))

    assert matched(source="import") == 1 and matched(source="review") == 3 and matched(label="animal") == 1
    assert matched(since=NOW + timedelta(minutes=30)) == 3  # dog, none (its review), bird (its import)
    assert matched(until=NOW + timedelta(minutes=30)) == 1
    assert matched(source="review", since=NOW + timedelta(minutes=30), until=NOW + timedelta(hours=3)) == 2
    made = gs.create_golden_set(team.admin, name="imported", filters=gs.GoldenFilters(source="import"))
    assert items(team.viewer, made.id) == [(p["bird"], ("bird",))]
    with pytest.raises(ValidationFailed, match="no source 'guess'"):
        matched(source="guess")
    with pytest.raises(ValidationFailed, match="range is empty"):
        matched(since=NOW, until=NOW)
    with pytest.raises(ValidationFailed, match="No reviewed photo matches"):
        gs.create_golden_set(team.admin, name="x", filters=gs.GoldenFilters(label="zebra"))


def test_a_random_sample_takes_n_distinct_matched_photos(team: Any, photos: dict[str, int]) -> None:
    reviewed = {photos[k] for k in ("cat", "dog", "none", "bird")}
    seen: set[int] = set()
    for _ in range(6):
        made = gs.create_golden_set(team.admin, name="sample", filters=ALL, sample=2)
        got = [pid for pid, _ in items(team.viewer, made.id) if pid is not None]
        assert len(set(got)) == 2 == made.photo_count and set(got) <= reviewed
        assert made.selection["sample"] == 2 and made.selection["matched"] == 4
        seen |= set(got)
    assert made.version == 6 and len(seen) >= 3  # six draws of the same pair: p = 6^-5
    everything = gs.create_golden_set(team.admin, name="more than there is", filters=ALL, sample=10)
    assert everything.photo_count == 4
    assert _audits(team.org, "golden_set.create")[-1].summary == ("Froze golden set 'more than there is' v1: a "
                                                                  "random sample of 4 photos of 4 matched")
    for bad in (0, gs.MAX_GOLDEN_PHOTOS + 1):
        with pytest.raises(ValidationFailed, match="A sample is 1 to 100,000 photos"):
            gs.create_golden_set(team.admin, name="bad", filters=ALL, sample=bad)


def test_too_many_matched_photos_need_a_sample(team: Any, photos: dict[str, int],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gs, "MAX_GOLDEN_PHOTOS", 3)
    with pytest.raises(ValidationFailed, match="4 reviewed photos match; a golden set holds up to 3"):
        gs.create_golden_set(team.admin, name="big", filters=ALL)
    assert gs.create_golden_set(team.admin, name="big", filters=ALL, sample=3).photo_count == 3
    with pytest.raises(ValidationFailed, match="needs a name"):
        gs.create_golden_set(team.admin, name="   ", filters=ALL)


def test_a_set_in_use_by_a_validation_run_cannot_be_deleted(team: Any, photos: dict[str, int]) -> None:
    developer = _person(team, "developer")
    made = gs.create_golden_set(team.admin, name="locked", filters=ALL)
    run = validation_run(team.org)
    gs.register_run(developer, set_id=made.id, run_id=run)
    gs.register_run(developer, set_id=made.id, run_id=run)  # twice is once
    assert gs.get_golden_set(team.viewer, set_id=made.id).locked
    with pytest.raises(ConflictError, match=f"is in use by validation run #{run}; a set never changes"):
        gs.delete_golden_set(team.admin, set_id=made.id)
    assert len(items(team.viewer, made.id)) == 4
    assert gs.release_run(developer, set_id=made.id, run_id=run) is True
    assert gs.release_run(developer, set_id=made.id, run_id=run) is False
    assert not gs.get_golden_set(team.viewer, set_id=made.id).locked
    # Registered again, then the run itself is deleted: that releases the set too.
    gs.register_run(developer, set_id=made.id, run_id=run)
    assert gs.get_golden_set(team.viewer, set_id=made.id).locked
    with service_session() as s:
        s.execute(delete(ValidationRun).where(ValidationRun.id == run))
    assert gs.delete_golden_set(team.admin, set_id=made.id) == "Deleted golden set 'locked' v1 (4 photos)."
    with service_session() as s:
        assert s.scalar(select(GoldenSetItem.id).where(GoldenSetItem.golden_set_id == made.id)) is None
    with pytest.raises(NotFound):
        gs.get_golden_set(team.viewer, set_id=made.id)
    with pytest.raises(NotFound, match="deleted already"):
        gs.delete_golden_set(team.admin, set_id=made.id)
    assert [e.action for e in _audits(team.org)] == ["golden_set.create", "golden_set.lock", "golden_set.lock",
                                                     "golden_set.unlock", "golden_set.lock", "golden_set.delete"]
    (deleted,) = _audits(team.org, "golden_set.delete")
    assert deleted.before is not None and deleted.before["photos"] == 4


def test_permissions_and_organizations(team: Any, photos: dict[str, int]) -> None:
    made = gs.create_golden_set(team.admin, name="mine", filters=ALL)
    for who in (team.viewer, team.first):
        with pytest.raises(PermissionDenied, match=r"quality\.ground_truth"):
            gs.create_golden_set(who, name="x", filters=ALL)
        with pytest.raises(PermissionDenied, match=r"quality\.ground_truth"):
            gs.delete_golden_set(who, set_id=made.id)
        with pytest.raises(PermissionDenied, match=r"testing\.run"):
            gs.register_run(who, set_id=made.id, run_id=validation_run(team.org))
        assert [r.id for r in gs.list_golden_sets(who)] == [made.id]
    other = h.make_team("Other Golden")
    assert gs.list_golden_sets(other.admin) == []
    with pytest.raises(NotFound):
        gs.get_golden_set(other.admin, set_id=made.id)
    with pytest.raises(NotFound):
        gs.golden_set_items(other.admin, set_id=made.id)
    with pytest.raises(NotFound):
        gs.delete_golden_set(other.admin, set_id=made.id)
    with pytest.raises(NotFound, match="no golden set"):
        gs.register_run(other.admin, set_id=made.id, run_id=validation_run(other.org))
    with service_session() as s:
        assert s.scalar(select(GoldenSet.organization_id).where(GoldenSet.id == made.id)) == team.org


def _person(team: Any, role: str) -> Actor:
    row = users.create_user(Actor.system("test", team.org), email=f"{role}.{team.org}@golden.example.com",
                            display_name=role, role=role, password=None)
    return Actor(user_id=row.id, email=row.email, role=role, organization_id=team.org)


def _audits(org: int, action: str | None = None) -> list[AuditLog]:
    with service_session() as s:
        query = select(AuditLog).where(AuditLog.organization_id == org, AuditLog.action.like("golden_set.%"))
        if action:
            query = query.where(AuditLog.action == action)
        return list(s.scalars(query.order_by(AuditLog.id)))


def test_a_new_version_with_the_same_selection_and_its_description(team: Any, photos: dict[str, int]) -> None:
    p = photos
    since = NOW + timedelta(minutes=30)
    v1 = gs.create_golden_set(team.admin, name="recent", filters=gs.GoldenFilters(source="review", since=since),
                              sample=5, description="for the lab")
    assert gs.describe(v1, "UTC") == ("a random sample of 2 of 2 reviewed photos, from review, since "
                                      f"{h.NOW.strftime('%Y-%m-%d')} 09:30:00 UTC")
    assert v1.selection["since"] == since.isoformat()
    v2 = gs.freeze_again(team.admin, set_id=v1.id)
    assert (v2.name, v2.version, v2.description, v2.selection) == ("recent", 2, "for the lab", v1.selection)
    assert sorted(pid or 0 for pid, _ in items(team.viewer, v2.id)) == sorted([p["dog"], p["none"]])
    everything = gs.create_golden_set(team.admin, name="all", filters=gs.GoldenFilters(label="dog"))
    assert gs.describe(everything) == "all 1 reviewed photo matched, with the label 'dog'"
