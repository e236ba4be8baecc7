"""The debug view's search and timeline on SQLite and PostgreSQL, org-scoped."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pipeline_data import add_result, as_role, make_org
from sqlalchemy import select, update

from aiconsole.lab import photo_timeline as pt
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Organization, Photo
from aiconsole.platform.errors import NotFound
from aiconsole.platform.settings import Settings


def _photo(result_id: int) -> int:
    with service_session() as s:
        return int(s.scalar(select(AiProcessingResult.photo_id).where(AiProcessingResult.id == result_id)))


def test_timeline_rules_cost_and_search(any_settings: Settings) -> None:
    org, admin = make_org()
    rid = add_result(org, tags=[("cat", 0.9), ("blur", 0.5), ("noise", 0.1)], status="needs_review",
                     api_cost_micros=1234, worker_id="w-1", retry_count=1, total_processing_time_ms=321,
                     trace=[{"step": "call", "ms": 300}])
    photo = _photo(rid)
    viewer = as_role(admin, "viewer")
    t = pt.photo_timeline(viewer, photo_id=photo)
    assert t.photo.id == photo and t.photo.status == "needs_review"
    (a,) = t.attempts
    assert (a.worker_id, a.retry_count, a.total_ms) == ("w-1", 1, 321)
    assert a.trace == ({"step": "call", "ms": 300},)
    assert [(s.label, s.verdict, s.accept_at, s.reject_below) for s in a.tags] == [
        ("cat", "accepted", 0.8, 0.4), ("blur", "needs_review", 0.8, 0.4), ("noise", "rejected", 0.8, 0.4)]
    assert t.total_cost == a.cost and "0.0012" in a.cost
    assert [h.id for h in pt.search_photos(viewer, query=str(photo))] == [photo]
    assert photo in [h.id for h in pt.search_photos(viewer, query="cat")]
    assert photo in [h.id for h in pt.search_photos(viewer, query=t.photo.filename)]
    assert photo not in [h.id for h in pt.search_photos(viewer, query="", status="completed")]


def test_search_by_the_organizations_calendar_day(any_settings: Settings) -> None:
    org, admin = make_org()
    with service_session() as s:
        s.execute(update(Organization).where(Organization.id == org).values(timezone="Asia/Tokyo"))
    photo = _photo(add_result(org, tags=[("cat", 0.9)]))
    with service_session() as s:  # 20:00 UTC on 1 March is 05:00 on 2 March in Tokyo
        s.execute(update(Photo).where(Photo.id == photo).values(created_at=datetime(2026, 3, 1, 20, tzinfo=UTC)))
    viewer = as_role(admin, "viewer")
    assert [h.id for h in pt.search_photos(viewer, day=date(2026, 3, 2))] == [photo]
    assert pt.search_photos(viewer, day=date(2026, 3, 1)) == []


def test_another_orgs_photo_is_not_found(any_settings: Settings) -> None:
    org, _admin = make_org()
    _other, stranger = make_org()
    photo = _photo(add_result(org, tags=[("cat", 0.9)]))
    with pytest.raises(NotFound):
        pt.photo_timeline(stranger, photo_id=photo)
    assert pt.search_photos(stranger, query=str(photo)) == []
