"""The disagreement order under real PostgreSQL concurrency: reviewers in threads, each claiming in the
disagreement order (which refreshes the facts first, under SKIP LOCKED on the watermark) and submitting, never
receive the same photo; every disagreeing photo is reviewed exactly once, lowest Jaccard handed out first;
the photos whose sources agree are never handed out."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Review
from aiconsole.platform.settings import Settings

pytestmark = pytest.mark.postgres

h = load_unit_module("test_review_queue")
d = load_unit_module("test_disagreement")


def _reviewers(team: Any) -> list[Actor]:
    system = Actor.system("test", team.org)
    row = users.create_user(system, email=f"third.{team.org}@review.example.com", display_name="third",
                            role="reviewer", password=None)
    return [team.first, team.second, Actor(user_id=row.id, email=row.email, role="reviewer",
                                           organization_id=team.org)]


def test_reviewers_in_threads_never_share_a_photo_in_the_disagreement_order(pg_settings: Settings) -> None:
    team = h.make_team("Disagreement Threads")
    second = [["dog"], ["cat", "lamp", "rug", "bed"], ["cat", "pet", "dog"]]  # Jaccard 0, 1/5, 2/3 with cat, pet
    disagreeing: list[int] = []
    agreeing: list[int] = []
    for i in range(45):
        photo = d.pair_photo(team.org, ["cat", "pet"], second[i % 3], minute=i)
        (agreeing if i % 3 == 2 else disagreeing).append(photo)
    reviewers = _reviewers(team)
    got = h.review_in_threads(reviewers, order="disagreement")
    everyone = [pid for mine in got.values() for pid in mine]
    assert sorted(everyone) == sorted(disagreeing), Counter(everyone).most_common(3)
    assert sum(1 for mine in got.values() if mine) >= 2, "the reviewers did not overlap at all"
    with service_session() as s:
        per_photo = dict(s.execute(select(Review.photo_id, func.count()).where(Review.organization_id == team.org)
                                   .group_by(Review.photo_id)).all())
    assert set(per_photo.values()) == {1} and not set(per_photo) & set(agreeing)
    # Each reviewer was handed the Jaccard-0 photos before the 1/5 ones.
    zero = set(disagreeing[0::2])
    for mine in got.values():
        ranks = [0 if pid in zero else 1 for pid in mine]
        assert ranks == sorted(ranks), ranks
