"""Provider / prompt-version disagreement on SQLite and PostgreSQL: Jaccard known answers, the lowest pair of a
photo's sources, the incremental refresh (a new result changes the score; chunks; a result counted once it
settles), organization isolation, the threshold setting (validated, version-checked, audited), the queue's
disagreement order (lowest Jaccard first, ties by id, filters, resume, preview, size, reviewed photos leave)
and the review screen's reads (the pair, the report; the random order's band count and sampled population)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from unit_helpers import load_unit_module

from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, PhotoDisagreement, PhotoTag
from aiconsole.platform.errors import ConflictError, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import disagreement, disagreement_reads, disagreement_settings
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import submit_review
from aiconsole.quality.disagreement import Source, jaccard, lowest_pair
from aiconsole.quality.queue_sql import QueueFilters

h = load_unit_module("test_review_queue")
T0, NOW = h.T0, h.NOW
GEMINI = ("gemini", "gemini-2.5-flash")


def add_result(org: int, photo_id: int, labels: list[str], *, provider: str = "gemini",
               model: str = "gemini-2.5-flash", prompt_version_id: int | None = None,
               created: datetime | None = None, status: str = "completed") -> int:
    """Another result for a processed photo, with its AI tags (accepted, so the band is untouched)."""
    at = created or T0 + timedelta(hours=1)
    with service_session() as s:
        result = AiProcessingResult(organization_id=org, photo_id=photo_id, ai_provider=provider, model=model,
                                    prompt_version_id=prompt_version_id, status=status,
                                    tags=[{"label": label, "confidence": 0.9} for label in labels],
                                    tag_count=len(labels), created_at=at)
        s.add(result)
        s.flush()
        s.add_all([PhotoTag(organization_id=org, photo_id=photo_id, result_id=result.id, label=label,
                            confidence=0.9, source="ai", review_state="accepted", created_at=at) for label in labels])
        return int(result.id)


def pair_photo(org: int, first: list[str], second: list[str], *, minute: int, **kw: Any) -> int:
    """A photo the local model tagged `first` (one tag in the band) and Gemini tagged `second`."""
    photo = h.add_photo(org, [(label, 0.5 if i == 0 else 0.95, "needs_review" if i == 0 else "accepted")
                              for i, label in enumerate(first)], minute=minute)
    add_result(org, photo, second, **kw)
    return photo


def fact(photo_id: int) -> PhotoDisagreement | None:
    with service_session() as s:
        row = s.get(PhotoDisagreement, photo_id)
        if row is not None:
            s.expunge(row)
        return row


def src(result_id: int, labels: set[str], provider: str = "local", version: int | None = None) -> Source:
    return Source(result_id=result_id, provider=provider, model="m", prompt_version_id=version,
                  labels=frozenset(labels))


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Disagreement Org")


def test_jaccard_known_answers() -> None:
    assert jaccard(set(), set()) == 1.0  # two sources that both saw nothing agree
    assert jaccard({"cat", "sofa"}, {"sofa", "cat"}) == 1.0
    assert jaccard({"cat"}, {"dog"}) == 0.0
    assert jaccard({"cat"}, set()) == 0.0
    assert jaccard({"cat", "sofa", "indoor"}, {"sofa", "indoor", "lamp"}) == pytest.approx(2 / 4)
    assert jaccard({"a", "b", "c", "d"}, {"a"}) == pytest.approx(1 / 4)
    assert disagreement.labels_of([{"label": " Cat "}, {"label": "cat"}, {"label": ""}, {"x": 1}]) == {"cat"}


def test_lowest_pair_of_sources() -> None:
    a, b, c = src(1, {"cat", "sofa"}), src(2, {"cat"}, "gemini"), src(3, {"dog"}, "google-vision")
    pair = lowest_pair([c, a, b])
    assert pair is not None and pair.sources == 3
    assert (pair.jaccard, pair.a.result_id, pair.b.result_id) == (0.0, 1, 3)  # ties: the older results first
    assert lowest_pair([a]) is None
    # One source twice (reprocessed with the same provider, model, prompt): its newest result stands for it.
    assert lowest_pair([a, src(4, {"dog"})]) is None
    newer = lowest_pair([a, src(4, {"dog"}), b])
    assert newer is not None and (newer.a.result_id, newer.b.result_id, newer.jaccard) == (2, 4, 0.0)
    # Another prompt version of the same provider and model is another source.
    versioned = lowest_pair([src(5, {"cat"}, version=1), src(6, {"cat", "pet"}, version=2)])
    assert versioned is not None and versioned.jaccard == pytest.approx(0.5)


def test_refresh_counts_new_results_and_a_new_result_changes_the_score(team: Any) -> None:
    o = team.org
    photo = pair_photo(o, ["cat", "sofa", "indoor"], ["cat", "sofa", "lamp"], minute=1)
    single = h.add_photo(o, [("dog", 0.5, "needs_review")], minute=2)
    report = disagreement.refresh(team.viewer, now=NOW)
    assert report.done and report.results == 3 and report.photos == 2
    row = fact(photo)
    assert row is not None and row.jaccard == pytest.approx(2 / 4) and row.sources == 2
    assert fact(single) is None
    assert disagreement.refresh(team.viewer, now=NOW).results == 0  # nothing new: nothing read
    # A third source (a new prompt version) that shares nothing: the photo's lowest pair is now 0.
    third = add_result(o, photo, ["car"], prompt_version_id=None, provider="google-vision",
                       model="builtin/stable", created=T0 + timedelta(hours=2))
    assert disagreement.refresh(team.viewer, now=NOW).photos == 1
    row = fact(photo)
    assert row is not None and row.jaccard == 0.0 and row.sources == 3 and third in (row.result_a_id, row.result_b_id)
    # The single-source photo gets a second source that agrees: Jaccard 1, compared but no disagreement.
    add_result(o, single, ["dog"], created=T0 + timedelta(hours=3))
    disagreement.refresh(team.viewer, now=NOW)
    row = fact(single)
    assert row is not None and row.jaccard == 1.0


def test_a_result_is_counted_once_it_settles_and_chunks_get_there(team: Any) -> None:
    o = team.org
    photos = [pair_photo(o, ["cat"], ["dog"], minute=i) for i in range(5)]
    fresh = h.add_photo(o, [("tree", 0.5, "needs_review")], minute=9)
    steps = 0
    while not (step := disagreement.refresh(team.viewer, chunk=3, now=NOW)).done:
        steps += 1
        assert step.results == 3
    assert steps >= 3 and all(fact(p) is not None for p in photos)
    add_result(o, fresh, ["bush"], created=NOW - timedelta(seconds=5))  # its transaction may still commit
    disagreement.refresh(team.viewer, now=NOW)
    assert fact(fresh) is None
    later = NOW + timedelta(seconds=disagreement.SETTLE_S)
    disagreement.refresh(team.viewer, now=later)
    row = fact(fresh)
    assert row is not None and row.jaccard == 0.0
    # A failed result is no source.
    failed = h.add_photo(o, [("boat", 0.5, "needs_review")], minute=10)
    add_result(o, failed, [], status="failed", created=T0 + timedelta(hours=4))
    disagreement.refresh(team.viewer, now=later)
    assert fact(failed) is None


def test_organizations_are_isolated(team: Any) -> None:
    other = h.make_team("Other Disagreement Org")
    mine = pair_photo(team.org, ["cat"], ["dog"], minute=1)
    theirs = pair_photo(other.org, ["cat"], ["dog"], minute=1, created=T0 + timedelta(hours=1))
    disagreement.refresh(team.viewer, now=NOW)
    assert fact(mine) is not None and fact(theirs) is None
    assert [r.pair.photo_id for r in disagreement_reads.disagreement_report(team.viewer).rows] == [mine]
    item = h.claim(other.first, order="disagreement")  # their own refresh, their own photo
    assert item.photo_id == theirs
    assert disagreement_reads.photo_pair(team.viewer, photo_id=theirs) is None
    assert h.claim(team.first, order="disagreement").photo_id == mine


def test_disagreement_order_lowest_first_with_filters_resume_preview_size(team: Any) -> None:
    o = team.org
    half = pair_photo(o, ["cat", "sofa"], ["cat", "lamp", "sofa", "rug"], minute=1)  # 2/4: not below 0.5
    quarter = pair_photo(o, ["cat", "dog"], ["cat", "lamp", "rug", "bed"], minute=2)  # 1/5
    zero_a = pair_photo(o, ["tree"], ["car"], minute=4, provider="google-vision", model="builtin/stable")
    zero_b = pair_photo(o, ["cat"], ["dog"], minute=3)  # as low as zero_a: the higher id comes second
    h.add_photo(o, [("boat", 0.4, "needs_review")], minute=5)  # one source: never in this order
    assert rq.preview(team.viewer, order="disagreement", now=NOW) == [zero_a, zero_b, quarter]
    assert rq.queue_size(team.viewer, order="disagreement") == 3
    assert rq.queue_left(team.viewer, order="disagreement").photos == 3
    vision = QueueFilters(provider="google-vision")
    assert rq.preview(team.viewer, order="disagreement", filters=vision, now=NOW) == [zero_a]
    assert rq.queue_size(team.viewer, order="disagreement", filters=vision) == 1
    first = h.claim(team.first, order="disagreement")
    assert first.photo_id == zero_a and first.queue_order == "disagreement"
    assert h.claim(team.first, order="disagreement").token == first.token  # resumed
    assert h.claim(team.second, order="disagreement").photo_id == zero_b  # never the same photo
    submit_review(team.first, token=first.token, decisions=h.approve_all(first), now=NOW)
    # Reviewed: gone; held by rob: left out for everyone else.
    assert rq.preview(team.viewer, order="disagreement", now=NOW) == [quarter]
    assert h.claim(team.first, order="disagreement").photo_id == quarter
    assert rq.preview(team.second, order="disagreement", now=NOW) == [zero_b]
    # A higher threshold takes the photo at exactly 0.5 in (below 0.6).
    disagreement_settings.set_disagreement_threshold(team.admin, threshold=0.6, expected_version=0)
    assert rq.preview(team.second, order="disagreement", now=NOW) == [zero_b, half]


def test_threshold_setting_is_validated_version_checked_and_audited(team: Any) -> None:
    view = disagreement_settings.disagreement_threshold(team.viewer)
    assert (view.threshold, view.version) == (0.5, 0)
    bad_values: tuple[Any, ...] = (1.5, -0.1, float("nan"), True, "0.4")
    for bad in bad_values:
        with pytest.raises(ValidationFailed):
            disagreement_settings.set_disagreement_threshold(team.admin, threshold=bad, expected_version=0)
    with pytest.raises(PermissionDenied):
        disagreement_settings.set_disagreement_threshold(team.first, threshold=0.3, expected_version=0)
    assert disagreement_settings.set_disagreement_threshold(team.admin, threshold=0.3, expected_version=0) == 1
    with pytest.raises(ConflictError):
        disagreement_settings.set_disagreement_threshold(team.admin, threshold=0.4, expected_version=0)
    view = disagreement_settings.disagreement_threshold(team.viewer)
    assert (view.threshold, view.version, view.updated_by) == (0.3, 1, team.admin.email)
    entry = list_entries(team.admin, action="quality.settings")[0]
    assert entry.before == {"disagreement_threshold": 0.5, "version": 0}
    assert entry.after == {"disagreement_threshold": 0.3, "version": 1}


def test_review_screen_reads_the_pair_and_the_report(team: Any) -> None:
    o = team.org
    photo = pair_photo(o, ["cat", "sofa"], ["cat", "lamp", "rug"], minute=1)
    agree = pair_photo(o, ["cat"], ["cat"], minute=2)
    assert disagreement_reads.photo_pair(team.viewer, photo_id=photo) is None  # not counted yet: no refresh here
    disagreement.refresh(team.viewer)  # as the claim before it does
    pair = disagreement_reads.photo_pair(team.viewer, photo_id=photo)
    assert pair is not None and pair.jaccard == pytest.approx(1 / 4)
    assert (pair.a.provider, pair.a.labels) == ("Local analyzer", ("cat", "sofa"))  # the older result first
    assert (pair.b.provider, pair.b.model, pair.b.labels) == ("Gemini", GEMINI[1], ("cat", "lamp", "rug"))
    report = disagreement_reads.disagreement_report(team.viewer)
    assert (report.threshold, report.compared, report.below) == (0.5, 2, 1)
    assert [r.pair.photo_id for r in report.rows] == [photo] and report.rows[0].filename == "p1.jpg"
    assert disagreement_reads.photo_pair(team.viewer, photo_id=agree) is not None
    with pytest.raises(ValidationFailed):
        disagreement_reads.disagreement_report(team.viewer, limit=0)


def test_random_order_screen_counts_the_band_and_the_sampled_photos(team: Any, photos: dict[str, int]) -> None:
    left = rq.queue_left(team.viewer, order="random")
    assert left.photos == rq.queue_size(team.viewer, order="lowest_confidence")
    assert left.sampled_exact and left.sampled_from == rq.queue_size(team.viewer, order="random")
    oldest = rq.queue_left(team.viewer, order="oldest")
    assert (oldest.photos, oldest.sampled_from) == (rq.queue_size(team.viewer, order="oldest"), None)
    # Counted once for every reviewer: a photo arriving now shows at the next count (max_age_s=0: now).
    h.add_photo(team.org, [("owl", 0.5, "needs_review")], minute=30)
    assert rq.queue_left(team.first, order="oldest") == oldest
    assert rq.queue_left(team.first, order="oldest", max_age_s=0).photos == oldest.photos + 1


def test_random_population_estimate_over_a_wide_id_range(team: Any) -> None:
    o = team.org
    ids = [h.add_photo(o, [("cat", 0.95, "accepted")], status="completed", minute=i, key=f"w{i}")
           for i in range(450)]
    with service_session() as s:  # a quarter reviewed: out of the sample
        for tag in s.scalars(select(PhotoTag).where(PhotoTag.photo_id.in_(ids[::4]))):
            tag.reviewed_at = NOW
    left = rq.queue_left(team.viewer, order="random")
    exact = rq.queue_size(team.viewer, order="random")
    assert exact == 450 - len(ids[::4])
    assert not left.sampled_exact and left.sampled_from is not None
    assert abs(left.sampled_from - exact) <= 0.08 * 450  # 400 of 450 ids probed


@pytest.fixture
def photos(team: Any) -> dict[str, int]:
    o = team.org
    return {"a": h.add_photo(o, [("cat", 0.5, "needs_review")], minute=0),
            "c": h.add_photo(o, [("sky", 0.95, "accepted")], status="completed", minute=1)}
