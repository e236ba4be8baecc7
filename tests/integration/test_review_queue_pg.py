"""The review queue under real PostgreSQL concurrency: reviewers in threads and in processes never receive the
same photo (each reviewed exactly once), a claim skips a photo another transaction holds without waiting, two
submits of one claim at the same moment record it once, and the queue works as the console's role, which
row-level security binds to its organization."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rls_roles import TwoRoles, two_role_database
from sqlalchemy import create_engine, func, select, text
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import dispose_engines, service_session
from aiconsole.platform.db.models import Review, ReviewDecision
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import submit_review

pytestmark = pytest.mark.postgres

h = load_unit_module("test_review_queue")
ROOT = Path(__file__).resolve().parents[2]

REVIEWER = """
import json, sys, time
from aiconsole.platform.actor import Actor
from aiconsole.quality import review_queue as rq
from aiconsole.quality.decisions import TagDecision, submit_review
uid, email, org, start = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
actor = Actor(user_id=uid, email=email, role="reviewer", organization_id=org)
time.sleep(max(0.0, start - time.time()))
got = []
while (item := rq.claim_next(actor)) is not None:
    got.append(item.photo_id)
    submit_review(actor, token=item.token,
                  decisions=[TagDecision(tag_id=t.tag_id, action="approve") for t in item.tags])
print(json.dumps(got))
"""


def _reviewers(team: Any, extra: int = 0) -> list[Actor]:
    system = Actor.system("test", team.org)
    more = []
    for i in range(extra):
        row = users.create_user(system, email=f"extra{i}.{team.org}@review.example.com", display_name=f"x{i}",
                                role="reviewer", password=None)
        more.append(Actor(user_id=row.id, email=row.email, role="reviewer", organization_id=team.org))
    return [team.first, team.second, team.admin, *more]


def _band_photos(org: int, n: int) -> list[int]:
    return [h.add_photo(org, [("cat", 0.4 + (i % 40) / 100, "needs_review"), ("pet", 0.9, "accepted")], minute=i)
            for i in range(n)]


def _reviews_per_photo() -> Counter[int]:
    with service_session() as s:
        return Counter(dict(s.execute(select(Review.photo_id, func.count()).group_by(Review.photo_id)).all()))


def test_reviewers_in_threads_never_share_a_photo(pg_settings: Settings) -> None:
    team = h.make_team()
    ids = _band_photos(team.org, 60)
    reviewers = _reviewers(team, extra=1)
    got = h.review_in_threads(reviewers)
    everyone = [pid for mine in got.values() for pid in mine]
    print({uid: len(mine) for uid, mine in got.items()})
    assert sorted(everyone) == ids, Counter(everyone).most_common(3)
    assert sum(1 for mine in got.values() if mine) >= 2, "the reviewers did not overlap at all"
    assert set(_reviews_per_photo().values()) == {1}


def test_reviewers_in_processes_never_share_a_photo(pg_settings: Settings) -> None:
    team = h.make_team()
    ids = _band_photos(team.org, 90)
    reviewers = _reviewers(team)
    env = dict(os.environ)
    start = time.time() + 3.0  # every process imports first, then all begin together
    procs = [subprocess.Popen([sys.executable, "-c", REVIEWER, str(r.user_id), r.email, str(team.org), str(start)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in reviewers]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [err[-2000:] for _, err in outputs]
    got = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    print([len(g) for g in got])
    everyone = [pid for g in got for pid in g]
    assert sorted(everyone) == ids, Counter(everyone).most_common(3)
    assert sum(1 for g in got if g) >= 2, "the processes did not overlap at all"
    assert set(_reviews_per_photo().values()) == {1}


def test_a_claim_skips_a_photo_another_transaction_holds_without_waiting(pg_settings: Settings,
                                                                         pg_db_url: str) -> None:
    team = h.make_team()
    ids = _band_photos(team.org, 3)  # claimed lowest confidence first: ids[0], ids[1], ids[2]
    holder = create_engine(pg_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT id FROM photos WHERE id = :id FOR UPDATE"), {"id": ids[0]})
            started = time.monotonic()
            item = rq.claim_next(team.first)
            assert time.monotonic() - started < 2.0
            assert item is not None and item.photo_id == ids[1]
            conn.rollback()
    finally:
        holder.dispose()
    assert h.claim(team.second, now=None).photo_id == ids[0]


def test_two_submits_of_one_claim_at_once_record_it_once(pg_settings: Settings) -> None:
    team = h.make_team()
    _band_photos(team.org, 1)
    for round_ in range(5):
        item = rq.claim_next(team.first)
        assert item is not None
        barrier = threading.Barrier(2)
        outcomes: list[Any] = []

        def submit(item: Any = item, barrier: threading.Barrier = barrier, outcomes: list[Any] = outcomes) -> None:
            barrier.wait()
            outcomes.append(submit_review(team.first, token=item.token, decisions=h.approve_all(item)))

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(o.recorded for o in outcomes) == [False, True]
        assert outcomes[0].review_id == outcomes[1].review_id
        with service_session() as s:
            assert s.scalar(select(func.count()).select_from(ReviewDecision)
                            .where(ReviewDecision.review_id == outcomes[0].review_id)) == 2
        # The next round reviews a fresh photo.
        h.add_photo(team.org, [("cat", 0.5, "needs_review"), ("pet", 0.9, "accepted")], key=f"round{round_}")
    assert set(_reviews_per_photo().values()) == {1}


@pytest.fixture
def console_role(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TwoRoles]:
    """The process configured as the console is: user sessions as the console's (RLS-bound) role."""
    with two_role_database("fresh") as db:
        for key in list(os.environ):
            if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
                monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AICONSOLE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("AICONSOLE_DATABASE_URL", db.console_url)
        monkeypatch.setenv("AICONSOLE_SERVICE_DATABASE_URL", db.service_url)
        get_settings.cache_clear()
        dispose_engines()
        try:
            yield db
        finally:
            dispose_engines()
            get_settings.cache_clear()


def test_the_queue_works_as_the_console_role_and_stays_in_its_organization(console_role: TwoRoles) -> None:
    a, b = h.make_team("Org A"), h.make_team("Org B")
    mine, theirs = _band_photos(a.org, 2), _band_photos(b.org, 2)
    assert sorted(rq.preview(a.first, order="random")) == mine
    item = rq.claim_next(a.first)
    assert item is not None and item.photo_id in mine
    other = rq.claim_next(b.first)
    assert other is not None and other.photo_id in theirs
    with pytest.raises(ConflictError):  # org B's claim token means nothing in org A's session
        submit_review(a.first, token=other.token, decisions=h.approve_all(other))
    out = submit_review(a.first, token=item.token, decisions=h.approve_all(item))
    assert out.recorded and out.ground_truth == ("cat", "pet")
    with console_role.console.connect() as conn:  # no organization set: the new tables show nothing
        for table in ("review_claims", "reviews", "review_decisions", "ground_truth"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
    with console_role.service.connect() as conn:
        counts = dict(conn.execute(text("SELECT organization_id, count(*) FROM reviews GROUP BY 1")).all())
    assert counts == {a.org: 1}
