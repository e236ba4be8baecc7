"""The demo boundary: a demo account (its home organization is a demo organization, whose passwords are
published) acts on demo organizations only, whatever the domain API is asked; a real platform_admin is not
limited. Every domain mutation a platform_admin can reach is tried both ways on a real organization."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pipeline_data import make_org
from sqlalchemy import select, update

from aiconsole.admin import reverts, users
from aiconsole.control import pipeline_settings, provider_admin, queue_actions, rules_config
from aiconsole.pipeline import intake
from aiconsole.platform import audit, auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, Base, Photo, PipelineConfig, ProviderConfig
from aiconsole.platform.errors import NotFound, PermissionDenied
from aiconsole.platform.settings import Settings
from aiconsole.prompts import transfer
from aiconsole.prompts import versions as prompts
from aiconsole.providers.samples import sample_photo

PW = "a-good-password"
KEY = "AIzaSyD-unit_test_key_0123456789abcdWXYZ"[:39]
OTHER_KEY = "AIzaSyOther-key_for_replacing_012345qrst"[:39]
PROMPT = "Tag this photo with up to {{ max_tags }} labels."


@dataclass
class World:
    """A demo organization (and a second one), a real organization with its admin, users, prompt and data."""

    demo_org: int
    second_demo_org: int
    real_org: int
    demo_admin: Actor  # the demo's platform_admin, logged in with the published password
    real_admin: Actor  # a real platform_admin (home: the real organization)
    org_admin: Actor  # the real organization's own admin
    users: dict[str, int]
    prompt_id: int
    versions: list[int]
    revertible: int  # an audit entry of the real organization that can be reverted
    export: str  # a prompt export file (from the second demo organization)


def _system_user(org: int, email: str, role: str, password: str | None = None) -> users.UserRow:
    return users.create_user(Actor.system("test", org), email=email, display_name=role, role=role,
                             password=password)


@pytest.fixture
def world(any_settings: Settings) -> World:
    demo = users.create_organization(name="Demo Photos", is_demo=True).id
    second = users.create_organization(name="Second Demo", is_demo=True).id
    real, org_admin = make_org()
    _system_user(demo, "platform@demo.example.com", "platform_admin", PW)
    _system_user(real, "root@real.example.com", "platform_admin")
    people = {name: _system_user(real, f"{name}@real.example.com", "viewer").id
              for name in ("promote", "disable", "reverted")}
    org_admin = dataclasses.replace(org_admin, role="admin")
    provider_admin.set_secret(org_admin, provider="gemini", secret=KEY)
    v1 = prompts.create_prompt(org_admin, name="Tagger", content=PROMPT)
    v2 = prompts.save_version(org_admin, prompt_id=v1.prompt_id, base_version=1, content=PROMPT + " Be brief.",
                              message="shorter")
    prompts.move_label(org_admin, prompt_id=v1.prompt_id, label="production", version_id=v1.id,
                       expected_version=None)
    users.set_role(org_admin, user_id=people["reverted"], role="analyst")
    elsewhere = Actor.system("test", second)
    prompts.create_prompt(elsewhere, name="Imported", content=PROMPT)
    export = transfer.export_prompts(elsewhere)
    with service_session() as s:
        entry = s.scalars(select(AuditLog.id).where(AuditLog.organization_id == real,
                                                    AuditLog.action == "user.set_role")).one()
        s.add(Photo(organization_id=real, sha256="f" * 64, storage_uri="x", filename="failed.jpg",
                    content_type="image/jpeg", byte_size=1, width=1, height=1, status="failed", attempts=3,
                    last_error="boom"))
    return World(demo_org=demo, second_demo_org=second, real_org=real,
                 demo_admin=auth.login(email="platform@demo.example.com", password=PW).actor,
                 real_admin=auth.actor_for_email("root@real.example.com"), org_admin=org_admin, users=people,
                 prompt_id=v1.prompt_id, versions=[v1.id, v2.id], revertible=entry, export=export)


def _config_version(org: int) -> int:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        return 0 if cfg is None else cfg.version


def _provider_version(org: int, provider: str) -> int:
    with service_session() as s:
        version = s.scalar(select(ProviderConfig.version).where(ProviderConfig.organization_id == org,
                                                                ProviderConfig.provider == provider))
        return int(version or 0)


Mutation = Callable[[Actor, World], Any]

# Every domain change a platform_admin can reach, each taking the actor as it acts in the real organization.
# In this order each also succeeds for a real platform_admin, one after the other.
MUTATIONS: list[tuple[str, Mutation]] = [
    ("create user", lambda a, w: users.create_user(a, email="new@real.example.com", display_name="", role="viewer",
                                                   password=None, organization_id=w.real_org)),
    ("create admin", lambda a, w: users.create_user(a, email="boss@real.example.com", display_name="", role="admin",
                                                    password=None, organization_id=w.real_org)),
    ("create platform admin", lambda a, w: users.create_user(a, email="pa@real.example.com", display_name="",
                                                             role="platform_admin", password=None)),
    ("change role", lambda a, w: users.set_role(a, user_id=w.users["promote"], role="admin")),
    ("disable user", lambda a, w: users.set_active(a, user_id=w.users["disable"], active=False)),
    ("set provider key", lambda a, w: provider_admin.set_secret(a, provider="gemini", secret=OTHER_KEY)),
    ("delete provider key", lambda a, w: provider_admin.delete_secret(a, provider="gemini")),
    ("provider settings", lambda a, w: provider_admin.save_provider(
        a, provider="gemini", enabled=True, rate_limit_per_minute=7, timeout_seconds=12.0, max_concurrency=2,
        endpoint=None, region=None, expected_version=_provider_version(w.real_org, "gemini"))),
    ("pause", lambda a, w: queue_actions.pause(a, reason="maintenance")),
    ("resume", lambda a, w: queue_actions.resume(a)),
    ("retry failed", lambda a, w: queue_actions.retry_failed(a)),
    ("rules update", lambda a, w: rules_config.save_rules(
        a, rules=rules_config.parse_rules({"accept_threshold": 0.9, "reject_threshold": 0.3, "max_retries": 2}),
        expected_version=_config_version(w.real_org))),
    ("model switch", lambda a, w: pipeline_settings.switch_model(
        a, provider="gemini", model="gemini-2.5-flash", fallback_provider="local",
        expected_version=_config_version(w.real_org))),
    ("prompt save", lambda a, w: prompts.save_version(a, prompt_id=w.prompt_id, base_version=2,
                                                      content=PROMPT + " Be exact.", message="exact")),
    ("prompt label move", lambda a, w: prompts.move_label(a, prompt_id=w.prompt_id, label="production",
                                                          version_id=w.versions[1], expected_version=1)),
    ("prompt rollback", lambda a, w: prompts.rollback(a, prompt_id=w.prompt_id, version_id=w.versions[0],
                                                      expected_version=2)),
    ("prompt import", lambda a, w: transfer.import_prompts(a, data=w.export)),
    ("revert", lambda a, w: reverts.revert(a, audit_id=w.revertible)),
    ("photo upload", lambda a, w: intake.enqueue_files(a, [("new.jpg", sample_photo("rocket", 1))])),
]


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so 'nothing changed' means nothing at all."""
    with service_session() as s:
        return {t.name: sorted((tuple(r) for r in s.execute(select(t))), key=repr) for t in Base.metadata.sorted_tables}


def test_the_demo_password_gives_a_demo_account(world: World) -> None:
    demo, real = world.demo_admin, world.real_admin
    assert demo.role == "platform_admin" and demo.organization_id == world.demo_org
    assert demo.demo_account and not real.demo_account
    assert demo.demo_organizations == frozenset({world.demo_org, world.second_demo_org})
    assert auth.resume(auth.login(email="platform@demo.example.com", password=PW).token) == demo


def test_a_demo_account_cannot_switch_into_a_real_organization(world: World) -> None:
    with pytest.raises(PermissionDenied, match=r"demo account acts on demo organizations only") as refused:
        world.demo_admin.in_organization(world.real_org)
    assert refused.value.hint
    # Other demo organizations stay open to it, and its own organization too.
    second = world.demo_admin.in_organization(world.second_demo_org)
    assert queue_actions.pause(second, reason="demo drill").affected == 1
    assert second.in_organization(world.demo_org).organization_id == world.demo_org
    # A real platform_admin switches anywhere.
    assert world.real_admin.in_organization(world.real_org).organization_id == world.real_org
    assert world.real_admin.in_organization(world.demo_org).organization_id == world.demo_org


@pytest.mark.parametrize("name", [name for name, _ in MUTATIONS])
def test_a_demo_account_changes_nothing_in_a_real_organization(world: World, name: str) -> None:
    mutation = dict(MUTATIONS)[name]
    # Even an actor forged into the real organization (the switch above is refused) is refused by the service.
    forged = dataclasses.replace(world.demo_admin, organization_id=world.real_org,
                                 home_organization_id=world.demo_org)
    before = _snapshot()
    with pytest.raises(PermissionDenied, match=r"demo account acts on demo organizations only"):
        mutation(forged, world)
    assert _snapshot() == before


@pytest.mark.parametrize("name", ["create user", "create admin", "change role", "disable user"])
def test_a_demo_account_cannot_reach_real_users_from_its_own_organization(world: World, name: str) -> None:
    # The user services re-scope the actor to the target's organization themselves.
    before = _snapshot()
    with pytest.raises(PermissionDenied, match=r"demo account acts on demo organizations only"):
        dict(MUTATIONS)[name](world.demo_admin, world)
    assert _snapshot() == before


def test_a_real_platform_admin_still_makes_every_change(world: World) -> None:
    actor = world.real_admin.in_organization(world.real_org)
    for name, mutation in MUTATIONS:
        before = _snapshot()
        mutation(actor, world)
        assert _snapshot() != before, f"{name} changed nothing"


def test_permission_checks_fail_closed_for_a_demo_account_outside_the_demo(world: World) -> None:
    forged = dataclasses.replace(world.demo_admin, organization_id=world.real_org)
    assert world.demo_admin.allowed("users.manage") and not forged.allowed("users.manage")
    assert not forged.allowed("live_status.view")
    with pytest.raises(PermissionDenied, match=rf"organization #{world.real_org} is not a demo organization"):
        forged.require("live_status.view")
    assert users.list_organizations(world.demo_admin) == [
        o for o in users.list_organizations(world.real_admin) if o.is_demo]
    with pytest.raises(PermissionDenied):
        users.list_organizations(forged)


def test_platform_level_audit_rows_are_for_real_platform_admins_only(world: World) -> None:
    typed = "![x](http://tracker.example/p.png)@evil.example"
    with pytest.raises(auth.AuthError):
        auth.login(email=typed, password="whatever")
    with service_session() as s:
        row = s.scalars(select(AuditLog).where(AuditLog.organization_id.is_(None),
                                               AuditLog.actor == typed)).one()
        row_id = row.id
        # Make the row as findable as possible: in the demo admin's period and matching its filters.
        s.execute(update(AuditLog).where(AuditLog.id == row_id).values(entity_type="user"))
    real, demo = world.real_admin, world.demo_admin
    assert row_id in {e.id for e in audit.list_entries(real)}
    assert typed in audit.actors(real) and "login.failed" in audit.actions(real)
    assert audit.entry_detail(real, audit_id=row_id).entry.actor == typed
    assert row_id not in {e.id for e in audit.list_entries(demo)}
    assert row_id not in {e.id for e in audit.list_entries(demo, actor_email=typed, action="login.failed")}
    assert typed not in audit.actors(demo)
    assert all(e.organization_id == world.demo_org for e in audit.list_entries(demo))
    with pytest.raises(NotFound):
        audit.entry_detail(demo, audit_id=row_id)
