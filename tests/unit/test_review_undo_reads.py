"""The review screen's domain on SQLite and PostgreSQL: undoing a submitted review (tags, added tags, ground
truth, photo status, the claim back, audit; refusals that change nothing), the photo drawn for the screen and
zoomed, the organization's labels, filters from calendar days in the org's zone, a reviewer's pace (known
answers) and a submitted review's summary."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from unit_helpers import load_unit_module

from aiconsole.pipeline.images import store_image
from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    GroundTruth,
    Organization,
    Photo,
    PhotoTag,
    Prompt,
    PromptVersion,
    Review,
    ReviewClaim,
    ReviewDecision,
)
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import review_queue as rq
from aiconsole.quality import review_reads as reads
from aiconsole.quality.decisions import TagDecision, submit_review
from aiconsole.quality.review_undo import undo_last_review

h = load_unit_module("test_review_queue")
NOW = h.NOW


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team()


def tags_of(photo_id: int) -> dict[int, tuple[str, str, int | None, str]]:
    with service_session() as s:
        return {t.id: (t.label, t.review_state, t.reviewed_by, t.source)
                for t in s.scalars(select(PhotoTag).where(PhotoTag.photo_id == photo_id))}


def truth_of(photo_id: int) -> list[tuple[str, int | None]]:
    with service_session() as s:
        return sorted((r.label, r.review_id) for r in s.execute(
            select(GroundTruth.label, GroundTruth.review_id).where(GroundTruth.photo_id == photo_id)))


def status_of(photo_id: int) -> str:
    with service_session() as s:
        return str(s.scalar(select(Photo.status).where(Photo.id == photo_id)))


def review_it(actor: Any, item: rq.ReviewItem, *, at: datetime = NOW) -> Any:
    """Rename dog -> puppy, reject animal as too generic, add grass."""
    dog, animal = (next(t for t in item.tags if t.label == name) for name in ("dog", "animal"))
    return submit_review(actor, token=item.token, added=["grass"], now=at, decisions=[
        TagDecision(tag_id=dog.tag_id, action="rename", label="puppy"),
        TagDecision(tag_id=animal.tag_id, action="reject", reason="too_generic")])


def test_undo_restores_the_photo_as_it_was_and_hands_it_back(team: Any) -> None:
    photo = h.add_photo(team.org, [("dog", 0.45, "needs_review"), ("animal", 0.9, "accepted")])
    before = tags_of(photo)
    item = h.claim(team.first)
    out = review_it(team.first, item)
    assert status_of(photo) == "completed" and truth_of(photo) == [("grass", out.review_id), ("puppy", out.review_id)]
    # Rita moves on to another photo, then undoes the review: her claim on the other photo ends.
    other = h.add_photo(team.org, [("cat", 0.5, "needs_review")], minute=5)
    assert h.claim(team.first).photo_id == other
    undone = undo_last_review(team.first, review_id=out.review_id, now=NOW + timedelta(minutes=1))
    assert (undone.restored, undone.removed, undone.reclaimed, undone.ground_truth) == (2, 1, True, ())
    assert tags_of(photo) == before  # labels and states as recorded, undecided again, the added tag gone
    assert status_of(photo) == "needs_review" and truth_of(photo) == []
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 0
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0
        claims = s.execute(select(ReviewClaim.photo_id, ReviewClaim.reviewer_id, ReviewClaim.queue_order)).all()
    assert [tuple(c) for c in claims] == [(photo, team.first.user_id, "lowest_confidence")]
    entry = list_entries(team.admin, action="review.undo")[0]
    assert entry.entity_id == str(photo) and entry.actor == team.first.email
    assert entry.summary == (f"Undid review #{out.review_id} of photo #{photo}: 2 tags back to their earlier "
                             "state, 1 added tag removed; the photo is back in the queue")
    assert entry.after is not None and entry.after["tags"] == {"dog": "needs_review", "animal": "accepted"}
    with pytest.raises(NotFound, match="undone already"):
        undo_last_review(team.first, review_id=out.review_id)
    # The queue resumes Rita's claim on it, and she can decide again.
    again = h.claim(team.first, now=NOW + timedelta(minutes=2))
    assert again.photo_id == photo and {t.label for t in again.tags} == {"dog", "animal"}
    assert submit_review(team.first, token=again.token, decisions=h.approve_all(again)).ground_truth == (
        "animal", "dog")


def test_undoing_a_second_review_leaves_the_first_ones_ground_truth(team: Any) -> None:
    photo = h.add_photo(team.org, [("dog", 0.45, "needs_review")])
    first = h.claim(team.first)
    one = submit_review(team.first, token=first.token, decisions=h.approve_all(first))
    with service_session() as s:  # a later result adds a tag the first review never saw
        s.add(PhotoTag(organization_id=team.org, photo_id=photo, label="puppy", confidence=0.5, source="ai",
                       review_state="needs_review", created_at=NOW))
    second = h.claim(team.second)
    assert [t.label for t in second.tags] == ["puppy"]
    two = submit_review(team.second, token=second.token, decisions=h.approve_all(second), added=["pet"])
    assert truth_of(photo) == [("dog", two.review_id), ("pet", two.review_id), ("puppy", two.review_id)]
    with pytest.raises(ConflictError, match="reviewed again"):
        undo_last_review(team.first, review_id=one.review_id)
    undo_last_review(team.second, review_id=two.review_id)
    assert truth_of(photo) == [("dog", one.review_id)]
    assert status_of(photo) == "completed"  # the first review took it out of needs_review


def test_refused_undos_change_nothing(team: Any) -> None:
    photo = h.add_photo(team.org, [("dog", 0.45, "needs_review"), ("animal", 0.9, "accepted")])
    out = review_it(team.first, h.claim(team.first))
    after = tags_of(photo), truth_of(photo)
    with pytest.raises(PermissionDenied, match=r"review\.tags"):
        undo_last_review(team.viewer, review_id=out.review_id)
    with pytest.raises(PermissionDenied, match="another reviewer"):
        undo_last_review(team.second, review_id=out.review_id)
    with pytest.raises(NotFound):
        undo_last_review(h.make_team("Elsewhere").first, review_id=out.review_id)
    with service_session() as s:  # a batch correction renames the corrected tag afterwards
        s.execute(update(PhotoTag).where(PhotoTag.photo_id == photo, PhotoTag.label == "puppy")
                  .values(label="young dog"))
    with pytest.raises(ConflictError, match="Tags changed since the review: puppy"):
        undo_last_review(team.first, review_id=out.review_id)
    renamed = {k: ("young dog", *v[1:]) if v[0] == "puppy" else v for k, v in after[0].items()}
    assert (tags_of(photo), truth_of(photo)) == (renamed, after[1])
    assert list_entries(team.admin, action="review.undo") == []


def test_photo_for_the_screen_and_zoomed(team: Any, any_settings: Settings) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1200, 800), (200, 30, 30)).save(buf, "PNG")
    uri = store_image(buf.getvalue())
    photo = h.add_photo(team.org, [("red", 0.5, "needs_review")])
    with service_session() as s:
        s.execute(update(Photo).where(Photo.id == photo).values(storage_uri=uri, width=1200, height=800))
    screen = reads.photo_image(team.viewer, photo_id=photo)
    zoomed = reads.photo_image(team.viewer, photo_id=photo, zoom=True)
    assert (screen.side, screen.full, Image.open(io.BytesIO(screen.jpeg)).size) == (960, False, (960, 640))
    assert (zoomed.side, zoomed.full, Image.open(io.BytesIO(zoomed.jpeg)).size) == (1200, True, (1200, 800))
    with pytest.raises(NotFound):
        reads.photo_image(h.make_team("Elsewhere").viewer, photo_id=photo)


def test_known_labels_and_filter_choices(team: Any) -> None:
    for minute, label in enumerate(["cat", "cat", "dog", "cat", "catfish"]):
        h.add_photo(team.org, [(label, 0.5, "needs_review")], minute=minute)
    assert reads.known_labels(team.viewer) == ["cat", "catfish", "dog"]
    assert reads.known_labels(team.viewer, prefix=" CAT") == ["cat", "catfish"]
    assert reads.known_labels(team.viewer, limit=1) == ["cat"]
    item = h.claim(team.first)
    submit_review(team.first, token=item.token, decisions=h.approve_all(item), added=["zebra"])
    assert "zebra" not in reads.known_labels(team.viewer)  # cached
    reads.invalidate_labels(team.org)
    assert reads.known_labels(team.viewer) == ["cat", "zebra", "catfish", "dog"]  # tag + ground truth: 2
    with service_session() as s:
        prompt = Prompt(organization_id=team.org, name="tagger")
        s.add(prompt)
        s.flush()
        s.add_all([PromptVersion(organization_id=team.org, prompt_id=prompt.id, version=v, content="Tag it.")
                   for v in (1, 2)])
    choices = reads.filter_choices(team.viewer)
    assert [label for _id, label in choices.prompt_versions] == ["tagger v2", "tagger v1"]
    assert ("local", "Local analyzer") in choices.providers and choices.models["gemini"][0] == "gemini-2.5-flash"
    assert choices.labels[0] == "cat"


def test_filters_from_calendar_days_in_the_org_zone(team: Any) -> None:
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == team.org).values(timezone="America/New_York"))
    f = reads.queue_filters(team.viewer, label=" Cat ", provider="", first_day=date(2026, 3, 2),
                            last_day=date(2026, 3, 8))
    assert (f.label, f.provider, f.model, f.prompt_version_id) == ("cat", None, None, None)
    assert f.since is not None and f.since.astimezone(UTC) == datetime(2026, 3, 2, 5, tzinfo=UTC)
    assert f.until is not None and f.until.astimezone(UTC) == datetime(2026, 3, 9, 4, tzinfo=UTC)  # DST began
    assert reads.queue_filters(team.viewer, label=" ") == rq.QueueFilters()
    with pytest.raises(ValidationFailed, match=r"ends .* before it starts"):
        reads.queue_filters(team.viewer, first_day=date(2026, 3, 2), last_day=date(2026, 3, 1))


def test_pace_known_answers() -> None:
    assert reads.pace(12, 1800, 84) == reads.ReviewPace(reviewed=12, elapsed_s=1800, per_hour=24.0, backlog=84,
                                                        eta_s=12_600.0)
    assert reads.pace(0, 1800, 84).per_hour is None and reads.pace(0, 1800, 84).eta_s is None
    assert reads.pace(3, 0.5, 84).per_hour is None  # no rate within the first second
    assert reads.pace(5, 600, 0).eta_s == 0.0


def test_review_pace_counts_this_reviewers_reviews_since_the_session_began(team: Any) -> None:
    for minute in range(3):
        h.add_photo(team.org, [("cat", 0.5, "needs_review")], minute=minute)
    start = datetime.now(UTC) - timedelta(minutes=10)
    for actor in (team.first, team.first, team.second):
        item = rq.claim_next(actor)
        assert item is not None
        submit_review(actor, token=item.token, decisions=h.approve_all(item))
    got = reads.review_pace(team.first, since=start, backlog=30, now=start + timedelta(minutes=30))
    assert (got.reviewed, got.per_hour, got.eta_s) == (2, 4.0, 27_000.0)
    assert reads.review_pace(team.viewer, since=start, backlog=30).reviewed == 0


def test_review_summary(team: Any) -> None:
    photo = h.add_photo(team.org, [("dog", 0.45, "needs_review"), ("animal", 0.9, "accepted")])
    out = review_it(team.first, h.claim(team.first))
    got = reads.review_summary(team.first, review_id=out.review_id)
    assert (got.photo_id, got.filename, got.ground_truth) == (photo, "p0.jpg", ("grass", "puppy"))
    assert [(d.action, d.label_before, d.label_after, d.reason) for d in got.decisions] == [
        ("reject", "animal", None, "too_generic"), ("rename", "dog", "puppy", None), ("add", None, "grass", None)]
    assert reads.review_summary(team.admin, review_id=out.review_id).review_id == out.review_id
    with pytest.raises(NotFound, match="not one of yours"):
        reads.review_summary(team.second, review_id=out.review_id)
