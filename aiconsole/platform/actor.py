"""Who is acting: passed to every service function that changes something or reads org data."""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiconsole.platform.permissions import require


@dataclass(frozen=True)
class Actor:
    """A logged-in user acting in one organization, or a named system process (CLI, worker)."""

    user_id: int | None
    email: str
    role: str
    organization_id: int
    home_organization_id: int | None = None

    @classmethod
    def system(cls, name: str, organization_id: int) -> Actor:
        """A non-human actor (e.g. 'cli', 'worker') with full rights in `organization_id`."""
        return cls(user_id=None, email=f"system:{name}", role="platform_admin", organization_id=organization_id)

    def require(self, permission: str) -> None:
        """Raise PermissionDenied unless this actor's role holds `permission`."""
        require(self.role, permission)

    def in_organization(self, organization_id: int) -> Actor:
        """The same person acting in another organization (platform_admin only)."""
        if organization_id != self.organization_id:
            self.require("orgs.switch")
        return replace(self, organization_id=organization_id,
                       home_organization_id=self.home_organization_id or self.organization_id)
