"""Organizations and users: validation, permissions per role, org boundaries, the last-admin rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.platform import audit, auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import ROLES, AuditLog, User
from aiconsole.platform.errors import AuthError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings

PW = "a-good-password"


def _actor(row: users.UserRow) -> Actor:
    return Actor(user_id=row.id, email=row.email, role=row.role, organization_id=row.organization_id)


@pytest.fixture
def world(any_settings: Settings) -> dict[str, users.UserRow]:
    """Org A with one user per role, org B with one admin; keyed by role (B's admin as 'b_admin')."""
    a = users.create_organization(name="Org A", settings=any_settings)
    b = users.create_organization(name="Org B", timezone="Europe/Berlin", settings=any_settings)
    out = {}
    for role in ROLES:
        out[role] = users.create_user(Actor.system("test", a.id), email=f"{role}@a.example.com",
                                      display_name=role.title(), role=role, password=PW,
                                      settings=any_settings)
    out["b_admin"] = users.create_user(Actor.system("test", b.id), email="admin@b.example.com",
                                       display_name="B Admin", role="admin", password=PW,
                                       settings=any_settings)
    return out


def test_organizations_get_unique_slugs_and_valid_time_zones(settings: Settings) -> None:
    one = users.create_organization(name="  Demo   Photos Inc. ", settings=settings)
    assert (one.name, one.slug, one.timezone, one.is_demo) == (
        "Demo Photos Inc.", "demo-photos-inc", "UTC", False)
    two = users.create_organization(name="Demo Photos, Inc", is_demo=True, settings=settings)
    assert two.slug == "demo-photos-inc-2" and two.is_demo
    with pytest.raises(ValidationFailed, match="already exists"):
        users.create_organization(name="demo photos inc.", settings=settings)
    with pytest.raises(ValidationFailed, match="Unknown time zone 'Mars/Base'"):
        users.create_organization(name="Elsewhere", timezone="Mars/Base", settings=settings)
    with pytest.raises(ValidationFailed, match="empty"):
        users.create_organization(name="   ", settings=settings)
    assert users.find_organization(ref="DEMO PHOTOS INC.", settings=settings).id == one.id
    assert users.find_organization(ref="demo-photos-inc-2", settings=settings).id == two.id
    assert users.find_organization(ref=str(two.id), settings=settings).id == two.id
    with pytest.raises(NotFound, match=r"Existing: Demo Photos Inc\., Demo Photos, Inc"):
        users.find_organization(ref="Nope", settings=settings)


def test_create_user_validates_email_role_password_and_duplicates(world: dict[str, users.UserRow],
                                                                  any_settings: Settings) -> None:
    admin = _actor(world["admin"])
    row = users.create_user(admin, email="  New.Person@Example.COM", display_name="", role="viewer",
                            password=PW, settings=any_settings)
    assert (row.email, row.display_name, row.role, row.is_active, row.has_password) == (
        "new.person@example.com", "new.person", "viewer", True, True)
    with pytest.raises(ValidationFailed, match="not a valid email address"):
        users.create_user(admin, email="no-at-sign", display_name="x", role="viewer", password=PW,
                          settings=any_settings)
    with pytest.raises(ValidationFailed, match="Unknown role 'owner'") as bad_role:
        users.create_user(admin, email="x@example.com", display_name="x", role="owner", password=PW,
                          settings=any_settings)
    assert "analyst" in (bad_role.value.hint or "")
    with pytest.raises(ValidationFailed, match="too short"):
        users.create_user(admin, email="x@example.com", display_name="x", role="viewer", password="short",
                          settings=any_settings)
    # Emails are unique across organizations, whatever the case.
    with pytest.raises(ValidationFailed, match="already exists"):
        users.create_user(admin, email="ADMIN@b.example.com", display_name="x", role="viewer", password=PW,
                          settings=any_settings)
    assert users.find_user(email="x@example.com", settings=any_settings) is None


@pytest.mark.parametrize("role", ["developer", "analyst", "reviewer", "viewer"])
def test_non_admin_roles_cannot_manage_users(world: dict[str, users.UserRow], any_settings: Settings,
                                             role: str) -> None:
    actor = _actor(world[role])
    target = world["viewer"].id if role != "viewer" else world["reviewer"].id
    with pytest.raises(PermissionDenied, match=rf"Your role \({role}\) cannot do this \(users.manage\)"):
        users.create_user(actor, email="x@example.com", display_name="x", role="viewer", password=PW,
                          settings=any_settings)
    with pytest.raises(PermissionDenied, match=r"users\.view"):
        users.list_users(actor, settings=any_settings)
    with pytest.raises(PermissionDenied):
        users.set_active(actor, user_id=target, active=False, settings=any_settings)
    with pytest.raises(PermissionDenied):
        users.set_role(actor, user_id=target, role="admin", settings=any_settings)
    assert users.find_user(email="x@example.com", settings=any_settings) is None
    assert [o.name for o in users.list_organizations(actor, settings=any_settings)] == ["Org A"]


def test_admin_acts_only_in_their_own_organization(world: dict[str, users.UserRow],
                                                   any_settings: Settings) -> None:
    admin, b_admin = _actor(world["admin"]), world["b_admin"]
    with pytest.raises(PermissionDenied, match=r"orgs\.switch"):
        users.create_user(admin, email="x@example.com", display_name="x", role="viewer", password=PW,
                          organization_id=b_admin.organization_id, settings=any_settings)
    with pytest.raises(PermissionDenied, match=r"orgs\.switch"):
        users.list_users(admin, organization_id=b_admin.organization_id, settings=any_settings)
    with pytest.raises(NotFound, match=f"no user #{b_admin.id} in your organization"):
        users.set_active(admin, user_id=b_admin.id, active=False, settings=any_settings)
    with pytest.raises(NotFound):
        users.set_role(admin, user_id=b_admin.id, role="viewer", settings=any_settings)
    with pytest.raises(NotFound):
        users.set_role(admin, user_id=999_999, role="viewer", settings=any_settings)
    emails = [u.email for u in users.list_users(admin, settings=any_settings)]
    assert emails == sorted(f"{r}@a.example.com" for r in ROLES)


def test_platform_admin_acts_in_any_organization(world: dict[str, users.UserRow],
                                                 any_settings: Settings) -> None:
    pa, b_admin = _actor(world["platform_admin"]), world["b_admin"]
    b = b_admin.organization_id
    row = users.create_user(pa, email="new@b.example.com", display_name="New", role="analyst", password=PW,
                            organization_id=b, settings=any_settings)
    assert row.organization_id == b
    assert [u.email for u in users.list_users(pa, organization_id=b, settings=any_settings)] == [
        "admin@b.example.com", "new@b.example.com"]
    assert users.set_role(pa, user_id=row.id, role="developer", settings=any_settings).role == "developer"
    assert [o.name for o in users.list_organizations(pa, settings=any_settings)] == ["Org A", "Org B"]
    # The entries land in org B's log, done by the platform admin.
    entries = audit.list_entries(_actor(b_admin), entity_type="user", settings=any_settings)
    assert [(e.action, e.actor) for e in entries] == [("user.set_role", "platform_admin@a.example.com"),
                                                      ("user.create", "platform_admin@a.example.com"),
                                                      ("user.create", "system:test")]


def test_only_platform_admins_touch_the_platform_admin_role(world: dict[str, users.UserRow],
                                                            any_settings: Settings) -> None:
    admin = _actor(world["admin"])
    with pytest.raises(PermissionDenied, match="Only a platform admin"):
        users.create_user(admin, email="x@example.com", display_name="x", role="platform_admin", password=PW,
                          settings=any_settings)
    with pytest.raises(PermissionDenied, match="Only a platform admin"):
        users.set_role(admin, user_id=world["viewer"].id, role="platform_admin", settings=any_settings)
    with pytest.raises(PermissionDenied, match="Only a platform admin"):
        users.set_active(admin, user_id=world["platform_admin"].id, active=False, settings=any_settings)


def test_admin_cannot_disable_themselves(world: dict[str, users.UserRow], any_settings: Settings) -> None:
    admin = _actor(world["admin"])
    with pytest.raises(ValidationFailed, match="cannot disable your own account"):
        users.set_active(admin, user_id=admin.user_id or 0, active=False, settings=any_settings)
    assert users.find_user(email="admin@a.example.com", settings=any_settings).is_active  # type: ignore[union-attr]


def test_the_last_active_admin_stays(world: dict[str, users.UserRow], any_settings: Settings) -> None:
    b_admin = world["b_admin"]
    pa = _actor(world["platform_admin"])
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_active(pa, user_id=b_admin.id, active=False, settings=any_settings)
    with pytest.raises(ValidationFailed, match="last active admin") as demote:
        users.set_role(pa, user_id=b_admin.id, role="viewer", settings=any_settings)
    assert demote.value.hint == "Make another user an admin first."
    # With a second admin, the first may go.
    second = users.create_user(pa, email="second@b.example.com", display_name="2nd", role="viewer",
                               password=PW, organization_id=b_admin.organization_id, settings=any_settings)
    users.set_role(pa, user_id=second.id, role="admin", settings=any_settings)
    assert users.set_role(pa, user_id=b_admin.id, role="analyst", settings=any_settings).role == "analyst"
    # ...and now the second one is the last.
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_active(pa, user_id=second.id, active=False, settings=any_settings)
    # A disabled admin does not count as the one that stays: in org A, once its admin is disabled,
    # the platform admin is the last one and cannot step down.
    users.set_active(pa, user_id=world["admin"].id, active=False, settings=any_settings)
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_role(pa, user_id=pa.user_id or 0, role="viewer", settings=any_settings)


def test_disable_ends_sessions_and_enable_clears_lockout(world: dict[str, users.UserRow],
                                                         any_settings: Settings) -> None:
    admin, viewer = _actor(world["admin"]), world["viewer"]
    token = auth.login(email=viewer.email, password=PW, settings=any_settings).token
    row = users.set_active(admin, user_id=viewer.id, active=False, settings=any_settings)
    assert not row.is_active
    with pytest.raises(AuthError, match="logged out"):
        auth.resume(token, settings=any_settings)
    # Disabling twice changes nothing and writes nothing.
    users.set_active(admin, user_id=viewer.id, active=False, settings=any_settings)
    for _ in range(any_settings.login_max_failures):
        with pytest.raises(AuthError):
            auth.login(email=viewer.email, password="wrong-password", settings=any_settings)
    assert users.find_user(email=viewer.email, settings=any_settings).locked_until is not None  # type: ignore[union-attr]
    row = users.set_active(admin, user_id=viewer.id, active=True, settings=any_settings)
    assert (row.is_active, row.locked_until, row.failed_logins) == (True, None, 0)
    auth.login(email=viewer.email, password=PW, settings=any_settings)
    entries = [e for e in audit.list_entries(admin, entity_type="user", settings=any_settings)
               if e.entity_id == str(viewer.id) and e.action.startswith("user.")]
    assert [e.action for e in entries] == ["user.enable", "user.disable", "user.create"]
    assert entries[1].after is not None and entries[1].after["sessions_ended"] == 1
    assert entries[0].reversible and "cleared the login lockout" in entries[0].summary


def test_user_changes_are_audited_without_the_password_hash(world: dict[str, users.UserRow],
                                                           any_settings: Settings) -> None:
    admin = _actor(world["admin"])
    row = users.create_user(admin, email="aud@example.com", display_name="Aud", role="viewer", password=PW,
                            settings=any_settings)
    users.set_role(admin, user_id=row.id, role="reviewer", settings=any_settings)
    with service_session(engine=get_engine(any_settings)) as s:
        entries = list(s.scalars(select(AuditLog).where(AuditLog.entity_id == str(row.id))
                                 .order_by(AuditLog.id)))
        stored_hash = s.scalar(select(User.password_hash).where(User.id == row.id))
    assert [(e.action, e.user_id, e.organization_id) for e in entries] == [
        ("user.create", admin.user_id, admin.organization_id),
        ("user.set_role", admin.user_id, admin.organization_id)]
    assert entries[0].after == {"email": "aud@example.com", "display_name": "Aud", "role": "viewer",
                                "is_active": True, "organization_id": admin.organization_id,
                                "sign_in": "password"}
    assert (entries[1].before, entries[1].after) == ({"role": "viewer"}, {"role": "reviewer"})
    assert stored_hash and stored_hash not in str([e.after for e in entries])
