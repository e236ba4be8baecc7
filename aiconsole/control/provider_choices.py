"""Which providers the pipeline may switch to, and why not: the one rule the Pipeline page marks its choices
with and `pipeline_settings.switch_model` refuses by.

A provider is refused as active or fallback when the Providers page disabled it, or when it needs a key and
was never set up there (no row: nothing saved, not even a key). It is allowed with a warning when it needs a
key, none is saved and its calls go to the provider's own endpoint (not the demo emulator, not a proxy):
the workers then use their environment's credentials (e.g. GEMINI_API_KEY), and without those every photo
fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import ProviderConfig
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulation import emulator_url, is_demo_org
from aiconsole.providers.registry import PROVIDER_NAMES, capabilities

DISABLED = "disabled in Providers"
NOT_SET_UP = "not set up in Providers"
NO_KEY = "no key"


@dataclass(frozen=True)
class ProviderChoice:
    """One provider as a choice for the pipeline: refused (and why), or allowed with a warning, or fine."""

    provider: str
    refused: str | None = None  # DISABLED or NOT_SET_UP: the switch is refused
    warning: str | None = None  # NO_KEY: allowed, but its calls may fail

    @property
    def mark(self) -> str:
        """What the choice lists say after the name ('' when nothing is wrong)."""
        return self.refused or self.warning or ""

    def label(self, text: str | None = None) -> str:
        """`text` (default: the provider's name) with the mark, e.g. 'gemini — disabled in Providers'."""
        return f"{text or self.provider} — {self.mark}" if self.mark else text or self.provider

    def why(self, role: str = "active") -> str:
        """A sentence on what is wrong and what to do ('' when nothing is)."""
        p = self.provider
        if self.refused == DISABLED:
            return f"{p} is disabled in Providers, so it can't be the {role} provider: enable it there first."
        if self.refused == NOT_SET_UP:
            return (f"{p} is not set up in Providers (no key saved), so it can't be the {role} provider: save "
                    "its key there first.")
        if self.warning == NO_KEY:
            return (f"{p} has no key saved in Providers: workers call it with {capabilities(p).env_credentials} "
                    "from their environment, and without that every photo it gets fails with 'bad key'.")
        return ""

    def refuse(self, role: str) -> None:
        """ValidationFailed saying why, when this provider may not be the `role` ('active', 'fallback') one."""
        if self.refused is not None:
            what = "Enable it" if self.refused == DISABLED else "Save its key"
            raise ValidationFailed(f"{self.provider} is {self.refused.removesuffix(' in Providers')}, so it can't be "
                                   f"the {role} provider.",
                                   hint=f"{what} on the Providers page first (an admin can).")


def choice_states(s: Session, organization_id: int, *, settings: Settings | None = None) -> dict[str, ProviderChoice]:
    """Every provider's state as a pipeline choice for this organization (in the caller's session)."""
    rows = {pc.provider: pc for pc in s.scalars(select(ProviderConfig)
                                                .where(ProviderConfig.organization_id == organization_id))}
    emulated = emulator_url(is_demo=is_demo_org(s, organization_id=organization_id), settings=settings) is not None
    out: dict[str, ProviderChoice] = {}
    for name in PROVIDER_NAMES:
        caps, pc = capabilities(name), rows.get(name)
        if pc is not None and not pc.enabled:
            out[name] = ProviderChoice(name, refused=DISABLED)
        elif not caps.needs_key or (emulated and caps.emulatable):
            out[name] = ProviderChoice(name)
        elif pc is None:
            out[name] = ProviderChoice(name, refused=NOT_SET_UP)
        elif pc.encrypted_secret is None and not pc.endpoint:
            out[name] = ProviderChoice(name, warning=NO_KEY)
        else:
            out[name] = ProviderChoice(name)
    return out


def provider_choices(actor: Actor, *, settings: Settings | None = None) -> dict[str, ProviderChoice]:
    """Every provider's state as a pipeline choice for the actor's organization."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        return choice_states(s, actor.organization_id, settings=settings)
