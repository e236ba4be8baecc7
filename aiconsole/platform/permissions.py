"""The one permission table. Every page and every action asks `require(role, permission)` server-side,
through `Actor.require`, which also applies the demo boundary (`require_demo_boundary`)."""

from __future__ import annotations

from aiconsole.platform.db.models import ROLES
from aiconsole.platform.errors import PermissionDenied

ALL = frozenset(ROLES)
ADMINS = frozenset({"platform_admin", "admin"})

# permission -> roles that hold it. platform_admin holds everything (see `allowed`).
PERMISSIONS: dict[str, frozenset[str]] = {
    # Live Status
    "live_status.view": ALL,
    "queue.pause": ADMINS,
    "queue.resume": ADMINS,
    "queue.retry_failed": ADMINS | {"developer"},
    "queue.requeue_stuck": ADMINS | {"developer"},
    "health.check": ADMINS | {"developer"},
    "photos.upload": ADMINS | {"developer"},
    # Administration
    "users.view": ADMINS,
    "users.manage": ADMINS,
    "orgs.switch": frozenset({"platform_admin"}),
    "provider_health.platform": frozenset({"platform_admin"}),
    "audit.view": ADMINS,
    "audit.revert": ADMINS,
    # Pipeline control
    "pipeline.view": ALL,
    "prompts.edit": ADMINS | {"developer"},
    "prompts.label_staging": ADMINS | {"developer"},
    "prompts.label_production": ADMINS,
    "pipeline.configure": ADMINS,
    "providers.configure": ADMINS,
    # Testing, review, analytics
    "testing.run": ADMINS | {"developer"},
    "experiments.manage": ADMINS | {"developer"},
    "review.tags": ADMINS | {"reviewer"},
    "quality.view": ALL,
    "lab.view": ALL,
    # Batch corrections over many photos at once (reviewers correct single photos: review.tags).
    "quality.batch": ADMINS,
    # Import ground truth (replaces reviewed labels) and freeze or delete golden sets.
    "quality.ground_truth": ADMINS,
    # Every decision with its reviewer: who decided what is not for every role.
    "quality.export_decisions": ADMINS | {"analyst"},
    # The share of reviews sent to a second reviewer; adjudicating two reviewers' disagreements (ground truth).
    "quality.configure": ADMINS,
    "quality.adjudicate": ADMINS,
    "analytics.view": ADMINS | {"developer", "analyst", "viewer"},
    "analytics.export": ADMINS | {"analyst"},
}

ROLE_DESCRIPTIONS = {
    "platform_admin": "Every organization; provider health across the platform.",
    "admin": "Everything in their organization: users, pipeline, providers, audit.",
    "developer": "Prompts, tests and experiments; queue maintenance.",
    "analyst": "Analytics and exports; read-only elsewhere.",
    "reviewer": "The low-confidence review queue; read-only elsewhere.",
    "viewer": "Read-only.",
}


def allowed(role: str, permission: str) -> bool:
    """Whether `role` holds `permission`; unknown permissions are nobody's (fail closed)."""
    if permission not in PERMISSIONS:
        return False
    return role == "platform_admin" or role in PERMISSIONS[permission]


def require(role: str, permission: str) -> None:
    """Raise PermissionDenied with a message naming the roles that may do this."""
    if not allowed(role, permission):
        holders = sorted(PERMISSIONS.get(permission, frozenset()) | {"platform_admin"})
        raise PermissionDenied(
            f"Your role ({role}) cannot do this ({permission}).",
            hint=f"Ask an admin of your organization; roles allowed: {', '.join(holders)}.",
        )


def require_demo_boundary(organization_id: int, demo_organizations: frozenset[int] | None) -> None:
    """Raise PermissionDenied when a demo account (`demo_organizations` set) would act outside the demo."""
    if demo_organizations is not None and organization_id not in demo_organizations:
        raise PermissionDenied(
            f"A demo account acts on demo organizations only; organization #{organization_id} is not a demo "
            "organization.",
            hint="Log in with an account of that organization (the demo accounts' passwords are published).",
        )
