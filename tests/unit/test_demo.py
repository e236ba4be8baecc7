"""Sample photos, the demo seed and the rollup rebuild, on a real migrated SQLite database.

The 30-day seed runs once per module (it takes seconds); the smaller checks seed a few days.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import case, func, select, text

from aiconsole.demo.history import ACCEPT, REJECT
from aiconsole.demo.seed import (
    DEMO_LOGINS,
    DEMO_ORG_NAME,
    DEMO_TIMEZONE,
    PENDING_PHOTOS,
    _sqlite_converter,
    find_demo_organization,
    seed_demo,
)
from aiconsole.pipeline.images import load_image_bytes, validate_image
from aiconsole.pipeline.rollups import rebuild_rollups
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import dispose_engines, get_engine, service_session
from aiconsole.platform.db.models import (
    LATENCY_BUCKETS_MS,
    PROVIDERS,
    ROLES,
    WAIT_BUCKETS_MS,
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Correction,
    DoubleReview,
    Experiment,
    GroundTruth,
    Organization,
    Photo,
    PhotoTag,
    PipelineConfig,
    ProcessingRollupHourly,
    Prompt,
    PromptLabel,
    PromptVersion,
    ProviderConfig,
    Review,
    ReviewDecision,
    User,
)
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.passwords import verify_password
from aiconsole.platform.settings import Settings
from aiconsole.providers import samples
from aiconsole.providers.pricing import gemini_cost_micros, gemini_image_tokens
from aiconsole.quality import agreement, double_review

NOW = datetime(2026, 3, 18, 15, 42, 7, 123456, tzinfo=UTC)  # a Wednesday afternoon in New York


def _fresh_settings(path: Path) -> Settings:
    settings = Settings(data_dir=path, database_url=None, redis_url=None)
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Any]]:
    """One full 30-day demo seed on SQLite, shared by the read-only tests of this module."""
    settings = _fresh_settings(tmp_path_factory.mktemp("demo30"))
    summary = seed_demo(settings=settings, now=NOW)
    print(f"\n30-day demo seed on SQLite: {summary.seconds:.1f} s, {summary.results:,} results, "
          f"{summary.photo_tags:,} tags")
    yield settings, summary
    dispose_engines()


def _scalar(settings: Settings, query: Any) -> Any:
    with service_session(engine=get_engine(settings)) as s:
        return s.scalar(query)


def _rows(settings: Settings, query: Any) -> list[Any]:
    with service_session(engine=get_engine(settings)) as s:
        return list(s.execute(query).all())


# ---------------------------------------------------------------- samples


def test_samples_are_offline_real_photos_with_labels() -> None:
    names = [s.name for s in samples.list_samples()]
    assert len(names) >= 12
    assert {"astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field",
            "immunohistochemistry", "motorcycle"} <= set(names)
    assert "whiskers" in samples.get_sample("chelsea").labels
    for sample in samples.list_samples():
        assert len(sample.labels) >= 4 and len(sample.distractors) >= 3
        assert not set(sample.labels) & set(sample.distractors)
        info = validate_image(samples.sample_photo(sample.name), filename=f"{sample.name}.jpg")
        assert info.content_type == "image/jpeg"
        assert max(info.width, info.height) <= samples.MAX_SIDE


def test_sample_variants_are_deterministic_and_distinct() -> None:
    a = samples.sample_photo("chelsea", 5)
    assert samples.sample_photo("chelsea", 5) == a
    # Same look (5 and 5 + VISUAL_VARIANTS) but different bytes, and a different look is another image.
    same_look = samples.sample_photo("chelsea", 5 + samples.VISUAL_VARIANTS)
    assert same_look != a
    with Image.open(io.BytesIO(a)) as im_a, Image.open(io.BytesIO(same_look)) as im_b:
        assert im_a.size == im_b.size
        assert im_a.tobytes() == im_b.tobytes()
    shas = {hashlib.sha256(samples.sample_photo("coffee", v)).hexdigest() for v in range(40)}
    assert len(shas) == 40
    looks = {samples.variant_spec("coffee", v) for v in range(samples.VISUAL_VARIANTS)}
    assert len(looks) == samples.VISUAL_VARIANTS
    assert samples.variant_spec("coffee", 0).crop == (0.0, 0.0, 1.0, 1.0)


def test_demo_photo_identity_is_that_of_the_rendered_bytes() -> None:
    for name, variant in (("astronaut", 0), ("rocket", 17), ("motorcycle", 123_456)):
        data = samples.sample_photo(name, variant)
        photo = samples.demo_photo(name, variant)
        assert photo.sha256 == hashlib.sha256(data).hexdigest()
        assert photo.byte_size == len(data)
        with Image.open(io.BytesIO(data)) as im:
            assert (photo.width, photo.height) == im.size
        assert samples.render_demo_uri(photo.uri) == data


def test_demo_uri_and_variant_errors() -> None:
    assert samples.parse_demo_uri("demo://coins/3") == ("coins", 3)
    with pytest.raises(NotFound, match=r"There is no sample photo 'dog'\. Samples: astronaut"):
        samples.parse_demo_uri("demo://dog/1")
    for bad in ("demo://coins/-1", "demo://coins/x", "file:///etc/passwd", "demo://coins/1/../2"):
        with pytest.raises(ValidationFailed, match="is not a demo photo URI"):
            samples.parse_demo_uri(bad)
    with pytest.raises(ValidationFailed, match="Sample variant -3 is not valid"):
        samples.sample_photo("coins", -3)


# ---------------------------------------------------------------- the 30-day seed


def test_seed_volume_and_providers(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    assert find_demo_organization(settings=settings) == org
    r = AiProcessingResult
    total = _scalar(settings, select(func.count()).select_from(r).where(r.organization_id == org))
    assert total == summary.results >= 50_000
    by_provider = dict(_rows(settings, select(r.ai_provider, func.count()).where(r.organization_id == org)
                             .group_by(r.ai_provider)))
    assert set(by_provider) == set(PROVIDERS)
    assert all(n > 5_000 for n in by_provider.values())
    statuses = dict(_rows(settings, select(r.status, func.count()).where(r.organization_id == org)
                          .group_by(r.status)))
    assert statuses["completed"] > statuses["needs_review"] > statuses["failed"] > 100
    # Every failure says what went wrong; retryable ones were retried up to the limit.
    assert _scalar(settings, select(func.count()).select_from(r).where(
        r.status == "failed", (r.error_kind.is_(None)) | (r.error.is_(None)))) == 0
    kinds = {k for (k,) in _rows(settings, select(r.error_kind).where(r.status == "failed").distinct())}
    assert {"rate_limited", "timeout", "server_error"} <= kinds
    assert _scalar(settings, select(func.count()).select_from(r).where(
        r.status != "failed", r.retry_count > 0)) > 500
    # Photos retried after failing carry two results.
    assert _scalar(settings, select(func.count()).select_from(
        select(r.photo_id).group_by(r.photo_id).having(func.count() > 1).subquery())) > 100


def test_review_share_of_the_history_is_realistic(seeded: tuple[Settings, Any]) -> None:
    """5-15 % of processed results needed review, per provider and overall, under the seeded thresholds."""
    settings, summary = seeded
    r = AiProcessingResult
    rows = _rows(settings, select(r.ai_provider, func.count(), func.count().filter(r.status == "needs_review"))
                 .where(r.organization_id == summary.organization_id, r.status != "failed").group_by(r.ai_provider))
    shares = {provider: review / processed for provider, processed, review in rows}
    overall = sum(review for _, _, review in rows) / sum(processed for _, processed, _ in rows)
    print(f"\nreview share of the seeded history: {overall:.1%}; " + ", ".join(
        f"{p} {v:.1%}" for p, v in sorted(shares.items())))
    assert set(shares) == set(PROVIDERS)
    assert all(0.05 <= v <= 0.15 for v in (*shares.values(), overall)), shares


def test_providers_with_recent_traffic_are_enabled(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    r = AiProcessingResult
    recent = {p for (p,) in _rows(settings, select(r.ai_provider).distinct().where(
        r.organization_id == org, r.created_at >= NOW - timedelta(hours=1)))}
    assert recent == set(PROVIDERS)  # the last hour of the history used every provider
    enabled = dict(_rows(settings, select(ProviderConfig.provider, ProviderConfig.enabled)
                         .where(ProviderConfig.organization_id == org)))
    assert all(enabled[p] for p in recent), enabled
    config = _scalar(settings, select(PipelineConfig).where(PipelineConfig.organization_id == org))
    assert enabled[config.active_provider] and config.fallback_provider in (None, *recent)


def test_today_has_data_up_to_now(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    r = AiProcessingResult
    first, last = _rows(settings, select(func.min(r.created_at), func.max(r.created_at))
                        .where(r.organization_id == summary.organization_id))[0]
    first, last = (datetime.fromisoformat(str(v)).replace(tzinfo=UTC) for v in (first, last))
    assert last < NOW and NOW - last < timedelta(minutes=15)
    assert NOW - first >= timedelta(days=30)


def test_daily_and_weekly_patterns(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    h = ProcessingRollupHourly
    tz = ZoneInfo(DEMO_TIMEZONE)
    per_hour = _rows(settings, select(h.hour, func.sum(h.results_count))
                     .where(h.organization_id == summary.organization_id).group_by(h.hour))
    by_clock: dict[int, list[int]] = defaultdict(list)
    by_day: dict[Any, int] = Counter()
    for hour, n in per_hour:
        local = hour.astimezone(tz)
        by_clock[local.hour].append(int(n))
        by_day[local.date()] += int(n)
    mean = {k: sum(v) / len(v) for k, v in by_clock.items()}
    assert sum(mean[k] for k in range(10, 16)) / 6 > 5 * sum(mean[k] for k in range(1, 5)) / 4
    full_days = [d for d in by_day if d != NOW.astimezone(tz).date() and d > min(by_day)]
    weekdays = [by_day[d] for d in full_days if d.weekday() < 5]
    weekends = [by_day[d] for d in full_days if d.weekday() >= 5]
    assert sum(weekdays) / len(weekdays) > 1.8 * sum(weekends) / len(weekends)


def test_costs_follow_the_pricing_tables(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    r = AiProcessingResult
    month = func.strftime("%Y-%m", r.created_at)
    vision = _rows(settings, select(month, func.sum(r.units), func.sum(r.api_cost_micros))
                   .where(r.organization_id == org, r.ai_provider == "google-vision").group_by(month))
    assert len(vision) >= 1
    for _, units, cost in vision:
        # The first 1,000 units of each month are free, then $1.50 per 1,000 (1,500 micro-dollars each).
        assert cost == max(0, units - 1000) * 1500
    assert _scalar(settings, select(func.count()).select_from(r).where(
        r.ai_provider == "google-vision", r.status == "failed", r.api_cost_micros != 0)) == 0
    gemini = _rows(settings, select(r.model, r.input_tokens, r.output_tokens, r.api_cost_micros, Photo.width,
                                    Photo.height)
                   .join(Photo, Photo.id == r.photo_id)
                   .where(r.organization_id == org, r.ai_provider == "gemini", r.input_tokens > 0).limit(500))
    assert len(gemini) == 500
    for model, inp, out, cost, width, height in gemini:
        assert cost == gemini_cost_micros(model, input_tokens=inp, output_tokens=out)
        assert inp > gemini_image_tokens(width, height)  # the prompt's tokens come on top of the image's
    assert _scalar(settings, select(func.sum(r.api_cost_micros)).where(
        r.organization_id == org, r.ai_provider == "local")) == 0
    assert summary.cost_micros == _scalar(settings, select(func.sum(r.api_cost_micros))
                                          .where(r.organization_id == org))


def test_latencies_differ_by_provider(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    r = AiProcessingResult
    avg = dict(_rows(settings, select(r.ai_provider, func.avg(r.provider_response_time_ms))
                     .where(r.organization_id == summary.organization_id, r.status != "failed")
                     .group_by(r.ai_provider)))
    assert avg["local"] < avg["google-vision"] < avg["gemini"]


def test_tags_reviews_and_corrections(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    t = PhotoTag
    states = dict(_rows(settings, select(t.review_state, func.count()).where(t.organization_id == org)
                        .group_by(t.review_state)))
    assert states["accepted"] > states["rejected"] > states["needs_review"] > 100
    assert states["corrected"] > 100
    assert summary.needs_review_tags == states["needs_review"]
    # The thresholds hold for every AI tag nobody reviewed.
    unreviewed = t.reviewed_by.is_(None) & (t.source == "ai")
    assert _scalar(settings, select(func.count()).select_from(t).where(unreviewed, (
        ((t.review_state == "accepted") & (t.confidence < ACCEPT))
        | ((t.review_state == "rejected") & (t.confidence >= REJECT))
        | ((t.review_state == "needs_review") & ((t.confidence < REJECT) | (t.confidence >= ACCEPT)))))) == 0
    c = Correction
    actions = dict(_rows(settings, select(c.action, func.count()).where(c.organization_id == org)
                         .group_by(c.action)))
    assert set(actions) == {"accept", "reject", "correct", "add"}
    assert sum(actions.values()) == summary.corrections
    reviewer = _scalar(settings, select(User.id).where(User.role == "reviewer", User.organization_id == org))
    by_user = dict(_rows(settings, select(c.user_id, func.count()).where(c.organization_id == org)
                         .group_by(c.user_id)))
    assert by_user[reviewer] > 0.7 * summary.corrections
    # Each correction points at its tag, which carries the reviewer's verdict.
    mismatched = select(func.count()).select_from(c).join(t, t.id == c.tag_id).where(
        (t.reviewed_by != c.user_id) | (t.reviewed_at != c.created_at))
    assert _scalar(settings, mismatched) == 0
    # Photos still waiting for review are exactly those with an open needs_review tag.
    open_photos = select(t.photo_id).where(t.organization_id == org, t.review_state == "needs_review")
    assert _scalar(settings, select(func.count()).select_from(Photo).where(
        Photo.status == "needs_review", Photo.id.not_in(open_photos))) == 0
    assert _scalar(settings, select(func.count()).select_from(Photo).where(
        Photo.status != "needs_review", Photo.id.in_(open_photos))) == 0


def test_a_review_decides_every_tag_its_photo_had_awaiting_one(seeded: tuple[Settings, Any]) -> None:
    """As the review queue has it: no reviewed photo keeps an AI tag in review that it had when reviewed."""
    settings, summary = seeded
    t, r = PhotoTag, Review
    left = select(func.count(func.distinct(r.photo_id))).select_from(r).join(t, t.photo_id == r.photo_id).where(
        r.organization_id == summary.organization_id, r.queue_order != "second_review", t.source == "ai",
        t.reviewed_at.is_(None), t.review_state == "needs_review", t.created_at <= r.submitted_at)
    assert _scalar(settings, left) == 0
    # Each review was one person's, at one sitting: its decisions within minutes, by its reviewer.
    d = ReviewDecision
    spread = select(func.count()).select_from(d).join(r, r.id == d.review_id).where(
        r.organization_id == summary.organization_id, d.reviewer_id != r.reviewer_id)
    assert _scalar(settings, spread) == 0


def test_history_photos_render_to_their_stored_identity(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    photos = _rows(settings, select(Photo.storage_uri, Photo.sha256, Photo.byte_size, Photo.width, Photo.height)
                   .where(Photo.organization_id == summary.organization_id,
                          Photo.storage_uri.like("demo://%")).order_by(Photo.id).limit(25))
    for uri, sha, size, width, height in photos:
        data = load_image_bytes(uri, settings=settings)
        info = validate_image(data, filename="x.jpg", settings=settings)
        assert (info.sha256, info.byte_size, info.width, info.height) == (sha, size, width, height)


def test_live_queue(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    assert summary.pending == PENDING_PHOTOS
    p = Photo
    pending = _rows(settings, select(p.storage_uri, p.sha256, p.created_at).where(
        p.organization_id == org, p.status == "pending"))
    assert len(pending) == PENDING_PHOTOS
    for uri, sha, created in pending[:30]:
        assert uri.startswith("photos/")
        assert hashlib.sha256(load_image_bytes(uri, settings=settings)).hexdigest() == sha
        assert NOW - timedelta(hours=1) < created <= NOW
    leases = _rows(settings, select(p.lease_owner, p.lease_expires_at).where(
        p.organization_id == org, p.status == "processing"))
    live = [e for _, e in leases if e > NOW]
    expired = [e for _, e in leases if e <= NOW]
    assert (len(live), len(expired)) == (summary.processing, summary.stuck) == (4, 3)
    assert all(owner for owner, _ in leases)
    assert 0 < summary.failed_photos < 300
    assert str(summary).startswith(f"Seeded Demo Photos Inc. (organization {org}) in ")
    assert f"{summary.results:,} results" in str(summary) and "$" in str(summary)


def test_organization_users_and_configuration(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org_id = summary.organization_id
    with service_session(engine=get_engine(settings)) as s:
        org = s.get(Organization, org_id)
        assert org is not None and org.is_demo and org.name == DEMO_ORG_NAME
        users = {u.email: u for u in s.scalars(select(User).where(User.organization_id == org_id))}
        assert sorted(u.role for u in users.values()) == sorted(ROLES)
        assert len({u.password_hash for u in users.values()}) == 1  # hashed once for all
        for email, password, role in DEMO_LOGINS:
            assert users[email].role == role
            assert verify_password(users[email].password_hash or "", password)
            assert len(password) >= 8
        config = s.get(PipelineConfig, org_id)
        assert config is not None
        assert (config.active_provider, config.accept_threshold, config.reject_threshold) == ("local", ACCEPT, REJECT)
        assert (config.daily_budget_micros, config.monthly_budget_micros) == (25_000_000, 600_000_000)
        providers = list(s.scalars(select(ProviderConfig).where(ProviderConfig.organization_id == org_id)))
        assert sorted(p.provider for p in providers) == sorted(PROVIDERS)
        assert all(p.encrypted_secret is None and p.secret_last4 is None for p in providers)
        versions = Counter(s.scalars(select(Prompt.name).join(PromptVersion, PromptVersion.prompt_id == Prompt.id)
                                     .where(Prompt.organization_id == org_id)))
        assert versions["photo-tagger"] == 4
        labels = {(name, label): version for name, label, version in s.execute(
            select(Prompt.name, PromptLabel.label, PromptVersion.version)
            .join(PromptLabel, PromptLabel.prompt_id == Prompt.id)
            .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
            .where(Prompt.organization_id == org_id))}
        assert labels[("photo-tagger", "production")] == 3
        assert labels[("photo-tagger", "staging")] == 4
        # The latest experiment ended three hours ago: none runs, so live photos follow the pipeline config.
        assert s.scalar(select(func.count()).select_from(Experiment).where(
            Experiment.organization_id == org_id, Experiment.status == "running")) == 0
        latest = s.scalars(select(Experiment).where(Experiment.organization_id == org_id)
                           .order_by(Experiment.started_at.desc())).first()
        assert latest is not None and latest.status == "completed" and latest.ended_at is not None
        assert timedelta(hours=2) < NOW - latest.ended_at < timedelta(hours=4)
        arms = dict(s.execute(select(AiProcessingResult.variant, func.count())
                              .where(AiProcessingResult.experiment_id == latest.id)
                              .group_by(AiProcessingResult.variant)).all())
        assert set(arms) == {"control", "treatment"} and min(arms.values()) > 500
        actions = Counter(s.scalars(select(AuditLog.action).where(AuditLog.organization_id == org_id)))
        assert actions["demo.seed"] == 1 and actions["user.create"] == len(ROLES)
        assert actions["queue.retry_failed"] >= 20 and actions["prompt.label"] >= 5


def test_provider_health_history(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    hp = AiProviderHealth
    rows = _rows(settings, select(hp.provider_name, hp.status, func.count(), func.min(hp.last_check),
                                  func.max(hp.last_check))
                 .where(hp.organization_id == summary.organization_id).group_by(hp.provider_name, hp.status))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for provider, status, n, _, last in rows:
        counts[provider][status] += n
        assert last <= NOW
    for provider in PROVIDERS:
        total = sum(counts[provider].values())
        assert total >= 30 * 24 * 12  # every 5 minutes for 30 days
        assert counts[provider]["healthy"] > 0.97 * total
    assert counts["gemini"]["degraded"] + counts["gemini"]["down"] >= 15  # the 100-minute episode
    assert summary.health_rows == sum(sum(c.values()) for c in counts.values())


def _direct_aggregate(settings: Settings, org: int) -> dict[tuple[str, str], tuple[int, ...]]:
    """Per (UTC hour text, provider) figures computed straight from the results with SQLite's own functions."""
    sql = text(
        "SELECT strftime('%Y-%m-%d %H', created_at), ai_provider, count(*), "
        "sum(status = 'completed'), sum(status = 'needs_review'), sum(status = 'failed'), sum(retry_count), "
        "sum(tag_count), sum(api_cost_micros), sum(input_tokens), sum(output_tokens), sum(units), "
        "count(avg_confidence), sum(provider_response_time_ms), sum(queue_wait_time_ms) "
        "FROM ai_processing_results WHERE organization_id = :org GROUP BY 1, 2")
    with service_session(engine=get_engine(settings)) as s:
        return {(row[0], row[1]): tuple(int(v) for v in row[2:]) for row in s.execute(sql, {"org": org})}


def test_rollups_equal_a_direct_aggregate(seeded: tuple[Settings, Any]) -> None:
    settings, summary = seeded
    org = summary.organization_id
    h = ProcessingRollupHourly
    direct = _direct_aggregate(settings, org)
    with service_session(engine=get_engine(settings)) as s:
        rollups = list(s.scalars(select(h).where(h.organization_id == org)))
    assert len(rollups) == summary.rollup_rows == len(direct)
    for row in rollups:
        key = (row.hour.strftime("%Y-%m-%d %H"), row.ai_provider)
        assert row.hour.minute == row.hour.second == row.hour.microsecond == 0
        assert direct[key] == (row.results_count, row.completed_count, row.needs_review_count, row.failed_count,
                               row.retry_count_sum, row.tag_count, row.cost_micros, row.input_tokens,
                               row.output_tokens, row.units, row.confidence_count, row.latency_ms_sum,
                               row.queue_wait_ms_sum)
        assert sum(getattr(row, f"latency_b{i}") for i in range(10)) == row.results_count
        assert sum(getattr(row, f"wait_b{i}") for i in range(10)) == row.results_count
    # The histograms are really spread out, not all in one bucket.
    assert sum(1 for i in range(10) if any(getattr(r, f"latency_b{i}") for r in rollups)) >= 7
    assert sum(1 for i in range(10) if any(getattr(r, f"wait_b{i}") for r in rollups)) >= 6


# ---------------------------------------------------------------- determinism, idempotency


def _fingerprint(settings: Settings) -> tuple[Any, ...]:
    org = find_demo_organization(settings=settings)
    r, t = AiProcessingResult, PhotoTag
    with service_session(engine=get_engine(settings)) as s:
        results = s.execute(select(func.count(), func.sum(r.api_cost_micros), func.sum(r.provider_response_time_ms),
                                   func.sum(r.retry_count), func.sum(r.input_tokens))
                            .where(r.organization_id == org)).one()
        statuses = sorted(s.execute(select(r.status, func.count()).where(r.organization_id == org)
                                    .group_by(r.status)).all())
        tags = sorted(s.execute(select(t.review_state, func.count(), func.sum(t.confidence))
                                .where(t.organization_id == org).group_by(t.review_state)).all())
        shas = hashlib.sha256("".join(s.scalars(select(Photo.sha256).where(Photo.organization_id == org)
                                                .order_by(Photo.sha256))).encode()).hexdigest()
        corrections = s.scalar(select(func.count()).select_from(Correction).where(Correction.organization_id == org))
    return tuple(results), tuple(statuses), tuple((a, b, round(c, 6)) for a, b, c in tags), shas, corrections


def test_same_seed_same_data(tmp_path: Path) -> None:
    a = _fresh_settings(tmp_path / "a")
    b = _fresh_settings(tmp_path / "b")
    c = _fresh_settings(tmp_path / "c")
    sa = seed_demo(settings=a, days=3, now=NOW)
    sb = seed_demo(settings=b, days=3, now=NOW)
    seed_demo(settings=c, days=3, now=NOW, seed=7)
    try:
        assert _fingerprint(a) == _fingerprint(b)
        assert (sa.results, sa.cost_micros, sa.corrections) == (sb.results, sb.cost_micros, sb.corrections)
        assert _fingerprint(a) != _fingerprint(c)
    finally:
        dispose_engines()


def test_refuses_to_seed_twice_and_force_replaces_only_the_demo(tmp_path: Path) -> None:
    settings = _fresh_settings(tmp_path / "f")
    first = seed_demo(settings=settings, days=2, now=NOW)
    with service_session(engine=get_engine(settings)) as s:
        other = Organization(name="Acme", slug="acme", timezone="UTC", created_at=NOW)
        s.add(other)
        s.flush()
        s.add(Photo(organization_id=other.id, sha256="a" * 64, storage_uri="photos/aa/x.jpg", filename="x.jpg",
                    content_type="image/jpeg", byte_size=1, width=1, height=1, created_at=NOW, updated_at=NOW))
        other_id = other.id
    with pytest.raises(ConflictError, match=r"The demo organization 'Demo Photos Inc\.' already exists .*--force"):
        seed_demo(settings=settings, days=2, now=NOW)
    second = seed_demo(settings=settings, days=2, now=NOW, force=True)
    try:
        assert second.organization_id != first.organization_id
        assert second.results == first.results
        with service_session(engine=get_engine(settings)) as s:
            assert s.get(Organization, first.organization_id) is None
            for model in (AiProcessingResult, PhotoTag, Correction, AiProviderHealth, ProcessingRollupHourly,
                          User, PromptVersion):
                orgs = set(s.scalars(select(model.organization_id).distinct()))
                assert orgs == {second.organization_id}, model.__tablename__
            assert s.scalar(select(func.count()).select_from(Photo).where(Photo.organization_id == other_id)) == 1
    finally:
        dispose_engines()


def test_days_out_of_range(settings: Settings) -> None:
    with pytest.raises(ValidationFailed, match="0 days of demo history is out of range"):
        seed_demo(settings=settings, days=0)


def test_sqlite_fast_path_binds_like_sqlalchemy() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    berlin = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=ZoneInfo("Europe/Berlin"))
    cases = [(AuditLog.__table__.c.before, None), (AuditLog.__table__.c.before, {"a": [1, "x"]}),
             (AuditLog.__table__.c.created_at, berlin), (AuditLog.__table__.c.created_at, NOW),
             (AuditLog.__table__.c.reversible, True), (Photo.__table__.c.priority, 3),
             (AiProcessingResult.__table__.c.avg_confidence, 0.5)]
    for column, value in cases:
        ours = _sqlite_converter(column)
        theirs = column.type._cached_bind_processor(dialect)
        assert (value if ours is None else ours(value)) == (value if theirs is None else theirs(value))
    assert _sqlite_converter(AuditLog.__table__.c.created_at)(berlin) == "2026-01-02 02:04:05.000006"


# ---------------------------------------------------------------- rollups: known answers, both databases


def _result(org: int, photo: int, at: datetime, provider: str, *, latency: int, wait: int,
            status: str = "completed", cost: int = 0, confidence: float | None = 0.9) -> AiProcessingResult:
    return AiProcessingResult(organization_id=org, photo_id=photo, ai_provider=provider, model="m", status=status,
                              tags=[], tag_count=2, avg_confidence=confidence, min_confidence=confidence,
                              api_cost_micros=cost, input_tokens=10, output_tokens=5, units=1,
                              queue_wait_time_ms=wait, provider_response_time_ms=latency,
                              total_processing_time_ms=latency + 7, retry_count=1, created_at=at)


def test_rebuild_rollups_known_answer(any_settings: Settings) -> None:
    engine = get_engine(any_settings)
    h12 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    with service_session(engine=engine) as s:
        org = Organization(name="Rollup Co", slug="rollup-co", timezone="Asia/Kolkata", created_at=h12)
        s.add(org)
        s.flush()
        photo = Photo(organization_id=org.id, sha256="b" * 64, storage_uri="photos/bb/b.jpg", filename="b.jpg",
                      content_type="image/jpeg", byte_size=1, width=1, height=1, created_at=h12, updated_at=h12)
        s.add(photo)
        s.flush()
        org_id, pid = org.id, photo.id
        s.add_all([
            # Bucket edges: 50 ms is bucket 0, 51 ms bucket 1, 30,000 ms bucket 8, 30,001 ms bucket 9.
            _result(org_id, pid, h12, "gemini", latency=50, wait=1000, cost=100),
            _result(org_id, pid, h12 + timedelta(minutes=59, seconds=59, microseconds=999_999), "gemini",
                    latency=51, wait=1001, cost=250, confidence=0.5),
            _result(org_id, pid, h12 + timedelta(minutes=30), "gemini", latency=30_000, wait=86_400_000,
                    status="failed", confidence=None),
            _result(org_id, pid, h12 + timedelta(hours=1), "gemini", latency=30_001, wait=86_400_001,
                    status="needs_review", cost=7),
            _result(org_id, pid, h12 + timedelta(minutes=5), "local", latency=0, wait=0),
        ])
    with service_session(engine=engine) as s:
        assert rebuild_rollups(s, organization_id=org_id) == 3
    with service_session(engine=engine) as s:
        rows = {(r.hour, r.ai_provider): r for r in s.scalars(select(ProcessingRollupHourly).where(
            ProcessingRollupHourly.organization_id == org_id))}
    assert set(rows) == {(h12, "gemini"), (h12 + timedelta(hours=1), "gemini"), (h12, "local")}
    g = rows[(h12, "gemini")]
    assert (g.results_count, g.completed_count, g.needs_review_count, g.failed_count) == (3, 2, 0, 1)
    assert (g.cost_micros, g.retry_count_sum, g.tag_count, g.units) == (350, 3, 6, 3)
    assert (g.input_tokens, g.output_tokens) == (30, 15)
    assert g.confidence_count == 2 and g.confidence_sum == pytest.approx(1.4)
    assert (g.latency_ms_sum, g.queue_wait_ms_sum) == (30_101, 86_402_001)
    assert [getattr(g, f"latency_b{i}") for i in range(10)] == [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    assert [getattr(g, f"wait_b{i}") for i in range(10)] == [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    g1 = rows[(h12 + timedelta(hours=1), "gemini")]
    assert (g1.results_count, g1.needs_review_count, g1.cost_micros) == (1, 1, 7)
    assert [getattr(g1, f"latency_b{i}") for i in range(10)] == [0] * 9 + [1]
    assert [getattr(g1, f"wait_b{i}") for i in range(10)] == [0] * 9 + [1]
    assert len(LATENCY_BUCKETS_MS) == len(WAIT_BUCKETS_MS) == 9

    # A partial rebuild replaces the hours from `since` on and keeps the older ones as they are.
    with service_session(engine=engine) as s:
        s.add(_result(org_id, pid, h12 + timedelta(hours=1, minutes=1), "gemini", latency=10, wait=10, cost=1))
        s.execute(ProcessingRollupHourly.__table__.update().where(
            ProcessingRollupHourly.organization_id == org_id, ProcessingRollupHourly.ai_provider == "local"
        ).values(results_count=99))
    with service_session(engine=engine) as s:
        assert rebuild_rollups(s, organization_id=org_id, since=h12 + timedelta(hours=1, minutes=30)) == 1
        after = {(r.hour, r.ai_provider): (r.results_count, r.cost_micros) for r in s.scalars(
            select(ProcessingRollupHourly).where(ProcessingRollupHourly.organization_id == org_id))}
    assert after == {(h12, "gemini"): (3, 350), (h12, "local"): (99, 0),
                     (h12 + timedelta(hours=1), "gemini"): (2, 8)}
    with service_session(engine=engine) as s, pytest.raises(ValidationFailed, match="timezone-aware"):
        rebuild_rollups(s, organization_id=org_id, since=datetime(2026, 1, 1))


def test_review_history_feeds_quality_control(seeded: tuple[Settings, Any]) -> None:
    """Both review orders, one decision per correction, ground truth as decisions.py writes it (issue 11)."""
    settings, summary = seeded
    org = summary.organization_id
    r, d, t = Review, ReviewDecision, PhotoTag
    orders = dict(_rows(settings, select(r.queue_order, func.count()).where(r.organization_id == org)
                        .group_by(r.queue_order)))
    assert set(orders) == {"lowest_confidence", "random", "second_review"}
    del orders["second_review"]  # blind second reviews: the next test
    assert orders["random"] > 0.15 * sum(orders.values())
    assert _scalar(settings, select(func.count()).select_from(d).join(r, r.id == d.review_id).where(
        d.organization_id == org, r.queue_order != "second_review")) == summary.corrections
    assert _scalar(settings, select(func.count()).select_from(r).where(
        r.organization_id == org, ~select(d.id).where(d.review_id == r.id).exists())) == 0
    # Rejections carry a reason; verdicts are the thresholds' for the decided confidence.
    assert _scalar(settings, select(func.count()).select_from(d).where(
        d.organization_id == org, (d.action == "reject") != d.reason.is_not(None))) == 0
    assert _scalar(settings, select(func.count()).select_from(d).where(d.action != "add", (
        ((d.ai_verdict == "accepted") & (d.confidence < ACCEPT))
        | ((d.ai_verdict == "rejected") & (d.confidence >= REJECT))
        | ((d.ai_verdict == "needs_review") & ((d.confidence < REJECT) | (d.confidence >= ACCEPT)))))) == 0
    # The random sample's precision is the AI's own (most accepted tags are right); the doubtful queue's is lower.
    precision = {order: float(p) for order, p in _rows(settings, select(
        r.queue_order, func.avg(case((d.action == "approve", 1.0), else_=0.0)))
        .join(r, r.id == d.review_id).where(d.action != "add", d.organization_id == org).group_by(r.queue_order))}
    assert 0.75 < precision["random"] < 0.97 and precision["lowest_confidence"] < precision["random"] - 0.2
    # Ground truth: each reviewed photo's reviewed accepted and corrected labels, nothing else.
    truth = set(_rows(settings, select(GroundTruth.photo_id, GroundTruth.label)
                      .where(GroundTruth.organization_id == org)))
    reviewed = set(_rows(settings, select(t.photo_id, t.label).where(
        t.organization_id == org, t.reviewed_at.is_not(None), t.review_state.in_(("accepted", "corrected")))))
    assert truth == reviewed and len(truth) > 1000


def test_double_reviews_feed_reviewer_agreement(seeded: tuple[Settings, Any]) -> None:
    """A twentieth of reviewed photos have a blind second review (most decided, the newest waiting), routed by
    quality.double_review's draw, by the other reviewer; their agreement is real but imperfect."""
    settings, summary = seeded
    org = summary.organization_id
    doubles = _rows(settings, select(DoubleReview.photo_id, DoubleReview.status, DoubleReview.first_review_id,
                                     DoubleReview.second_review_id).where(DoubleReview.organization_id == org))
    firsts = _scalar(settings, select(func.count()).select_from(Review).where(
        Review.organization_id == org, Review.queue_order != "second_review"))
    assert 0.03 * firsts < len(doubles) < 0.07 * firsts
    assert all(double_review.routed(org, photo, 0.05) for photo, *_ in doubles)
    statuses = Counter(status for _, status, _, _ in doubles)
    assert statuses["reviewed"] > 10 * statuses["waiting"] > 0
    pairs = dict(_rows(settings, select(Review.id, Review.reviewer_id).where(Review.organization_id == org)))
    assert all(pairs[first] != pairs[second] for _, status, first, second in doubles if status == "reviewed")
    admin = Actor(user_id=None, email="admin@demo.aiconsole.dev", role="admin", organization_id=org)
    report = agreement.agreement_report(admin, days=30, now=NOW, settings=settings)
    assert report.overall.agreement is not None and 0.3 < report.overall.agreement.kappa < 0.85
    assert report.disagreements
