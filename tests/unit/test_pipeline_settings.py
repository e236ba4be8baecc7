"""Pipeline settings: model switch validation, undo, reverts of audit entries, cost projections and quality."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pipeline_data import add_photo, add_result, as_role, make_org
from sqlalchemy import select, update

from aiconsole.control import queue_actions as queue_control
from aiconsole.control.pipeline_settings import (
    current_settings,
    model_choices,
    projected_cost_per_1000,
    recent_quality,
    revert_audit,
    switch_model,
    undo_last_switch,
)
from aiconsole.control.rules_config import parse_rules, save_rules
from aiconsole.platform.audit import AuditRow, list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, PipelineConfig, ProviderConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings


def _model(org: int) -> tuple[str, str, str | None, int]:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        return cfg.active_provider, cfg.active_model, cfg.fallback_provider, cfg.version


def _entry(org: int, action: str) -> AuditRow:
    with service_session() as s:
        e = s.scalars(select(AuditLog).where(AuditLog.organization_id == org, AuditLog.action == action)
                      .order_by(AuditLog.id.desc())).first()
        assert e is not None
        return AuditRow(e.id, e.created_at, e.organization_id, e.user_id, e.actor, e.action, e.entity_type,
                        e.entity_id, e.before, e.after, e.summary, e.reversible, e.reverted_by_id)


def _revert(actor, entry: AuditRow) -> int:  # type: ignore[no-untyped-def]
    from aiconsole.platform.db import org_session

    with org_session(actor.organization_id) as s:
        return revert_audit(s, actor=actor, entry=entry)


def test_switch_validates_the_choice(settings: Settings) -> None:
    org, admin = make_org()
    bad = [
        (dict(provider="openai", model="gpt", fallback_provider=None), "There is no provider 'openai'"),
        (dict(provider="gemini", model="gemini-9", fallback_provider=None), "'gemini-9' is not a model of gemini"),
        (dict(provider="gemini", model="gemini-2.5-flash", fallback_provider="gemini"), "fallback provider is the"),
        (dict(provider="google-vision", model="builtin/stable", fallback_provider=None), "google-vision is disabled"),
        (dict(provider="gemini", model="gemini-2.5-flash", fallback_provider="google-vision"),
         "google-vision is disabled, so it can't be the fallback"),
        (dict(provider="local", model="local-analyzer-v1", fallback_provider=None), "is already active"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValidationFailed) as err:
            switch_model(admin, expected_version=1, **kwargs)  # type: ignore[arg-type]
        assert message in str(err.value)
    with service_session() as s:
        s.delete(s.scalars(select(ProviderConfig).where(ProviderConfig.organization_id == org,
                                                        ProviderConfig.provider == "gemini")).one())
    with pytest.raises(ValidationFailed, match="gemini is not set up, so it can't be the active provider"):
        switch_model(admin, provider="gemini", model="gemini-2.5-flash", fallback_provider=None, expected_version=1)
    assert _model(org) == ("local", "local-analyzer-v1", None, 1)


def test_switch_is_audited_and_guarded(settings: Settings) -> None:
    org, admin = make_org()
    report = switch_model(admin, provider="gemini", model="gemini-2.5-pro", fallback_provider="local",
                          expected_version=1)
    assert report.version == 2 and "local/local-analyzer-v1 -> gemini/gemini-2.5-pro" in report.message
    assert _model(org) == ("gemini", "gemini-2.5-pro", "local", 2)
    entry = _entry(org, "model.switch")
    assert entry.before == {"active_provider": "local", "active_model": "local-analyzer-v1", "fallback_provider": None}
    assert entry.after == {"active_provider": "gemini", "active_model": "gemini-2.5-pro", "fallback_provider": "local"}
    assert entry.reversible and entry.entity_type == "pipeline_config" and entry.user_id == admin.user_id
    with pytest.raises(ConflictError, match="changed by admin-"):
        switch_model(admin, provider="local", model="local-analyzer-v1", fallback_provider=None, expected_version=1)
    for role in ("developer", "analyst", "reviewer", "viewer"):
        with pytest.raises(PermissionDenied):
            switch_model(as_role(admin, role), provider="local", model="local-analyzer-v1", fallback_provider=None,
                         expected_version=2)
        with pytest.raises(PermissionDenied):
            undo_last_switch(as_role(admin, role))
    view = current_settings(as_role(admin, "viewer"))
    assert (view.active_provider, view.active_model, view.fallback_provider, view.version) == (
        "gemini", "gemini-2.5-pro", "local", 2)
    assert view.updated_by == admin.email and view.rules.accept_threshold == 0.8


def test_undo_walks_back_one_switch_at_a_time(settings: Settings) -> None:
    _, admin = make_org()
    switch_model(admin, provider="gemini", model="gemini-2.5-flash", fallback_provider=None, expected_version=1)
    switch_model(admin, provider="gemini", model="gemini-2.5-flash-lite", fallback_provider="local",
                 expected_version=2)
    first = undo_last_switch(admin)
    assert (first.active_model, first.fallback_provider) == ("gemini-2.5-flash", None)
    assert "back to gemini/gemini-2.5-flash" in first.message
    second = undo_last_switch(admin)
    assert (second.active_provider, second.active_model, second.version) == ("local", "local-analyzer-v1", 5)
    with pytest.raises(NotFound, match="no model switch to undo"):
        undo_last_switch(admin)
    entries = list_entries(admin, entity_type="pipeline_config")
    assert [e.action for e in entries] == ["revert", "revert", "model.switch", "model.switch"]
    assert entries[2].reverted_by_id == entries[1].id and entries[3].reverted_by_id == entries[0].id
    assert all(e.reversible for e in entries)


def test_revert_refuses_an_entry_changed_again_since(settings: Settings) -> None:
    org, admin = make_org()
    switch_model(admin, provider="gemini", model="gemini-2.5-flash", fallback_provider=None, expected_version=1)
    older = _entry(org, "model.switch")
    switch_model(admin, provider="gemini", model="gemini-2.0-flash", fallback_provider=None, expected_version=2)
    with pytest.raises(ConflictError, match="changed again since"):
        _revert(admin, older)
    with pytest.raises(PermissionDenied):
        _revert(as_role(admin, "developer"), _entry(org, "model.switch"))
    assert _model(org)[:2] == ("gemini", "gemini-2.0-flash")
    # The newest one reverts; a revert is itself revertible (redo).
    _revert(admin, _entry(org, "model.switch"))
    assert _model(org)[:2] == ("gemini", "gemini-2.5-flash")
    _revert(admin, _entry(org, "revert"))
    assert _model(org)[:2] == ("gemini", "gemini-2.0-flash")


def test_revert_refuses_a_provider_disabled_since(settings: Settings) -> None:
    org, admin = make_org(enabled={"gemini": True, "google-vision": True})
    switch_model(admin, provider="gemini", model="gemini-2.5-flash", fallback_provider=None, expected_version=1)
    switch_model(admin, provider="google-vision", model="builtin/stable", fallback_provider=None, expected_version=2)
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "gemini").values(enabled=False))
    with pytest.raises(ValidationFailed, match="gemini is disabled"):
        undo_last_switch(admin)
    assert _model(org)[0] == "google-vision"


def test_revert_restores_rules_and_leaves_pause_entries_to_the_queue(settings: Settings) -> None:
    org, admin = make_org()
    save_rules(admin, rules=parse_rules({"accept_threshold": 0.9, "reject_threshold": 0.5, "max_retries": 4,
                                         "worker_concurrency": 8}), expected_version=1)
    rules_entry = _entry(org, "rules.update")
    queue_control.pause(admin, reason="maintenance")
    with pytest.raises(ValidationFailed, match="can't be reverted automatically"):
        _revert(admin, _entry(org, "queue.pause"))
    _revert(admin, rules_entry)
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        assert (cfg.accept_threshold, cfg.reject_threshold, cfg.max_retries) == (0.8, 0.4, 3)
        assert cfg.paused


def test_revert_refuses_rules_that_would_contradict_a_later_change(settings: Settings) -> None:
    org, admin = make_org()
    base = {"max_retries": 3, "worker_concurrency": 8}
    save_rules(admin, rules=parse_rules({**base, "accept_threshold": 0.95, "reject_threshold": 0.4}),
               expected_version=1)
    raise_accept = _entry(org, "rules.update")
    save_rules(admin, rules=parse_rules({**base, "accept_threshold": 0.95, "reject_threshold": 0.9}),
               expected_version=2)
    with pytest.raises(ValidationFailed, match=r"accept threshold 0\.8 is below the reject threshold 0\.9"):
        _revert(admin, raise_accept)


def test_cost_projection_known_answers(any_settings: Settings) -> None:
    org, admin = make_org()
    add_result(org, provider="gemini", model="gemini-2.5-flash", input_tokens=1000, output_tokens=300)
    add_result(org, provider="gemini", model="gemini-2.5-flash", input_tokens=1500, output_tokens=500)
    add_result(org, provider="gemini", model="gemini-2.5-flash", status="failed", input_tokens=9000)
    for units in (1, 1, 2):
        add_result(org, provider="google-vision", model="builtin/stable", units=units)
    add_result(org, provider="gemini", model="gemini-2.5-flash", input_tokens=99_999,
               created_at=utcnow() - timedelta(days=8))
    costs = {(c.provider, c.model): c.cost_per_1000_micros for c in projected_cost_per_1000(admin, days=7)}
    # 1,250 input and 400 output tokens per photo -> 1.25M and 0.4M per 1,000 photos.
    assert costs[("gemini", "gemini-2.5-flash")] == 1_375_000  # 1.25 * $0.30 + 0.4 * $2.50
    assert costs[("gemini", "gemini-2.5-flash-lite")] == 285_000  # 1.25 * $0.10 + 0.4 * $0.40
    assert costs[("gemini", "gemini-2.5-pro")] == 5_562_500  # 1.25 * $1.25 + 0.4 * $10.00
    assert costs[("gemini", "gemini-2.0-flash")] == 285_000
    # 4 units / 3 photos -> 1,333 units per 1,000 photos at $1.50 per 1,000 (free tier left out).
    assert costs[("google-vision", "builtin/stable")] == costs[("google-vision", "builtin/latest")] == 1_999_500
    assert costs[("local", "local-analyzer-v1")] == 0
    assert set(costs) == set(model_choices())


def test_cost_projection_without_usage_estimates_from_photo_sizes(settings: Settings) -> None:
    org, admin = make_org()
    add_photo(org, width=300, height=300)  # 258 tokens
    add_photo(org, width=1000, height=800)  # 2 x 2 tiles = 1,032 tokens
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "gemini")
                  .values(price_overrides={"gemini-2.5-pro": {"input_per_m": "1.00"}}))
    rows = {(c.provider, c.model): c for c in projected_cost_per_1000(admin, days=7)}
    # (645 image + 100 prompt) tokens in, 200 out per photo.
    assert rows[("gemini", "gemini-2.5-flash")].cost_per_1000_micros == 723_500  # 0.745 * 0.30 + 0.2 * 2.50
    assert rows[("gemini", "gemini-2.5-pro")].cost_per_1000_micros == 2_745_000  # 0.745 * 1.00 + 0.2 * 10.00
    assert "estimate" in rows[("gemini", "gemini-2.5-flash")].basis
    assert rows[("google-vision", "builtin/stable")].cost_per_1000_micros == 1_500_000  # 1 unit per photo


def test_recent_quality_known_answers(any_settings: Settings) -> None:
    org, admin = make_org()
    for status, conf, ms in (("completed", 0.8, 100), ("completed", 0.6, 200), ("needs_review", 0.7, 300)):
        add_result(org, provider="gemini", model="gemini-2.5-flash", status=status, tags=[("cat", conf)],
                   provider_response_time_ms=ms)
    add_result(org, provider="gemini", model="gemini-2.5-flash", status="failed", provider_response_time_ms=5000)
    add_result(org, tags=[("dog", 0.9)], provider_response_time_ms=40)
    rows = {(q.provider, q.model): q for q in recent_quality(as_role(admin, "viewer"), days=7)}
    gem = rows[("gemini", "gemini-2.5-flash")]
    assert gem.photos == 4
    assert gem.avg_confidence == pytest.approx(0.7)
    assert (gem.needs_review_rate, gem.error_rate) == (0.25, 0.25)
    # Latencies 100 | 200 | 300 ms in buckets <=100, <=250, <=500; rank 2.85 lies 85% into (250, 500].
    assert gem.p95_latency_ms == pytest.approx(462.5)
    local = rows[("local", "local-analyzer-v1")]
    assert (local.photos, local.error_rate, local.p95_latency_ms) == (1, 0.0, pytest.approx(47.5))
