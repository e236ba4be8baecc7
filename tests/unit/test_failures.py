"""Failed photos grouped by reason (issue 10 item 3): known answers on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import literal, select, update

from aiconsole.pipeline import failures
from aiconsole.platform.db import org_session, service_session
from aiconsole.platform.db.models import AiProcessingResult, Organization, Photo
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
KEY = "gemini answered HTTP 400: API key not valid. Please pass a valid API key."


def _org() -> int:
    with service_session() as s:
        org = Organization(name=f"Failures {uuid.uuid4().hex[:6]}", slug=uuid.uuid4().hex[:12], timezone="UTC")
        s.add(org)
        s.flush()
        return int(org.id)


def _photo(org: int, name: str, status: str, *, at: datetime | None,
           results: tuple[tuple[str, str | None, str | None], ...] = (), last_error: str | None = None) -> int:
    """A photo with its result rows in order (status, error kind, message); `at`: when it finished."""
    with service_session() as s:
        photo = Photo(organization_id=org, sha256=uuid.uuid4().hex * 2, storage_uri="x", filename=name,
                      content_type="image/png", byte_size=1, width=1, height=1, status=status, attempts=1,
                      completed_at=at, last_error=last_error, created_at=T0 - timedelta(hours=1))
        s.add(photo)
        s.flush()
        for i, (r_status, kind, error) in enumerate(results):
            s.add(AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider="gemini", model="m",
                                     status=r_status, error_kind=kind, error=error,
                                     created_at=(at or T0) - timedelta(seconds=10 - i)))
        return int(photo.id)


@pytest.fixture
def scenario(any_settings: Settings) -> tuple[int, dict[str, int]]:
    org, other = _org(), _org()
    ids = {
        "key1": _photo(org, "cat.jpg", "failed", at=T0 + timedelta(minutes=1),
                       results=(("completed", None, None), ("failed", "auth", KEY))),
        "key2": _photo(org, "dog.jpg", "failed", at=T0 + timedelta(minutes=3), results=(("failed", "auth", KEY),)),
        "down": _photo(org, "sea.png", "failed", at=T0 + timedelta(minutes=2),
                       results=(("failed", "connection", "Could not reach gemini at http://127.0.0.1:9"),)),
        "bad": _photo(org, "broken.png", "failed", at=T0 + timedelta(minutes=4),
                      results=(("failed", "bad_request", "gemini answered HTTP 400: Unable to process input image"),)),
        # Its newest result decides: the reaper failed it after an earlier timeout.
        "lost": _photo(org, "slow.png", "failed", at=T0 + timedelta(seconds=30),
                       results=(("failed", "timeout", "gemini did not answer"),
                                ("failed", "lease_expired", "lease expired 3 times"))),
        # No result row at all (the database refused it): the photo's own last error speaks.
        "norow": _photo(org, "odd.png", "failed", at=T0, last_error="could not be recorded: value out of range"),
        # Not failed (any more): never counted, whatever their results say.
        "done": _photo(org, "ok.png", "completed", at=T0 + timedelta(minutes=9), results=(("failed", "auth", KEY),)),
        "again": _photo(org, "retry.png", "pending", at=None, results=(("failed", "auth", KEY),)),
    }
    _photo(other, "theirs.png", "failed", at=T0 + timedelta(minutes=8), results=(("failed", "auth", KEY),))
    return org, ids


def test_failed_groups_known_answers(scenario: tuple[int, dict[str, int]]) -> None:
    org, ids = scenario
    groups = failures.failed_groups(organization_id=org)
    assert [(g.reason_kind, g.count, g.newest_at) for g in groups] == [
        ("bad_photo", 1, T0 + timedelta(minutes=4)),
        ("auth", 2, T0 + timedelta(minutes=3)),
        ("unreachable", 1, T0 + timedelta(minutes=2)),
        ("other", 2, T0 + timedelta(seconds=30)),
    ]
    auth = groups[1]
    assert auth.reason == failures.REASON_KINDS["auth"]
    assert auth.latest_error == KEY
    assert (auth.sample_photo_ids, auth.sample_filenames) == ((ids["key2"], ids["key1"]), ("dog.jpg", "cat.jpg"))
    other = groups[3]
    assert other.sample_photo_ids == (ids["lost"], ids["norow"])
    assert other.latest_error == "lease expired 3 times"
    assert failures.failed_groups(organization_id=org, limit=2, samples=1)[1].sample_photo_ids == (ids["key2"],)
    assert [g.reason_kind for g in failures.failed_groups(organization_id=org, limit=2)] == ["bad_photo", "auth"]


def test_a_group_for_retry(scenario: tuple[int, dict[str, int]]) -> None:
    org, ids = scenario
    assert failures.failed_photo_ids(organization_id=org, reason_kind="auth") == [ids["key2"], ids["key1"]]
    assert failures.failed_photo_ids(organization_id=org, reason_kind="auth", limit=1) == [ids["key2"]]
    assert failures.failed_photo_ids(organization_id=org, reason_kind="rate_limited") == []
    with pytest.raises(ValidationFailed, match="no failure reason"):
        failures.failed_photo_ids(organization_id=org, reason_kind="nonsense")
    # The group as one UPDATE's WHERE clause: only this organization's failed auth photos move.
    with org_session(org) as s:
        moved = s.execute(update(Photo).where(failures.in_group(organization_id=org, reason_kind="auth"))
                          .values(status="pending")).rowcount
    assert moved == 2
    left = {g.reason_kind: g.count for g in failures.failed_groups(organization_id=org)}
    assert left == {"bad_photo": 1, "unreachable": 1, "other": 2}


def test_reason_kinds_agree_in_python_and_sql(any_settings: Settings) -> None:
    kinds = ["auth", "connection", "rate_limited", "timeout", "server_error", "malformed", "bad_request", "image",
             "blocked", "prompt", "internal", "unrecordable", "lease_expired", "invalid_argument", "surprise"]
    org = _org()
    with org_session(org) as s:
        in_sql = {k: s.scalar(select(failures.reason_kind_sql(literal(k)))) for k in kinds}
        none_sql = s.scalar(select(failures.reason_kind_sql(literal(None))))
    assert in_sql == {k: failures.reason_kind(k) for k in kinds}
    assert none_sql == failures.reason_kind(None) == "other"
    assert set(in_sql.values()) <= set(failures.REASON_KINDS)
    assert (failures.reason_kind("auth"), failures.reason_kind("connection"), failures.reason_kind("image")) == (
        "auth", "unreachable", "bad_photo")
