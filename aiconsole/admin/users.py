"""Organizations and user accounts: create, list, enable/disable, change role. Every change is audited.

An admin manages users of their own organization; a platform_admin manages any organization and is the
only one who may grant or change the platform_admin role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.platform import audit, auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session, service_session
from aiconsole.platform.db.models import ROLES, Organization, User
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.formatting import plural
from aiconsole.platform.passwords import hash_password
from aiconsole.platform.settings import Settings

ADMIN_ROLES = frozenset({"admin", "platform_admin"})
MAX_NAME = 200
_email = TypeAdapter(EmailStr)


@dataclass(frozen=True)
class UserRow:
    """A user account as the console lists it (never the password hash)."""

    id: int
    organization_id: int
    email: str
    display_name: str
    role: str
    is_active: bool
    has_password: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class OrganizationRow:
    """An organization (tenant)."""

    id: int
    name: str
    slug: str
    timezone: str
    is_demo: bool
    created_at: datetime


def _user_row(u: User) -> UserRow:
    return UserRow(id=u.id, organization_id=u.organization_id, email=u.email, display_name=u.display_name,
                   role=u.role, is_active=u.is_active, has_password=u.password_hash is not None,
                   failed_logins=u.failed_logins, locked_until=u.locked_until, last_login_at=u.last_login_at,
                   created_at=u.created_at)


def _org_row(o: Organization) -> OrganizationRow:
    return OrganizationRow(id=o.id, name=o.name, slug=o.slug, timezone=o.timezone, is_demo=o.is_demo,
                           created_at=o.created_at)


def _state(u: User) -> dict[str, object]:
    return {"email": u.email, "display_name": u.display_name, "role": u.role, "is_active": u.is_active,
            "organization_id": u.organization_id}


def validate_email(email: str) -> str:
    """The normalized (lower-case) address, or ValidationFailed saying what is wrong with it."""
    raw = (email or "").strip()
    if not raw:
        raise ValidationFailed("The email address is empty.",
                               hint="Enter an address such as ana@example.com.")
    try:
        value = _email.validate_python(raw)
    except PydanticValidationError as exc:
        reason = exc.errors()[0].get("msg", "invalid").removeprefix("value is not a valid email address: ")
        raise ValidationFailed(f"'{raw}' is not a valid email address: {reason}",
                               hint="Enter an address such as ana@example.com.") from None
    return str(value).lower()


def validate_role(role: str) -> str:
    """`role` if it is one of ROLES, else ValidationFailed listing them."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role '{role}'.", hint=f"Choose one of: {', '.join(ROLES)}.")
    return role


def _guard_platform_role(actor: Actor, *roles: str) -> None:
    if "platform_admin" in roles and not actor.allowed("orgs.switch"):
        raise PermissionDenied("Only a platform admin can grant, change or disable the platform_admin role.",
                               hint="Ask a platform admin.")


def create_organization(*, name: str, timezone: str = "UTC", is_demo: bool = False,
                        created_by: str = "setup", settings: Settings | None = None) -> OrganizationRow:
    """Create an organization (service level: the CLI, `init` and the demo seeder call this)."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("The organization name is empty.",
                               hint="Give it a name such as 'Acme Photos'.")
    if len(name) > MAX_NAME:
        raise ValidationFailed(f"The organization name is longer than {MAX_NAME} characters.")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"Unknown time zone '{timezone}'.",
                               hint="Use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'.",
                               ) from None
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:70] or "org"
    with service_session(settings=settings) as s:
        if s.scalar(select(Organization.id).where(func.lower(Organization.name) == name.lower())) is not None:
            raise ValidationFailed(f"An organization named '{name}' already exists.",
                                   hint="Choose another name, or use the existing organization.")
        taken = set(s.scalars(select(Organization.slug).where(Organization.slug.like(f"{base}%"))))
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        org = Organization(name=name, slug=slug, timezone=timezone, is_demo=is_demo, created_at=utcnow())
        s.add(org)
        s.flush()
        audit.record(s, actor=Actor.system(created_by, org.id), action="organization.create",
                     entity_type="organization", entity_id=org.id, before=None,
                     after={"name": name, "slug": slug, "timezone": timezone, "is_demo": is_demo},
                     summary=f"Created organization {name}")
        return _org_row(org)


def list_organizations(actor: Actor, *, settings: Settings | None = None) -> list[OrganizationRow]:
    """Every organization for a platform_admin; otherwise only the actor's own.

    A demo account's platform_admin (its password is published) sees the demo organizations only, so
    seeding the demo next to real data never opens the real data; outside the demo it is refused.
    """
    actor.require_reach()
    engine = get_engine(settings)
    if actor.allowed("orgs.switch"):
        with service_session(settings=settings) as s:
            query = select(Organization).order_by(Organization.name)
            if actor.demo_organizations is not None:
                query = query.where(Organization.id.in_(actor.demo_organizations))
            return [_org_row(o) for o in s.scalars(query)]
    with org_session(actor.organization_id, engine=engine) as s:
        org = s.get(Organization, actor.organization_id)
        return [] if org is None else [_org_row(org)]


def organization_timezone(actor: Actor, *, settings: Settings | None = None) -> str:
    """The IANA time zone of the actor's current organization: the console shows its moments in it."""
    actor.require_reach()
    with org_session(actor.organization_id, settings=settings) as s:
        return s.scalar(select(Organization.timezone).where(Organization.id == actor.organization_id)) or "UTC"


def find_organization(*, ref: str | int, settings: Settings | None = None) -> OrganizationRow:
    """An organization by id, slug or name (case-insensitive); NotFound naming the ones that exist."""
    text_ref = str(ref).strip()
    with service_session(settings=settings) as s:
        query = select(Organization).where(
            (func.lower(Organization.name) == text_ref.lower()) | (Organization.slug == text_ref.lower()))
        if text_ref.isdigit():
            query = select(Organization).where(Organization.id == int(text_ref))
        org = s.scalars(query).first()
        if org is None:
            names = list(s.scalars(select(Organization.name).order_by(Organization.name).limit(20)))
            raise NotFound(f"There is no organization '{text_ref}'.",
                           hint=f"Existing: {', '.join(names)}." if names else "Run `aiconsole init` first.")
        return _org_row(org)


def find_user(*, email: str, settings: Settings | None = None) -> UserRow | None:
    """A user by email in any organization (service level: the CLI), or None."""
    with service_session(settings=settings) as s:
        user = s.scalars(select(User).where(func.lower(User.email) == auth.normalize_email(email))).first()
        return None if user is None else _user_row(user)


def all_organizations(*, settings: Settings | None = None) -> list[OrganizationRow]:
    """Every organization by name (service level: the CLI and `up`)."""
    with service_session(settings=settings) as s:
        return [_org_row(o) for o in s.scalars(select(Organization).order_by(Organization.name))]


def count_active_admins(*, organization_id: int | None = None, roles: frozenset[str] = ADMIN_ROLES,
                        include_demo: bool = True, settings: Settings | None = None) -> int:
    """Active users holding one of `roles`, in one organization or all (service level: `init`)."""
    query = select(func.count()).select_from(User).where(User.is_active.is_(True), User.role.in_(roles))
    if organization_id is not None:
        query = query.where(User.organization_id == organization_id)
    if not include_demo:
        query = query.join(Organization, Organization.id == User.organization_id).where(
            Organization.is_demo.is_(False))
    with service_session(settings=settings) as s:
        return int(s.scalar(query) or 0)


def create_user(actor: Actor, *, email: str, display_name: str, role: str, password: str | None,
                organization_id: int | None = None, settings: Settings | None = None) -> UserRow:
    """Add a user to the actor's organization (or `organization_id`, platform_admin only).

    `password=None` makes a single sign-on account that can only log in through OIDC.
    """
    actor.require("users.manage")
    if organization_id is not None and organization_id != actor.organization_id:
        actor = actor.in_organization(organization_id)
    email = validate_email(email)
    role = validate_role(role)
    _guard_platform_role(actor, role)
    display_name = " ".join((display_name or "").split()) or email.split("@", 1)[0]
    if len(display_name) > MAX_NAME:
        raise ValidationFailed(f"The display name is longer than {MAX_NAME} characters.")
    password_hash = None if password is None else hash_password(password)
    engine = get_engine(settings)
    taken = ValidationFailed(f"A user with email {email} already exists.",
                             hint="Each email has one account; enable it or change its role instead.")
    # Emails are unique across organizations, which an org-scoped session cannot see.
    if find_user(email=email, settings=settings) is not None:
        raise taken
    org_id = actor.organization_id
    try:
        with org_session(org_id, engine=engine) as s:
            if s.get(Organization, org_id) is None:
                raise NotFound(f"There is no organization #{org_id}.", hint="Pick an existing organization.")
            user = User(organization_id=org_id, email=email, display_name=display_name, role=role,
                        password_hash=password_hash, is_active=True, failed_logins=0, created_at=utcnow())
            s.add(user)
            s.flush()
            sign_in = "password" if password_hash else "single sign-on"
            audit.record(s, actor=actor, action="user.create", entity_type="user", entity_id=user.id,
                         before=None, after={**_state(user), "sign_in": sign_in},
                         summary=f"Added {email} as {role}")
            return _user_row(user)
    except IntegrityError:
        raise taken from None


def list_users(actor: Actor, *, organization_id: int | None = None,
               settings: Settings | None = None) -> list[UserRow]:
    """The users of the actor's organization (or `organization_id`, platform_admin only), by email."""
    actor.require("users.view")
    if organization_id is not None and organization_id != actor.organization_id:
        actor = actor.in_organization(organization_id)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        query = select(User).where(User.organization_id == actor.organization_id).order_by(User.email)
        return [_user_row(u) for u in s.scalars(query)]


def _load_target(actor: Actor, user_id: int, settings: Settings | None) -> Actor:
    """The actor re-scoped to the target user's organization, or NotFound if they may not see it."""
    with service_session(settings=settings) as s:
        org_id = s.scalar(select(User.organization_id).where(User.id == user_id))
    if org_id is None or (org_id != actor.organization_id and not actor.allowed("orgs.switch")):
        raise NotFound(f"There is no user #{user_id} in your organization.", hint="Reload the user list.")
    return actor.in_organization(org_id)


def _check_not_last_admin(s: Session, user: User, *, action: str) -> None:
    if not user.is_active or user.role not in ADMIN_ROLES:
        return
    # Locking the other admins' rows makes two admins demoting each other at once take turns.
    others = s.scalars(
        select(User.id).where(User.organization_id == user.organization_id, User.id != user.id,
                              User.is_active.is_(True), User.role.in_(ADMIN_ROLES)).with_for_update()
    ).all()
    if not others:
        raise ValidationFailed(f"Cannot {action} {user.email}: they are the last active admin here.",
                               hint="Make another user an admin first.")


def set_active(actor: Actor, *, user_id: int, active: bool, settings: Settings | None = None) -> UserRow:
    """Disable (ending their sessions) or enable (also clearing a login lockout) a user."""
    actor.require("users.manage")
    engine = get_engine(settings)
    actor = _load_target(actor, user_id, settings)
    now = utcnow()
    with org_session(actor.organization_id, engine=engine) as s:
        user = s.get(User, user_id, with_for_update=True)
        if user is None or user.organization_id != actor.organization_id:
            raise NotFound(f"There is no user #{user_id} in your organization.", hint="Reload the user list.")
        _guard_platform_role(actor, user.role)
        before = {"is_active": user.is_active, "failed_logins": user.failed_logins,
                  "locked_until": user.locked_until}
        if active:
            if user.is_active and user.locked_until is None and user.failed_logins == 0:
                return _user_row(user)
            user.is_active, user.failed_logins, user.locked_until = True, 0, None
            cleared = " and cleared the login lockout" if before["locked_until"] else ""
            summary = f"Enabled {user.email}{cleared}"
            action = "user.enable"
            ended = 0
        else:
            if user.id == actor.user_id:
                raise ValidationFailed("You cannot disable your own account.",
                                       hint="Ask another admin if this account must be disabled.")
            if not user.is_active:
                return _user_row(user)
            _check_not_last_admin(s, user, action="disable")
            user.is_active = False
            ended = auth.revoke_sessions(s, user_id=user.id, now=now)
            summary = f"Disabled {user.email}; ended {plural(ended, 'session')}"
            action = "user.disable"
        audit.record(s, actor=actor, action=action, entity_type="user", entity_id=user.id, before=before,
                     after={"is_active": user.is_active, "failed_logins": user.failed_logins,
                            "locked_until": user.locked_until, "sessions_ended": ended},
                     summary=summary, reversible=True)
        return _user_row(user)


def set_role(actor: Actor, *, user_id: int, role: str, settings: Settings | None = None) -> UserRow:
    """Change a user's role (the last active admin of an organization cannot lose it)."""
    actor.require("users.manage")
    role = validate_role(role)
    engine = get_engine(settings)
    actor = _load_target(actor, user_id, settings)
    with org_session(actor.organization_id, engine=engine) as s:
        user = s.get(User, user_id, with_for_update=True)
        if user is None or user.organization_id != actor.organization_id:
            raise NotFound(f"There is no user #{user_id} in your organization.", hint="Reload the user list.")
        if user.role == role:
            return _user_row(user)
        _guard_platform_role(actor, user.role, role)
        if role not in ADMIN_ROLES:
            _check_not_last_admin(s, user, action=f"make {role}")
        before = {"role": user.role}
        user.role = role
        audit.record(s, actor=actor, action="user.set_role", entity_type="user", entity_id=user.id,
                     before=before, after={"role": role},
                     summary=f"Changed {user.email}'s role from {before['role']} to {role}", reversible=True)
        return _user_row(user)


# The account fields a role change or an enable/disable touches; sessions ended by a disable stay ended.
_REVERTIBLE = ("role", "is_active", "failed_logins", "locked_until")


def revert_audit(session: Session, *, actor: Actor, entry: audit.AuditRow) -> int:
    """Restore a role change or an enable/disable from `entry.before` (the audit log's Revert)."""
    actor.require("users.manage")
    before, after = entry.before or {}, entry.after or {}
    fields = [f for f in _REVERTIBLE if f in before and f in after and before[f] != after[f]]
    user_id = int(entry.entity_id) if entry.entity_id and entry.entity_id.isdigit() else None
    user = None if user_id is None else session.get(User, user_id, with_for_update=True)
    if user is None or user.organization_id != actor.organization_id:
        raise NotFound(f"User #{entry.entity_id} no longer exists in your organization.",
                       hint="There is nothing left to revert.")
    if not fields:
        raise ValidationFailed(f"Entry #{entry.id} changed no role or account status, so there is nothing to "
                               "restore.", hint="Make the change by hand on the Users page.")
    current = audit.redact({f: getattr(user, f) for f in fields})
    changed = [f for f in fields if current[f] != after[f]]
    if changed:
        raise ConflictError(f"{user.email}'s {', '.join(changed)} changed again since entry #{entry.id}.",
                            hint="Revert the later change first, or change the account on the Users page.")
    restored = {f: before[f] for f in fields}
    if "role" in restored:
        role = validate_role(str(restored["role"]))
        _guard_platform_role(actor, user.role, role)
        if role not in ADMIN_ROLES:
            _check_not_last_admin(session, user, action=f"make {role}")
        user.role = role
    ended = 0
    if "is_active" in restored:
        _guard_platform_role(actor, user.role)
        if not restored["is_active"]:
            if user.id == actor.user_id:
                raise ValidationFailed("You cannot disable your own account.",
                                       hint="Ask another admin if this account must be disabled.")
            _check_not_last_admin(session, user, action="disable")
            ended = auth.revoke_sessions(session, user_id=user.id, now=utcnow())
        user.is_active = bool(restored["is_active"])
    if "failed_logins" in restored:
        user.failed_logins = int(restored["failed_logins"] or 0)
    if "locked_until" in restored:
        lock = restored["locked_until"]
        when = None if lock is None else datetime.fromisoformat(str(lock))
        user.locked_until = when if when is None or when.tzinfo else when.replace(tzinfo=UTC)
    words = ", ".join(f"{f} {current[f]} -> {restored[f]}" for f in fields)
    return audit.record(session, actor=actor, action="revert", entity_type="user", entity_id=user.id,
                        before=current, after={**restored, "sessions_ended": ended},
                        summary=f"Reverted entry #{entry.id} for {user.email}: {words}", reversible=True)
