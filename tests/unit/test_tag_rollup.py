"""The AI tag rollup (migration 0017) on SQLite and PostgreSQL: after random inserts (single and multi-row),
renames through reviews and batches, removed tags, human tags and cascaded photo deletion, quality_tag_daily
equals a direct count of the AI tags and quality_ai_tags holds each with the label the AI gave; calibration's review
load read from it (whole UTC days) and the tags (partial days) equals a count over every tag of the window,
with thresholds on and off the k/100 grid and an organization whose days start at :30 UTC."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from unit_helpers import load_unit_module

from aiconsole.pipeline.rules import RuleSet, load_rules
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    Organization,
    Photo,
    PhotoTag,
    PipelineConfig,
    QualityAiTag,
    QualityTagDaily,
)
from aiconsole.platform.settings import Settings
from aiconsole.quality import batches, stats, tag_rollup
from aiconsole.quality import calibration as qc
from aiconsole.quality.batch_select import BatchFilter
from aiconsole.quality.decisions import TagDecision, submit_review
from aiconsole.quality.review_sql import read_session, scope

rqh = load_unit_module("test_review_queue")
LABELS = ("cat", "dog", "tree", "sky")
# Edges of the grid, values just beside them, the ends, and a value off the grid.
EDGES = (0.0, 0.01, 0.29, 0.5, 0.58, 0.655, 0.83, 0.8299999999999, 0.99, 1.0)
NOW = rqh.T0 + timedelta(days=5, hours=7, minutes=13)


def _confidence(rng: random.Random) -> float:
    return rng.choice(EDGES) if rng.random() < 0.4 else round(rng.random(), rng.choice((2, 3, 6)))


def _ai_tags(s: Any, org: int) -> list[Any]:
    t = PhotoTag.__table__.c
    return s.execute(select(t.id, t.label, t.confidence, t.created_at, t.source)
                     .where(t.organization_id == org)).all()


def _facts(org: int) -> dict[int, tuple[str, float, datetime]]:
    f = QualityAiTag.__table__.c
    with service_session() as s:
        return {r.tag_id: (r.ai_label, r.confidence, r.created_at) for r in s.execute(
            select(f.tag_id, f.ai_label, f.confidence, f.created_at).where(f.organization_id == org))}


def _direct(org: int, given: dict[int, str]) -> Counter[tuple[date, str, int]]:
    with service_session() as s:
        return Counter((r.created_at.astimezone(UTC).date(), given[r.id], tag_rollup.grid_bin(r.confidence))
                       for r in _ai_tags(s, org) if r.source == "ai")


def _rollup(org: int) -> Counter[tuple[date, str, int]]:
    q = QualityTagDaily.__table__.c
    with service_session() as s:
        return Counter({(r.day, r.ai_label, r.conf_bin): r.n for r in s.execute(
            select(q.day, q.ai_label, q.conf_bin, q.n).where(q.organization_id == org, q.n != 0))})


@pytest.fixture
def world(any_settings: Settings) -> Any:
    """An organization with random AI tags over six days (UTC+5:30), some renamed, removed or deleted."""
    rng = random.Random(17)
    team = rqh.make_team("Rollup Org")
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == team.org).values(timezone="Asia/Kolkata"))
        s.add(PipelineConfig(organization_id=team.org, accept_threshold=0.83, reject_threshold=0.29,
                             label_overrides={"dog": {"accept": 0.655, "reject": 0.5}}))
    given: dict[int, str] = {}
    photos = []
    for i in range(60):
        tags = [(rng.choice(LABELS), _confidence(rng), rng.choice(("needs_review", "accepted")))
                for _ in range(rng.randint(1, 4))]
        photos.append(rqh.add_photo(team.org, tags, minute=rng.randint(0, 5 * 24 * 60 + 7 * 60), key=f"p{i}"))
    # Several tags in one statement (multi-row INSERT), one of them human.
    with service_session() as s:
        s.execute(insert(PhotoTag), [dict(organization_id=team.org, photo_id=photos[i], label=rng.choice(LABELS),
                                   confidence=_confidence(rng), source="human" if i == 3 else "ai",
                                   review_state="accepted", created_at=rqh.T0 + timedelta(hours=5 * i))
                              for i in range(20)])
        given.update({r.id: r.label for r in _ai_tags(s, team.org)})
    # Renames and a rejection through reviews, an added human tag.
    for _ in range(4):
        item = rq_claim(team)
        first, *rest = item.tags
        submit_review(team.first, token=item.token, added=["grass"], now=NOW,
                      decisions=[TagDecision(tag_id=first.tag_id, action="rename", label="kitten"),
                                 *[TagDecision(tag_id=x.tag_id, action="reject", reason="wrong") for x in rest]])
    with service_session() as s:  # the added human tags, as they were added
        given.update({r.id: r.label for r in _ai_tags(s, team.org) if r.id not in given})
    # A rename batch and a removal batch.
    batches.run_batch(team.admin, filters=BatchFilter(), template="rename",
                      params={"from_label": "tree", "to_label": "oak"}, now=NOW)
    batches.run_batch(team.admin, filters=BatchFilter(max_confidence=0.5), template="remove",
                      params={"label": "sky"}, now=NOW)
    # Photos deleted: their tags go by ON DELETE CASCADE.
    with service_session() as s:
        s.execute(delete(Photo).where(Photo.id.in_(photos[40:48])))
    return team, given


def rq_claim(team: Any) -> Any:
    return rqh.claim(team.first, now=NOW)


def test_the_rollup_equals_a_direct_count_and_keeps_the_ai_label(world: Any) -> None:
    team, given = world
    with service_session() as s:
        tags = [r for r in _ai_tags(s, team.org) if r.source == "ai"]
    assert _facts(team.org) == {r.id: (given[r.id], r.confidence, r.created_at) for r in tags}
    assert any(r.label != given[r.id] for r in tags)  # renamed ones keep the AI's label
    assert len(tags) < len(given)  # some were removed or deleted
    direct = _direct(team.org, given)
    assert sum(direct.values()) > 100 and _rollup(team.org) == direct


def test_a_changed_confidence_or_creation_moves_the_count(world: Any) -> None:
    team, given = world
    with service_session() as s:
        tag_id = s.scalars(select(PhotoTag.id).where(PhotoTag.organization_id == team.org,
                                                     PhotoTag.source == "ai").limit(1)).one()
        s.execute(update(PhotoTag).where(PhotoTag.id == tag_id).values(
            confidence=0.42, created_at=rqh.T0 - timedelta(days=3)))
        s.execute(update(PhotoTag).where(PhotoTag.organization_id == team.org, PhotoTag.source == "human")
                  .values(source="ai"))
    assert _rollup(team.org) == _direct(team.org, given)
    assert {i: label for i, (label, _, _) in _facts(team.org).items()} == {
        i: given[i] for i in _facts(team.org)}


def _review_load_by_hand(org: int, given: dict[int, str], rules: RuleSet, after: RuleSet, since: datetime,
                         until: datetime, labels: list[str]) -> dict[str, tuple[int, int, int]]:
    out = {}
    with service_session() as s:
        tags = [r for r in _ai_tags(s, org) if r.source == "ai" and since <= r.created_at < until]
    for label in labels:
        mine = [r.confidence for r in tags if given[r.id] == label]
        out[label] = (len(mine), sum(rules.verdict(label, c) == "needs_review" for c in mine),
                      sum(after.verdict(label, c) == "needs_review" for c in mine))
    return out


@pytest.mark.parametrize("days", [1, 2, 4, 30])
@pytest.mark.parametrize("threshold", [0.6, 0.655, 0.8299999999999, 0.99])
def test_review_load_equals_a_count_over_every_tag_of_the_window(world: Any, days: int, threshold: float) -> None:
    team, given = world
    interval = stats.wilson_interval(19, 20)
    assert interval is not None
    proposals = {label: stats.ThresholdProposal(target=0.95, threshold=threshold, precision=interval, support=20,
                                                review_share_now=None, review_share_after=None,
                                                review_load_change=None, below_reject=False)
                 for label in (*LABELS, "oak", "nothing")}
    with read_session(team.org) as s:
        sc = scope(s, organization_id=team.org, days=days, now=NOW)
        rules = load_rules(s, team.org)
        got = qc._review_load(s, sc, rules, proposals)
    overrides: dict[str, dict[str, float]] = {k: dict(v) for k, v in rules.label_overrides.items()}
    for name in proposals:
        overrides[name] = {"accept": max(threshold, rules.thresholds(name)[1]), "reject": rules.thresholds(name)[1]}
    after = RuleSet(rules.accept_threshold, rules.reject_threshold, overrides)
    expected = _review_load_by_hand(team.org, given, rules, after, sc.since, sc.now, list(proposals))
    assert tag_rollup.split(sc.since, sc.now).whole is not None or days == 1
    for name, (n, now_n, after_n) in expected.items():
        p = got[name]
        if not n:
            assert p.review_share_now is None and p.review_share_after is None, name
            continue
        assert (p.review_share_now, p.review_share_after) == (now_n / n, after_n / n), name
    assert sum(n for n, _, _ in expected.values()) > 0


def test_split_into_whole_utc_days_and_the_pieces_around_them() -> None:
    at = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)
    whole = tag_rollup.split(at, at + timedelta(days=2, hours=1))
    assert whole.whole == (date(2026, 3, 2), date(2026, 3, 3))
    assert whole.raw == ((at, datetime(2026, 3, 2, tzinfo=UTC)), (datetime(2026, 3, 3, tzinfo=UTC),
                                                                   at + timedelta(days=2, hours=1)))
    midnight = datetime(2026, 3, 1, tzinfo=UTC)
    assert tag_rollup.split(midnight, midnight + timedelta(days=1)) == tag_rollup.Split(
        (date(2026, 3, 1), date(2026, 3, 2)), ())
    assert tag_rollup.split(at, at + timedelta(hours=3)) == tag_rollup.Split(None, ((at, at + timedelta(hours=3)),))
    assert [tag_rollup.grid_bin(x) for x in (0.0, -1.0, 0.58, 0.5799999, 0.655, 0.99, 1.0, 2.0)] == [
        0, 0, 58, 57, 65, 99, 99, 99]
