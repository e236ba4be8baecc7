"""The audit log: redaction, diff, transactional writes, and who may read which entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session, service_session
from aiconsole.platform.db.models import AuditLog, Organization
from aiconsole.platform.errors import NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings


def test_redact_hides_credentials_at_any_depth_and_keeps_counts() -> None:
    data = {
        "password": "hunter22",
        "api_key": "AIza-123",
        "provider": {"apiKey": "k", "client_secret": "s", "timeout_seconds": 30},
        "headers": [{"X-Api-Key": "h", "Accept": "json"}],
        "access_token": "t",
        "input_tokens": 1200,
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "price": Decimal("0.001500"),
        "labels": {"b", "a"},
        "password_hash": None,
    }
    assert audit.redact(data) == {
        "password": "[redacted]",
        "api_key": "[redacted]",
        "provider": {"apiKey": "[redacted]", "client_secret": "[redacted]", "timeout_seconds": 30},
        "headers": [{"X-Api-Key": "[redacted]", "Accept": "json"}],
        "access_token": "[redacted]",
        "input_tokens": 1200,
        "when": "2026-01-02T03:04:05+00:00",
        "price": "0.001500",
        "labels": ["a", "b"],
        "password_hash": None,
    }
    assert data["password"] == "hunter22"  # the caller's dict is untouched


def test_decimals_are_stored_as_people_write_them() -> None:
    # A normalized Decimal('600') is Decimal('6E+2'): stored as str() it read "Monthly budget $6E+2".
    assert audit.redact({"monthly_budget_usd": Decimal("600").normalize(), "price": Decimal("1E-6")}) == {
        "monthly_budget_usd": "600", "price": "0.000001"}


def test_diff_lists_changed_fields_with_dotted_paths() -> None:
    before = {"accept_threshold": 0.8, "paused": False, "limits": {"daily": 100, "monthly": 2000}, "gone": 1}
    after = {"accept_threshold": 0.75, "paused": False, "limits": {"daily": 150, "monthly": 2000}, "new": "x"}
    assert audit.diff(before, after) == [
        ("accept_threshold", 0.8, 0.75),
        ("gone", 1, None),
        ("limits.daily", 100, 150),
        ("new", None, "x"),
    ]
    assert audit.diff(None, {"a": 1}) == [("a", None, 1)]
    assert audit.diff({"a": 1}, {"a": 1}) == []
    assert audit.diff({"flag": True}, {"flag": 1}) == [("flag", True, 1)]


def _org(settings: Settings, name: str = "Org") -> int:
    with service_session(engine=get_engine(settings)) as s:
        org = Organization(name=name, slug=name.lower().replace(" ", "-"))
        s.add(org)
        s.flush()
        return org.id


def test_record_writes_in_the_callers_transaction(settings: Settings) -> None:
    org = _org(settings)
    actor = Actor(user_id=None, email="system:test", role="platform_admin", organization_id=org)
    with org_session(org) as s:
        entry_id = audit.record(s, actor=actor, action="provider.update", entity_type="provider_config",
                                entity_id=7, before={"api_key": "old-key", "timeout_seconds": 10},
                                after={"api_key": "new-key", "timeout_seconds": 20}, summary="Raised timeout",
                                reversible=True)
        assert entry_id > 0
    with pytest.raises(RuntimeError), org_session(org) as s:
        audit.record(s, actor=actor, action="doomed", entity_type="x", entity_id=None, before=None,
                     after=None, summary="")
        raise RuntimeError("the change failed, so its entry must go too")
    with service_session() as s:
        rows = list(s.scalars(select(AuditLog)))
    assert len(rows) == 1
    e = rows[0]
    assert (e.organization_id, e.actor, e.entity_id, e.reversible) == (org, "system:test", "7", True)
    assert e.before == {"api_key": "[redacted]", "timeout_seconds": 10}
    assert audit.diff(e.before, e.after) == [("timeout_seconds", 10, 20)]
    with org_session(org) as s, pytest.raises(ValidationFailed):
        audit.record(s, actor=actor, action="", entity_type="x", entity_id=None, before=None, after=None,
                     summary="")


def test_list_entries_filters_scopes_and_refuses(any_settings: Settings) -> None:
    a, b = _org(any_settings, "Org A"), _org(any_settings, "Org B")
    admin_a = Actor(user_id=None, email="admin@a.example.com", role="admin", organization_id=a)
    admin_b = Actor(user_id=None, email="admin@b.example.com", role="admin", organization_id=b)
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    with service_session(engine=get_engine(any_settings)) as s:
        ids = []
        for i in range(5):
            ids.append(audit.record(s, actor=admin_a, action=f"thing.{i}",
                                    entity_type="prompt" if i % 2 else "user", entity_id=i, before=None,
                                    after={"i": i}, summary=f"#{i}"))
        audit.record(s, actor=admin_b, action="b.only", entity_type="user", entity_id=1, before=None,
                     after=None, summary="")
        audit.record_anonymous(s, claimed="ghost@example.com", action="login.failed", entity_type="user",
                               entity_id=None, after={"reason": "unknown email"}, summary="")
        for i, entry_id in enumerate(ids):
            s.execute(update(AuditLog).where(AuditLog.id == entry_id)
                      .values(created_at=t0 + timedelta(hours=i)))
    newest_first = audit.list_entries(admin_a, settings=any_settings)
    assert [e.action for e in newest_first] == [f"thing.{i}" for i in (4, 3, 2, 1, 0)]
    assert [e.action for e in audit.list_entries(admin_a, entity_type="prompt", settings=any_settings)] == [
        "thing.3", "thing.1"]
    window = audit.list_entries(admin_a, since=t0 + timedelta(hours=1), until=t0 + timedelta(hours=3),
                                settings=any_settings)
    assert [e.action for e in window] == ["thing.2", "thing.1"]
    two = audit.list_entries(admin_a, limit=2, settings=any_settings)
    assert [e.action for e in two] == ["thing.4", "thing.3"]
    assert audit.list_entries(admin_a, user_id=12345, settings=any_settings) == []
    assert [e.action for e in audit.list_entries(admin_b, settings=any_settings)] == ["b.only"]
    # A platform admin also sees entries that belong to no organization (unknown-email logins).
    platform = Actor(user_id=None, email="root@example.com", role="platform_admin", organization_id=a)
    assert {e.action for e in audit.list_entries(platform, settings=any_settings)} == {
        "login.failed", *(f"thing.{i}" for i in range(5))}
    # ... but not a demo account's platform admin, whose password is published.
    demo = Actor(user_id=None, email="platform@demo.example.com", role="platform_admin", organization_id=a,
                 demo_organizations=frozenset({a}))
    assert {e.action for e in audit.list_entries(demo, settings=any_settings)} == {f"thing.{i}" for i in range(5)}
    assert "ghost@example.com" not in audit.actors(demo, settings=any_settings)
    for role in ("developer", "analyst", "reviewer", "viewer"):
        reader = Actor(user_id=None, email="x", role=role, organization_id=a)
        with pytest.raises(PermissionDenied, match=r"audit\.view"):
            audit.list_entries(reader, settings=any_settings)
    with pytest.raises(ValidationFailed, match="limit"):
        audit.list_entries(admin_a, limit=0, settings=any_settings)
    with pytest.raises(ValidationFailed, match="after its end"):
        audit.list_entries(admin_a, since=t0, until=t0 - timedelta(days=1), settings=any_settings)
    with service_session(engine=get_engine(any_settings)) as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == 7


def test_list_entries_filters_by_actor_action_and_summary_text(any_settings: Settings) -> None:
    a, b = _org(any_settings, "Org A"), _org(any_settings, "Org B")
    ana = Actor(user_id=None, email="ana@a.example.com", role="admin", organization_id=a)
    ben = Actor(user_id=None, email="ben@a.example.com", role="admin", organization_id=a)
    other = Actor(user_id=None, email="zed@b.example.com", role="admin", organization_id=b)
    worker = Actor.system("worker", a)
    with service_session(engine=get_engine(any_settings)) as s:
        for who, action, entity, summary in [
            (ana, "user.set_role", "user", "Changed bo's role from viewer to analyst"),
            (ben, "queue.pause", "pipeline_config", "Paused processing: 100% of budget_daily spent"),
            (worker, "queue.pause", "pipeline_config", "Paused processing automatically: provider down"),
            (ana, "user.disable", "user", "Disabled bo@a.example.com; ended 1 session(s)"),
            (other, "queue.pause", "pipeline_config", "Paused processing in B"),
        ]:
            audit.record(s, actor=who, action=action, entity_type=entity, entity_id=1, before=None, after=None,
                         summary=summary)

    def summaries(**filters: object) -> list[str]:
        return [e.summary for e in audit.list_entries(ana, settings=any_settings, **filters)]  # type: ignore[arg-type]

    assert summaries(actor_email="ana@a.example.com") == [
        "Disabled bo@a.example.com; ended 1 session(s)", "Changed bo's role from viewer to analyst"]
    assert summaries(action="queue.pause") == [
        "Paused processing automatically: provider down", "Paused processing: 100% of budget_daily spent"]
    assert summaries(search="  PAUSED processing: ") == ["Paused processing: 100% of budget_daily spent"]
    # LIKE wildcards in the search text are literal characters.
    assert summaries(search="100%") == ["Paused processing: 100% of budget_daily spent"]
    assert summaries(search="%") == ["Paused processing: 100% of budget_daily spent"]
    assert summaries(search="budget_d") == ["Paused processing: 100% of budget_daily spent"]
    assert summaries(search="t_d") == ["Paused processing: 100% of budget_daily spent"]
    assert summaries(search="o's") == ["Changed bo's role from viewer to analyst"]
    assert summaries(search="nothing like this") == []
    assert summaries(action="queue.pause", actor_email="system:worker", entity_type="pipeline_config") == [
        "Paused processing automatically: provider down"]
    with pytest.raises(ValidationFailed, match="search text is longer than 200"):
        audit.list_entries(ana, search="x" * 201, settings=any_settings)

    # Filter choices: DISTINCT, sorted, this organization only.
    assert audit.entity_types(ana, settings=any_settings) == ["pipeline_config", "user"]
    assert audit.actors(ana, settings=any_settings) == ["ana@a.example.com", "ben@a.example.com", "system:worker"]
    assert audit.actions(ana, settings=any_settings) == ["queue.pause", "user.disable", "user.set_role"]
    assert audit.actors(other, settings=any_settings) == ["zed@b.example.com"]
    viewer = Actor(user_id=None, email="v@a.example.com", role="viewer", organization_id=a)
    for choices in (audit.entity_types, audit.actors, audit.actions):
        with pytest.raises(PermissionDenied, match=r"audit\.view"):
            choices(viewer, settings=any_settings)


def test_entry_detail_links_reverts_and_stays_in_the_organization(settings: Settings) -> None:
    a, b = _org(settings, "Org A"), _org(settings, "Org B")
    admin = Actor(user_id=None, email="ana@a.example.com", role="admin", organization_id=a)
    with service_session(engine=get_engine(settings)) as s:
        change = audit.record(s, actor=admin, action="x.set", entity_type="x", entity_id=1, before={"v": 1},
                              after={"v": 2}, summary="set", reversible=True)
        undo = audit.record(s, actor=admin, action="revert", entity_type="x", entity_id=1, before={"v": 2},
                            after={"v": 1}, summary="undo", reversible=True)
        s.execute(update(AuditLog).where(AuditLog.id == change).values(reverted_by_id=undo))
    detail = audit.entry_detail(admin, audit_id=change, settings=settings)
    assert (detail.entry.id, detail.reverts) == (change, None)
    assert detail.reverted_by is not None and detail.reverted_by.summary == "undo"
    back = audit.entry_detail(admin, audit_id=undo, settings=settings)
    assert back.reverted_by is None and back.reverts == detail.entry
    outsider = Actor(user_id=None, email="zed@b.example.com", role="admin", organization_id=b)
    with pytest.raises(NotFound, match=f"no audit entry #{change}"):
        audit.entry_detail(outsider, audit_id=change, settings=settings)
    with pytest.raises(PermissionDenied):
        audit.entry_detail(Actor(user_id=None, email="d", role="developer", organization_id=a), audit_id=change,
                           settings=settings)
