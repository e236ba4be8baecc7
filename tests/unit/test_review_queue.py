"""The review queue on SQLite and PostgreSQL: which photos wait (needs_review, the current rules' band; every
undecided photo in the random order), orders and filters, claims (exclusive, resumed, expiring, released on
skip), submitting a review in one transaction (tags, decisions, ground truth, photo status, audit), a double
submit recorded once, refusals that save nothing, permissions, and reviewers in threads never sharing a photo."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    GroundTruth,
    Photo,
    PhotoTag,
    PipelineConfig,
    Prompt,
    PromptVersion,
    Review,
    ReviewClaim,
    ReviewDecision,
)
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import TagDecision, submit_review

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


class Team(NamedTuple):  # not a dataclass: other tests load this module by path, outside sys.modules
    org: int
    first: Actor
    second: Actor
    viewer: Actor
    admin: Actor


def make_team(name: str = "Review Org") -> Team:
    """An organization with two reviewers, a viewer and an admin (each a real user)."""
    org = users.create_organization(name=name).id
    system = Actor.system("test", org)

    def person(role: str, who: str) -> Actor:
        row = users.create_user(system, email=f"{who}.{org}@review.example.com", display_name=who, role=role,
                                password=None)
        return Actor(user_id=row.id, email=row.email, role=role, organization_id=org)

    return Team(org, person("reviewer", "rita"), person("reviewer", "rob"), person("viewer", "vic"),
                person("admin", "ada"))


def add_photo(org: int, tags: list[tuple[str, float, str]], *, status: str = "needs_review", minute: int = 0,
              provider: str = "local", model: str = "local-analyzer-v1", prompt_version_id: int | None = None,
              key: str | None = None) -> int:
    """A processed photo with one result and its tags (label, confidence, recorded review state)."""
    created = T0 + timedelta(minutes=minute)
    digest = hashlib.sha256(f"{org}/{key or (minute, tags)}".encode()).hexdigest()
    with service_session() as s:
        photo = Photo(organization_id=org, sha256=digest, storage_uri=f"mem://{digest[:12]}",
                      filename=f"p{minute}.jpg", content_type="image/jpeg", byte_size=1000, width=640, height=480,
                      source="api", status=status, created_at=created, updated_at=created, completed_at=created)
        s.add(photo)
        s.flush()
        result = AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider=provider, model=model,
                                    prompt_version_id=prompt_version_id,
                                    status=status if status in ("needs_review", "failed") else "completed",
                                    tags=[{"label": label, "confidence": c} for label, c, _ in tags],
                                    tag_count=len(tags), created_at=created)
        s.add(result)
        s.flush()
        s.add_all([PhotoTag(organization_id=org, photo_id=photo.id, result_id=result.id, label=label, confidence=c,
                            source="ai", review_state=state, created_at=created) for label, c, state in tags])
        return photo.id


def approve_all(item: rq.ReviewItem) -> list[TagDecision]:
    return [TagDecision(tag_id=t.tag_id, action="approve") for t in item.tags]


def review_in_threads(reviewers: list[Actor], **claim_kw: Any) -> dict[int, list[int]]:
    """Each reviewer in a thread of its own, started together, claims and approves photos until the queue is
    empty; the photos each one reviewed, by user id (a thread's exception is raised)."""
    got: dict[int, list[int]] = {r.user_id or 0: [] for r in reviewers}
    barrier = threading.Barrier(len(reviewers))
    errors: list[BaseException] = []

    def work(actor: Actor) -> None:
        try:
            barrier.wait()
            while (item := rq.claim_next(actor, **claim_kw)) is not None:
                got[actor.user_id or 0].append(item.photo_id)
                submit_review(actor, token=item.token, decisions=approve_all(item))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return got


def claim(actor: Actor, **kw: Any) -> rq.ReviewItem:
    item = rq.claim_next(actor, now=kw.pop("now", NOW), **kw)
    assert item is not None
    return item


@pytest.fixture
def team(any_settings: Settings) -> Team:
    return make_team()


@pytest.fixture
def photos(team: Team) -> dict[str, int]:
    """d: oldest, lowest band tag; a: band tag 0.5; b: completed, accepted at 0.75 under older rules (in today's
    band); c: everything accepted (random order only); pending, failed and reviewed ones never wait."""
    o = team.org
    ids = {
        "d": add_photo(o, [("dog", 0.45, "needs_review"), ("animal", 0.9, "accepted")], minute=0),
        "a": add_photo(o, [("cat", 0.5, "needs_review"), ("sofa", 0.2, "rejected")], minute=1),
        "b": add_photo(o, [("tree", 0.75, "accepted")], status="completed", minute=2),
        "c": add_photo(o, [("sky", 0.95, "accepted")], status="completed", minute=3),
        "pending": add_photo(o, [("car", 0.6, "needs_review")], status="pending", minute=4),
        "failed": add_photo(o, [], status="failed", minute=5),
    }
    reviewed = add_photo(o, [("boat", 0.6, "needs_review")], status="completed", minute=6)
    with service_session() as s:
        for tag in s.scalars(select(PhotoTag).where(PhotoTag.photo_id == reviewed)):
            tag.review_state, tag.reviewed_at = "accepted", NOW
    ids["reviewed"] = reviewed
    return ids


def test_which_photos_wait_and_in_which_order(team: Team, photos: dict[str, int]) -> None:
    p = photos
    assert rq.preview(team.first, order="lowest_confidence", now=NOW) == [p["d"], p["a"], p["b"]]
    assert rq.preview(team.first, order="oldest", now=NOW) == [p["d"], p["a"], p["b"]]
    assert sorted(rq.preview(team.first, order="random", now=NOW)) == sorted([p["d"], p["a"], p["b"], p["c"]])
    assert rq.queue_size(team.viewer, order="lowest_confidence") == 3
    assert rq.queue_size(team.viewer, order="random") == 4
    # Lower the accept threshold: 0.75 is accepted now, so b leaves the queue; a 'cat' override to 0.4 takes
    # a's only band tag out too (a recorded needs_review tag still waits: its photo is in needs_review).
    with service_session() as s:
        s.add(PipelineConfig(organization_id=team.org, accept_threshold=0.7, reject_threshold=0.3))
    assert rq.preview(team.first, order="lowest_confidence", now=NOW) == [p["d"], p["a"]]
    with pytest.raises(ValidationFailed, match="no order 'sideways'"):
        rq.preview(team.first, order="sideways")


def test_filters_by_label_provider_model_prompt_version_and_date(team: Team) -> None:
    o = team.org
    with service_session() as s:
        prompt = Prompt(organization_id=o, name="tagger")
        s.add(prompt)
        s.flush()
        version = PromptVersion(organization_id=o, prompt_id=prompt.id, version=1, content="Tag it.")
        s.add(version)
        s.flush()
        v1 = version.id
    cat = add_photo(o, [("cat", 0.5, "needs_review")], minute=1)
    gem = add_photo(o, [("Dog", 0.6, "needs_review")], minute=2, provider="gemini", model="gemini-2.5-flash",
                    prompt_version_id=v1)
    late = add_photo(o, [("cat", 0.7, "needs_review")], minute=90)

    def ids(**f: Any) -> list[int]:
        return rq.preview(team.first, order="oldest", filters=rq.QueueFilters(**f), now=NOW)

    assert ids(label=" CAT ") == [cat, late]
    assert ids(provider="gemini") == ids(model="gemini-2.5-flash") == ids(prompt_version_id=v1) == [gem]
    assert ids(provider="local", label="cat") == [cat, late]
    assert ids(since=T0 + timedelta(minutes=2)) == [gem, late]
    assert ids(until=T0 + timedelta(minutes=2)) == [cat]
    assert ids(label="horse") == []


def test_random_order_is_a_deterministic_shuffle_per_seed(team: Team) -> None:
    ids = [add_photo(team.org, [("sky", 0.95, "accepted")], status="completed", minute=i) for i in range(60)]
    first = rq.preview(team.first, order="random", seed=7, limit=60, now=NOW)
    assert first == rq.preview(team.first, order="random", seed=7, limit=60, now=NOW)
    other = rq.preview(team.first, order="random", seed=8, limit=60, now=NOW)
    assert sorted(first) == sorted(other) == ids
    assert first != other and first != ids
    # The first ten of the shuffle come from all over the sixty, not from one end.
    assert max(ids.index(i) for i in first[:10]) - min(ids.index(i) for i in first[:10]) > 30


def test_claims_are_exclusive_resumed_released_and_expire(team: Team, photos: dict[str, int]) -> None:
    p = photos
    mine = claim(team.first)
    assert (mine.photo_id, mine.queue_order, mine.expires_at) == (p["d"], "lowest_confidence",
                                                                   NOW + timedelta(seconds=600))
    assert [(t.label, t.confidence, t.verdict) for t in mine.tags] == [("animal", 0.9, "accepted"),
                                                                        ("dog", 0.45, "needs_review")]
    robs = claim(team.second)
    assert robs.photo_id == p["a"]  # d is held
    # Asking again resumes the live claim, token and all (the lease is extended).
    again = claim(team.first, now=NOW + timedelta(seconds=60))
    assert (again.photo_id, again.token) == (p["d"], mine.token)
    assert again.expires_at == NOW + timedelta(seconds=660)
    # Skipping: the photo is left out of this session's next claims and released for everyone else.
    skipped = claim(team.first, skipped=[p["d"]], now=NOW + timedelta(seconds=61))
    assert skipped.photo_id == p["b"]
    assert rq.release(team.first, token=skipped.token)
    assert not rq.release(team.first, token=skipped.token)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(ReviewClaim)) == 1  # a reviewer holds one claim
    # Rob's claim on a expires; Rita takes it over with a new token and Rob's submit is refused.
    later = NOW + timedelta(seconds=700)
    taken = claim(team.first, order="oldest", skipped=[p["d"]], now=later)
    assert taken.photo_id == p["a"]
    assert taken.token != robs.token
    with pytest.raises(ConflictError, match="no longer yours"):
        submit_review(team.second, token=robs.token, decisions=approve_all(robs))
    assert rq.release_all(team.first) == 1
    assert rq.release_all(team.first) == 0


def test_submit_records_everything_in_one_transaction_and_once(team: Team, photos: dict[str, int]) -> None:
    item = claim(team.first)
    dog, animal = (next(t for t in item.tags if t.label == name) for name in ("dog", "animal"))
    decisions = [TagDecision(tag_id=dog.tag_id, action="rename", label=" Puppy "),
                 TagDecision(tag_id=animal.tag_id, action="reject", reason="too_generic", note="say which")]
    out = submit_review(team.first, token=item.token, decisions=decisions, added=["Grass", "grass"],
                        now=NOW + timedelta(seconds=30))
    assert out.recorded and (out.approved, out.rejected, out.renamed, out.added) == (0, 1, 1, 1)
    assert out.ground_truth == ("grass", "puppy")
    with service_session() as s:
        photo = s.get(Photo, item.photo_id)
        assert photo is not None and photo.status == "completed"
        tags = {t.label: (t.review_state, t.source, t.reviewed_by) for t in
                s.scalars(select(PhotoTag).where(PhotoTag.photo_id == item.photo_id))}
        me = team.first.user_id
        assert tags == {"puppy": ("corrected", "ai", me), "animal": ("rejected", "ai", me),
                        "grass": ("accepted", "human", me)}
        rows = s.execute(select(ReviewDecision.action, ReviewDecision.label_before, ReviewDecision.label_after,
                                ReviewDecision.reason, ReviewDecision.confidence, ReviewDecision.ai_verdict,
                                ReviewDecision.ai_provider, ReviewDecision.note)
                         .order_by(ReviewDecision.id)).all()
        assert [tuple(r) for r in rows] == [
            ("reject", "animal", None, "too_generic", 0.9, "accepted", "local", "say which"),
            ("rename", "dog", "puppy", None, 0.45, "needs_review", "local", None),
            ("add", None, "grass", None, None, None, None, None)]
        review = s.execute(select(Review)).scalar_one()
        assert (review.queue_order, review.claimed_at, review.reviewer_id) == ("lowest_confidence", NOW, me)
        assert s.scalar(select(func.count()).select_from(ReviewClaim)) == 0
        truth = s.execute(select(GroundTruth.label, GroundTruth.source, GroundTruth.review_id)).all()
        assert sorted(truth) == [("grass", "review", review.id), ("puppy", "review", review.id)]
    entry = list_entries(team.admin, action="review.submit")[0]
    assert entry.entity_id == str(item.photo_id) and entry.actor == team.first.email
    assert entry.summary == f"Reviewed photo #{item.photo_id}: 0 approved, 1 rejected, 1 renamed, 1 added"
    assert entry.before == {"status": "needs_review", "tags": {"animal": "accepted", "dog": "needs_review"}}
    # The same submit again (a double click, a retried request) records nothing and says what was recorded.
    again = submit_review(team.first, token=item.token, decisions=decisions, added=["grass"])
    assert again == type(out)(**{**out.__dict__, "recorded": False})
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 3
        assert s.scalar(select(func.count()).select_from(Review)) == 1
    assert len(list_entries(team.admin, action="review.submit")) == 1
    assert item.photo_id not in rq.preview(team.first, order="random", now=NOW)


@pytest.mark.parametrize(("decide", "added", "message"), [
    (lambda tags: [TagDecision(tag_id=tags[0].tag_id, action="approve")], (), "still undecided"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="reject") for t in tags], (), "needs a reason"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="reject", reason="ugly") for t in tags], (), "needs a reason"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="approve", reason="wrong") for t in tags], (), "Only a rej"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="rename", label=t.label.upper()) for t in tags], (),
     "changes nothing"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="rename", label=" ") for t in tags], (), "label is empty"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="merge") for t in tags], (), "not a decision"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="approve") for t in tags] * 2, (), "two decisions"),
    (lambda tags: [TagDecision(tag_id=-1, action="approve")], (), "not awaiting"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="approve") for t in tags], ("DOG",), "already has dog"),
    (lambda tags: [TagDecision(tag_id=t.tag_id, action="approve") for t in tags], ("x" * 201,), "longer than 200"),
])
def test_a_refused_submit_saves_nothing_and_keeps_the_claim(team: Team, photos: dict[str, int], decide: Any,
                                                             added: tuple[str, ...], message: str) -> None:
    item = claim(team.first)
    with pytest.raises(ValidationFailed, match=message):
        submit_review(team.first, token=item.token, decisions=decide(list(item.tags)), added=added)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 0
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0
        assert set(s.scalars(select(PhotoTag.review_state).where(PhotoTag.photo_id == item.photo_id))) == {
            "needs_review", "accepted"}
    assert claim(team.first).token == item.token
    assert submit_review(team.first, token=item.token, decisions=approve_all(item)).recorded


def test_who_may_review(team: Team, photos: dict[str, int]) -> None:
    with pytest.raises(PermissionDenied, match=r"review\.tags"):
        rq.claim_next(team.viewer, now=NOW)
    assert rq.preview(team.viewer, now=NOW)  # viewers see the queue
    with pytest.raises(ValidationFailed, match="made by people"):
        rq.claim_next(Actor.system("cli", team.org), now=NOW)
    item = claim(team.admin)
    with pytest.raises(PermissionDenied):
        submit_review(team.viewer, token=item.token, decisions=approve_all(item))
    # Another reviewer who learnt the token cannot submit on the holder's claim.
    with pytest.raises(ConflictError):
        submit_review(team.first, token=item.token, decisions=approve_all(item))
    other = make_team("Other Org")
    assert rq.preview(other.first, order="random", now=NOW) == []
    assert rq.claim_next(other.first, now=NOW) is None
    with pytest.raises(ConflictError):
        submit_review(other.first, token=item.token, decisions=approve_all(item))


def test_reviewers_in_threads_never_share_a_photo(team: Team) -> None:
    ids = [add_photo(team.org, [("cat", 0.4 + i / 100, "needs_review")], minute=i) for i in range(24)]
    got = review_in_threads([team.first, team.second, team.admin])
    everyone = [pid for mine in got.values() for pid in mine]
    assert sorted(everyone) == ids, Counter(everyone).most_common(3)
    with service_session() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == len(ids)


@pytest.mark.parametrize("order", ["lowest_confidence", "oldest", "random"])
def test_claims_follow_the_order_the_preview_shows(team: Team, order: str) -> None:
    """The index-driven next photo (queue_next) hands out the queue in preview's order (random: each photo once),
    with photos in the band only by today's thresholds, label overrides, ties and a recorded needs_review tag."""
    o = team.org
    with service_session() as s:
        s.add(PipelineConfig(organization_id=o, accept_threshold=0.8, reject_threshold=0.4,
                             label_overrides={"cat": {"accept": 0.95, "reject": 0.3}}))
    rows = [
        ([("dog", 0.45, "needs_review")], "needs_review", 5),
        ([("tree", 0.75, "accepted")], "completed", 1),  # accepted under older rules: in today's band
        ([("cat", 0.9, "accepted")], "completed", 3),  # the override's band reaches 0.9
        ([("sky", 0.85, "accepted"), ("cloud", 0.45, "rejected")], "completed", 2),  # 0.45 is in the band now
        ([("car", 0.45, "needs_review")], "needs_review", 0),  # ties with the first on confidence, older
        ([("bus", 0.99, "accepted")], "completed", 4),  # random order only
        ([("van", 0.2, "needs_review")], "needs_review", 6),  # recorded needs_review below every threshold
    ]
    for tags, status, minute in rows:
        add_photo(o, tags, status=status, minute=minute)
    expected = rq.preview(team.first, order=order, seed=3, limit=50, now=NOW)
    got = []
    while (item := rq.claim_next(team.first, order=order, seed=3, skipped=got, now=NOW)) is not None:
        got.append(item.photo_id)
    if order == "random":
        assert sorted(got) == sorted(expected) and len(got) == 7
    else:
        assert got == expected and len(got) == 6
