"""Reverting audited changes: user role and status, pause/resume, and every refusal (conflict, not reversible,
already reverted, another organization, a role without audit.revert)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pipeline_data import as_role, make_org
from sqlalchemy import func, select

from aiconsole.admin import reverts, users
from aiconsole.control import pipeline_settings, provider_admin, rules_config
from aiconsole.control import queue_actions as queue_control
from aiconsole.pipeline import config_row
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session, service_session
from aiconsole.platform.db.models import AuditLog, PipelineConfig
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts import versions as prompts

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Tag this photo with up to {max_tags} labels."
GEMINI_KEY = "AIzaSyD-revert_test_key_0123456789abWXYZ"[:39]


def _actor(row: users.UserRow) -> Actor:
    return Actor(user_id=row.id, email=row.email, role=row.role, organization_id=row.organization_id)


def _world(settings: Settings) -> dict[str, users.UserRow]:
    """Org A with an admin, a developer and a viewer; org B with an admin."""
    a = users.create_organization(name="Org A", settings=settings)
    b = users.create_organization(name="Org B", settings=settings)
    out = {role: users.create_user(Actor.system("test", a.id), email=f"{role}@a.example.com", display_name=role,
                                   role=role, password=None, settings=settings)
           for role in ("admin", "developer", "viewer")}
    out["b_admin"] = users.create_user(Actor.system("test", b.id), email="admin@b.example.com",
                                       display_name="B", role="admin", password=None, settings=settings)
    return out


@pytest.fixture
def world(settings: Settings) -> dict[str, users.UserRow]:
    """The `_world` on SQLite (the tests that matter on PostgreSQL too build it on `any_settings`)."""
    return _world(settings)


def _latest(actor: Actor, settings: Settings) -> audit.AuditRow:
    return audit.list_entries(actor, limit=1, settings=settings)[0]


def _user(actor: Actor, user_id: int) -> users.UserRow:
    return next(u for u in users.list_users(actor) if u.id == user_id)


def _entry_count(settings: Settings) -> int:
    with service_session(engine=get_engine(settings)) as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def test_role_change_revert_restores_it_and_is_itself_audited(any_settings: Settings) -> None:
    world = _world(any_settings)
    admin, viewer = _actor(world["admin"]), world["viewer"]
    users.set_role(admin, user_id=viewer.id, role="analyst", settings=any_settings)
    change = _latest(admin, any_settings)
    assert (change.action, change.reversible) == ("user.set_role", True)

    result = reverts.revert(admin, audit_id=change.id, settings=any_settings)
    assert _user(admin, viewer.id).role == "viewer"
    assert (result.original_id, result.entity_type, result.entity_id) == (change.id, "user", str(viewer.id))
    assert f"#{change.id}" in result.message and f"#{result.revert_id}" in result.message
    detail = audit.entry_detail(admin, audit_id=change.id, settings=any_settings)
    assert detail.reverted_by is not None and detail.reverted_by.id == result.revert_id
    undo = detail.reverted_by
    assert (undo.action, undo.entity_type, undo.actor, undo.reversible) == ("revert", "user", admin.email, True)
    assert audit.diff(undo.before, undo.after) == [("role", "analyst", "viewer"), ("sessions_ended", None, 0)]
    assert audit.entry_detail(admin, audit_id=undo.id, settings=any_settings).reverts == detail.entry

    # A revert is reversible too: reverting it brings the change back.
    reverts.revert(admin, audit_id=undo.id, settings=any_settings)
    assert _user(admin, viewer.id).role == "analyst"


def test_disable_and_enable_are_reverted(world: dict[str, users.UserRow], settings: Settings) -> None:
    admin, dev = _actor(world["admin"]), world["developer"]
    users.set_active(admin, user_id=dev.id, active=False, settings=settings)
    disable = _latest(admin, settings)
    reverts.revert(admin, audit_id=disable.id, settings=settings)
    assert _user(admin, dev.id).is_active

    users.set_active(admin, user_id=dev.id, active=False, settings=settings)
    users.set_active(admin, user_id=dev.id, active=True, settings=settings)
    enable = _latest(admin, settings)
    assert enable.action == "user.enable"
    reverts.revert(admin, audit_id=enable.id, settings=settings)
    assert not _user(admin, dev.id).is_active


def test_user_revert_keeps_the_last_admin_and_self_disable_rules(world: dict[str, users.UserRow],
                                                                 settings: Settings) -> None:
    admin, viewer = _actor(world["admin"]), world["viewer"]
    users.set_role(admin, user_id=viewer.id, role="admin", settings=settings)
    promotion = _latest(admin, settings)
    new_admin = Actor(user_id=viewer.id, email=viewer.email, role="admin", organization_id=viewer.organization_id)
    users.set_active(new_admin, user_id=admin.user_id or 0, active=False, settings=settings)
    # Undoing the promotion now would leave the organization without an active admin.
    with pytest.raises(ValidationFailed, match="last active admin"):
        reverts.revert(new_admin, audit_id=promotion.id, settings=settings)
    assert _user(new_admin, viewer.id).role == "admin"
    assert audit.entry_detail(new_admin, audit_id=promotion.id, settings=settings).reverted_by is None

    # Reverting the enable of your own account would disable yourself.
    users.set_active(new_admin, user_id=admin.user_id or 0, active=True, settings=settings)
    users.set_active(_actor(world["admin"]), user_id=viewer.id, active=False, settings=settings)
    users.set_active(_actor(world["admin"]), user_id=viewer.id, active=True, settings=settings)
    enable = _latest(new_admin, settings)
    with pytest.raises(ValidationFailed, match="your own account"):
        reverts.revert(new_admin, audit_id=enable.id, settings=settings)


def test_conflict_when_the_user_changed_again_since(world: dict[str, users.UserRow], settings: Settings) -> None:
    admin, viewer = _actor(world["admin"]), world["viewer"]
    users.set_role(admin, user_id=viewer.id, role="analyst", settings=settings)
    first = _latest(admin, settings)
    users.set_role(admin, user_id=viewer.id, role="reviewer", settings=settings)
    second = _latest(admin, settings)
    count = _entry_count(settings)
    with pytest.raises(ConflictError, match=r"role changed again since entry #\d+.*Revert the later change first"):
        reverts.revert(admin, audit_id=first.id, settings=settings)
    assert _entry_count(settings) == count  # nothing written half-way
    assert _user(admin, viewer.id).role == "reviewer"
    # In order, newest first, both undo cleanly.
    reverts.revert(admin, audit_id=second.id, settings=settings)
    reverts.revert(admin, audit_id=first.id, settings=settings)
    assert _user(admin, viewer.id).role == "viewer"


def _config(org: int) -> PipelineConfig:
    with org_session(org) as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        return cfg


def test_pause_and_resume_are_reverted(any_settings: Settings) -> None:
    world = _world(any_settings)
    admin = _actor(world["admin"])
    org = admin.organization_id
    queue_control.pause(admin, reason="budget review")
    pause = _latest(admin, any_settings)
    version = _config(org).version
    reverts.revert(admin, audit_id=pause.id, settings=any_settings)
    cfg = _config(org)
    assert (cfg.paused, cfg.pause_reason, cfg.version) == (False, None, version + 1)

    queue_control.pause(admin, reason="new model rollout")
    queue_control.resume(admin)
    resume = _latest(admin, any_settings)
    undo = reverts.revert(admin, audit_id=resume.id, settings=any_settings)
    cfg = _config(org)
    assert cfg.paused and cfg.pause_reason == f"Paused by {admin.email}: new model rollout"
    # Reverting that revert resumes again: the chain still belongs to the queue, not to pipeline settings.
    reverts.revert(admin, audit_id=undo.revert_id, settings=any_settings)
    assert not _config(org).paused


def test_reverting_a_resume_restores_the_pause_kind(settings: Settings) -> None:
    world = _world(settings)
    admin = _actor(world["admin"])
    org = admin.organization_id
    with org_session(org) as s:
        s.add(PipelineConfig(organization_id=org))
    assert config_row.auto_pause_org(org, kind=config_row.DAILY_BUDGET, reason="Daily budget of $1.00 reached.")
    queue_control.resume(admin)
    reverts.revert(admin, audit_id=_latest(admin, settings).id, settings=settings)
    cfg = _config(org)
    assert (cfg.paused, cfg.pause_kind, cfg.pause_reason) == (True, "daily_budget", "Daily budget of $1.00 reached.")
    # An entry written before pause kinds were recorded comes back as a person's pause.
    queue_control.resume(admin)
    resume = _latest(admin, settings)
    with service_session() as s:
        row = s.get(AuditLog, resume.id)
        assert row is not None
        row.before = {"paused": True, "pause_reason": "Daily budget of $1.00 reached."}
        row.after = {"paused": False, "pause_reason": None}
    reverts.revert(admin, audit_id=resume.id, settings=settings)
    assert (_config(org).paused, _config(org).pause_kind) == (True, "manual")


def test_automatic_pause_is_reverted_and_conflicts_once_resumed(world: dict[str, users.UserRow],
                                                                settings: Settings) -> None:
    admin = _actor(world["admin"])
    with org_session(admin.organization_id) as s:
        s.add(PipelineConfig(organization_id=admin.organization_id))
    assert config_row.auto_pause_org(admin.organization_id, kind=config_row.CIRCUIT_OPEN,
                                     reason="provider google_vision is down")
    auto = _latest(admin, settings)
    assert auto.actor == "system:worker"
    queue_control.resume(admin)
    with pytest.raises(ConflictError, match="paused or resumed again since"):
        reverts.revert(admin, audit_id=auto.id, settings=settings)
    queue_control.pause(admin, reason="checking")
    with pytest.raises(ConflictError, match="paused or resumed again since"):
        reverts.revert(admin, audit_id=auto.id, settings=settings)


def test_refusals(world: dict[str, users.UserRow], settings: Settings) -> None:
    admin, viewer = _actor(world["admin"]), world["viewer"]
    created = audit.list_entries(admin, action="user.create", limit=1, settings=settings)[0]
    with pytest.raises(ValidationFailed, match="cannot be reverted"):
        reverts.revert(admin, audit_id=created.id, settings=settings)

    users.set_role(admin, user_id=viewer.id, role="analyst", settings=settings)
    change = _latest(admin, settings)
    for role in ("developer", "viewer", "analyst", "reviewer"):
        with pytest.raises(PermissionDenied, match=r"audit\.revert"):
            reverts.revert(Actor(user_id=None, email="x@a.example.com", role=role,
                                 organization_id=admin.organization_id), audit_id=change.id, settings=settings)
    with pytest.raises(NotFound, match=f"no audit entry #{change.id}"):
        reverts.revert(_actor(world["b_admin"]), audit_id=change.id, settings=settings)
    with pytest.raises(NotFound):
        reverts.revert(admin, audit_id=10**9, settings=settings)

    first = reverts.revert(admin, audit_id=change.id, settings=settings)
    with pytest.raises(ConflictError, match=rf"already reverted by {admin.email} .*entry #{first.revert_id}"):
        reverts.revert(admin, audit_id=change.id, settings=settings)


def test_entity_types_without_a_revert_are_refused(world: dict[str, users.UserRow], settings: Settings) -> None:
    admin = _actor(world["admin"])
    with org_session(admin.organization_id) as s:
        odd = audit.record(s, actor=admin, action="widget.tweak", entity_type="widget", entity_id=1,
                           before={"a": 1}, after={"a": 2}, summary="", reversible=True)
    with pytest.raises(ValidationFailed, match="'widget' cannot be reverted from the audit log yet"):
        reverts.revert(admin, audit_id=odd, settings=settings)
    assert reverts.owner("pipeline_config", "queue.pause") is queue_control.revert_audit
    assert reverts.owner("pipeline_config", "pipeline.rules") is pipeline_settings.revert_audit
    assert reverts.owner("widget", "widget.tweak") is None


# One revert per owning module, through the audit log's dispatcher.


def _pipeline(org: int) -> PipelineConfig:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        return cfg


def test_model_switch_and_rules_are_reverted_by_pipeline_settings(settings: Settings) -> None:
    org, admin = make_org()
    pipeline_settings.switch_model(admin, provider="gemini", model="gemini-2.5-pro", fallback_provider="local",
                                   expected_version=1)
    switch = _latest(admin, settings)
    rules_config.save_rules(admin, rules=rules_config.parse_rules(
        {"accept_threshold": 0.9, "reject_threshold": 0.5, "max_retries": 4, "worker_concurrency": 8}),
        expected_version=2)
    rules = _latest(admin, settings)
    assert (switch.action, rules.action) == ("model.switch", "rules.update")

    reverts.revert(admin, audit_id=rules.id, settings=settings)
    reverts.revert(admin, audit_id=switch.id, settings=settings)
    cfg = _pipeline(org)
    assert (cfg.active_provider, cfg.active_model, cfg.fallback_provider) == ("local", "local-analyzer-v1", None)
    assert (cfg.accept_threshold, cfg.reject_threshold, cfg.max_retries) == (0.8, 0.4, 3)
    assert [e.action for e in audit.list_entries(admin, action="revert", settings=settings)] == ["revert", "revert"]
    with pytest.raises(PermissionDenied):
        reverts.revert(as_role(admin, "developer"), audit_id=switch.id, settings=settings)


def test_prompt_label_move_is_reverted_by_prompts(settings: Settings) -> None:
    _org_id, admin = make_org(config=False)
    v1 = prompts.create_prompt(admin, name="tagger", content=PROMPT, settings=settings)
    v2 = prompts.save_version(admin, prompt_id=v1.prompt_id, base_version=1, content=PROMPT + " Be brief.",
                              message="shorter", settings=settings)
    prompts.move_label(admin, prompt_id=v1.prompt_id, label="production", version_id=v1.id, expected_version=None,
                       settings=settings)
    prompts.move_label(admin, prompt_id=v1.prompt_id, label="production", version_id=v2.id, expected_version=1,
                       settings=settings)
    move = _latest(admin, settings)
    assert move.entity_type == "prompt_label"

    reverts.revert(admin, audit_id=move.id, settings=settings)
    labels = {v.version: v.labels for v in prompts.list_versions(admin, prompt_id=v1.prompt_id, settings=settings)}
    assert labels == {1: ("production",), 2: ()}


def test_provider_settings_change_is_reverted_by_provider_admin_and_a_key_change_is_not(settings: Settings) -> None:
    _org_id, admin = make_org()
    row = provider_admin.get_provider(admin, provider="gemini", settings=settings)
    provider_admin.save_provider(admin, provider="gemini", enabled=True, rate_limit_per_minute=120,
                                 timeout_seconds=row.timeout_seconds, max_concurrency=row.max_concurrency,
                                 endpoint=row.endpoint, region=row.region, expected_version=row.version,
                                 settings=settings)
    change = _latest(admin, settings)
    assert (change.entity_type, change.after) == ("provider_config", {"rate_limit_per_minute": 120})
    reverts.revert(admin, audit_id=change.id, settings=settings)
    assert provider_admin.get_provider(admin, provider="gemini", settings=settings).rate_limit_per_minute == (
        row.rate_limit_per_minute)

    provider_admin.set_secret(admin, provider="gemini", secret=GEMINI_KEY, settings=settings)
    key_change = _latest(admin, settings)
    assert GEMINI_KEY not in str(key_change)
    with pytest.raises(ValidationFailed, match="cannot be reverted"):
        reverts.revert(admin, audit_id=key_change.id, settings=settings)


def test_the_demo_organizations_latest_label_move_can_be_reverted(settings: Settings) -> None:
    """The demo writes label moves in the shape prompts.move_label does, so Revert works on the latest one."""
    from aiconsole.demo.seed import seed_demo
    from aiconsole.platform.db.models import PromptLabel, PromptVersion, User

    seed_demo(settings=settings, days=1)
    with service_session() as s:
        admin = s.scalars(select(User).where(User.role == "admin")).one()
        actor = Actor(user_id=admin.id, email=admin.email, role="admin", organization_id=admin.organization_id)
        moves = s.scalars(select(AuditLog).where(AuditLog.action == "prompt.label", AuditLog.reversible.is_(True))
                          .where(AuditLog.entity_type == "prompt_label")).all()
        superseded = s.scalar(select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "prompt.label", AuditLog.reversible.is_(False)))
    assert moves and superseded  # one reversible entry per label; earlier moves are not
    entry = next(m for m in moves if m.before is not None and m.after["label"] == "production")
    reverts.revert(actor, audit_id=entry.id)
    with service_session() as s:
        now_points_at = s.scalar(select(PromptVersion.version)
                                 .join(PromptLabel, PromptLabel.version_id == PromptVersion.id)
                                 .where(PromptLabel.prompt_id == entry.before["prompt_id"],
                                        PromptLabel.label == "production"))
    assert now_points_at == entry.before["version"]


def _reversible_entity_types() -> set[str]:
    """Every entity type the code records audit entries for that may be reversible (reversible= not False)."""
    found: set[str] = set()
    for path in (ROOT / "aiconsole").rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "record"):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            flag, entity = kw.get("reversible"), kw.get("entity_type")
            if flag is None or (isinstance(flag, ast.Constant) and flag.value is False) or entity is None:
                continue
            value = entity.value if isinstance(entity, ast.Constant) else constants.get(getattr(entity, "id", ""))
            assert isinstance(value, str), f"{path}: entity_type {ast.unparse(entity)} is not a literal or constant"
            found.add(value)
    return found


def test_every_entity_type_recorded_as_reversible_has_an_owner() -> None:
    kinds = _reversible_entity_types()
    assert {"pipeline_config", "prompt_label", "provider_config", "user"} <= kinds  # the scan sees them
    assert kinds <= set(reverts.OWNERS), f"no revert_audit owner for {sorted(kinds - set(reverts.OWNERS))}"
    assert all(callable(f) for f in [*reverts.OWNERS.values(), *reverts.ACTION_OWNERS.values()])
