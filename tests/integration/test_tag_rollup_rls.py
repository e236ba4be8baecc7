"""The AI tag rollup's triggers as the console's role on PostgreSQL (row-level security on, no ownership):
a tag the console writes is kept in quality_ai_tags and counted in its organization's quality_tag_daily, a
photo it deletes takes its tags' rows and counts with it (ON DELETE CASCADE through the statement trigger),
and it sees only its organization's rows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from rls_roles import TwoRoles, two_role_database
from sqlalchemy import delete, insert, select

from aiconsole.platform.db.engine import org_session, service_session
from aiconsole.platform.db.models import Organization, Photo, PhotoTag, QualityAiTag, QualityTagDaily

pytestmark = pytest.mark.postgres
AT = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)


def _photo(s: object, org: int, key: str) -> int:
    digest = hashlib.sha256(key.encode()).hexdigest()
    photo = Photo(organization_id=org, sha256=digest, storage_uri=f"file:///{key}.jpg", filename=f"{key}.jpg",
                  content_type="image/jpeg", byte_size=1234, width=64, height=48)
    s.add(photo)  # type: ignore[attr-defined]
    s.flush()  # type: ignore[attr-defined]
    return photo.id


@pytest.fixture(scope="module")
def db() -> Iterator[tuple[TwoRoles, int, int, int, int]]:
    with two_role_database() as roles:
        with service_session(engine=roles.service) as s:
            orgs = [Organization(name=f"Org {x}", slug=x) for x in ("alpha", "beta")]
            s.add_all(orgs)
            s.flush()
            a, b = orgs[0].id, orgs[1].id
            photo_a, photo_b = _photo(s, a, "a"), _photo(s, b, "b")
        yield roles, a, b, photo_a, photo_b


def _counts(roles: TwoRoles, org: int) -> list[tuple[int, date, str, int, int]]:
    q = QualityTagDaily.__table__.c
    with org_session(org, engine=roles.console) as s:
        return [tuple(r) for r in s.execute(select(q.organization_id, q.day, q.ai_label, q.conf_bin, q.n)
                                            .order_by(q.ai_label, q.conf_bin))]


def test_the_console_writes_the_rollup_through_the_triggers(db: tuple[TwoRoles, int, int, int, int]) -> None:
    roles, a, b, photo_a, photo_b = db
    with org_session(a, engine=roles.console) as s:
        s.execute(insert(PhotoTag), [dict(organization_id=a, photo_id=photo_a, label=label, confidence=c, source="ai",
                                      review_state="accepted", created_at=AT)
                                 for label, c in (("sky", 0.9), ("sky", 0.95), ("cat", 0.58))])
        s.execute(insert(PhotoTag).values(organization_id=a, photo_id=photo_a, label="grass", confidence=1.0,
                                      source="human", review_state="accepted", created_at=AT))
    with service_session(engine=roles.service) as s:
        s.execute(insert(PhotoTag).values(organization_id=b, photo_id=photo_b, label="sky", confidence=0.9, source="ai",
                                      review_state="accepted", created_at=AT))
    day = AT.date()
    assert _counts(roles, a) == [(a, day, "cat", 58, 1), (a, day, "sky", 90, 1), (a, day, "sky", 95, 1)]
    assert _counts(roles, b) == [(b, day, "sky", 90, 1)]
    with org_session(a, engine=roles.console) as s:
        assert sorted(s.scalars(select(QualityAiTag.ai_label))) == ["cat", "sky", "sky"]
        s.execute(delete(Photo).where(Photo.id == photo_a))
    assert [n for *_, n in _counts(roles, a)] == [0, 0, 0]
    with org_session(a, engine=roles.console) as s:
        assert list(s.scalars(select(QualityAiTag.tag_id))) == []
    assert _counts(roles, b) == [(b, day, "sky", 90, 1)]
