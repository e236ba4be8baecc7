"""Who is acting: passed to every service function that changes something or reads org data.

A demo account (one whose home organization is a demo organization, whose passwords are published) carries
the demo organizations it may act in; every permission check refuses it anywhere else, so the demo boundary
holds whatever the domain API is asked, not only in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import Organization
from aiconsole.platform.permissions import allowed, require, require_demo_boundary


@dataclass(frozen=True)
class Actor:
    """A logged-in user acting in one organization, or a named system process (CLI, worker)."""

    user_id: int | None
    email: str
    role: str
    organization_id: int
    home_organization_id: int | None = None
    # A demo account's reach: the demo organizations as of login / session resume. None: not a demo account.
    demo_organizations: frozenset[int] | None = None

    @classmethod
    def system(cls, name: str, organization_id: int) -> Actor:
        """A non-human actor (e.g. 'cli', 'worker') with full rights in `organization_id`."""
        return cls(user_id=None, email=f"system:{name}", role="platform_admin", organization_id=organization_id)

    @property
    def demo_account(self) -> bool:
        """Whether this is a demo account (it acts on demo organizations only)."""
        return self.demo_organizations is not None

    def allowed(self, permission: str) -> bool:
        """Whether this actor holds `permission` in its current organization (role and demo boundary)."""
        in_reach = self.demo_organizations is None or self.organization_id in self.demo_organizations
        return in_reach and allowed(self.role, permission)

    def require_reach(self, organization_id: int | None = None) -> None:
        """Raise PermissionDenied when a demo account would act outside the demo (default: where it is now)."""
        require_demo_boundary(self.organization_id if organization_id is None else organization_id,
                              self.demo_organizations)

    def require(self, permission: str) -> None:
        """Raise PermissionDenied unless this actor may act in its organization and its role holds `permission`."""
        self.require_reach()
        require(self.role, permission)

    def in_organization(self, organization_id: int) -> Actor:
        """The same person acting in another organization (platform_admin only; a demo account: demo only)."""
        if organization_id != self.organization_id:
            self.require("orgs.switch")
        self.require_reach(organization_id)
        return replace(self, organization_id=organization_id,
                       home_organization_id=self.home_organization_id or self.organization_id)


def demo_reach(session: Session, home_organization_id: int) -> frozenset[int] | None:
    """The organizations an account homed in `home_organization_id` may act in: every demo organization when
    its home is one (a demo account), else None (no demo limit)."""
    rows = session.execute(select(Organization.id, Organization.is_demo).where(
        or_(Organization.id == home_organization_id, Organization.is_demo.is_(True)))).all()
    demo = frozenset(int(org_id) for org_id, is_demo in rows if is_demo)
    return demo if home_organization_id in demo else None
