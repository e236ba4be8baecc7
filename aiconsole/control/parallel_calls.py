"""Parallel calls per worker as the console shows it: the organization's one number (set with the processing
rules), each provider's cap as a cap of that number, and what each worker then runs
(`aiconsole.pipeline.parallel.effective_parallel_calls`, the rule the workers hold themselves to)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from aiconsole.pipeline.parallel import effective_parallel_calls, is_cap
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import DEFAULT_PARALLEL_CALLS, MAX_PARALLEL_CALLS, PipelineConfig, ProviderConfig
from aiconsole.platform.settings import Settings
from aiconsole.providers.registry import PROVIDER_NAMES

SETTING = "Parallel calls per worker"
CAP = "Parallel calls cap"
CEILING_NOTE = ("A worker started with aiconsole worker --concurrency N runs at most N calls in all; started "
                "without it, a worker runs as many as its organizations' settings ask for.")


@dataclass(frozen=True)
class ParallelCalls:
    """The organization's parallel calls per worker and, per provider, its cap and what a worker runs."""

    setting: int
    caps: dict[str, int | None]  # None: no cap below the setting's maximum

    def effective(self, provider: str) -> int:
        """How many calls to `provider` each worker runs at once for this organization."""
        return effective_parallel_calls(self.setting, self.caps.get(provider))

    def capped(self) -> list[str]:
        """The providers whose cap lowers the setting, in registry order."""
        return [p for p in PROVIDER_NAMES if is_cap(self.caps.get(p), self.setting)]

    def cap_text(self, provider: str) -> str:
        """A provider's cap as a cap of the setting: '2 of 8 per worker', or 'none (8 per worker)'."""
        if provider in self.capped():
            return f"{self.effective(provider)} of {self.setting} per worker"
        cap = self.caps.get(provider)
        note = "" if cap is None else f"; its cap of {cap} is not below it"
        return f"none ({self.setting} per worker{note})"

    def summary(self) -> str:
        """One sentence: what each worker runs for this organization, and which caps lower it."""
        text = f"Each worker runs up to {self.setting} of this organization's provider calls at once"
        lowered = [f"{p} at most {self.effective(p)}" for p in self.capped()]
        return text + (f"; capped in Providers: {', '.join(lowered)}." if lowered else ".")


def parallel_calls(actor: Actor, *, settings: Settings | None = None) -> ParallelCalls:
    """The actor's organization's parallel calls per worker and provider caps (defaults where nothing is saved)."""
    actor.require("pipeline.view")
    org = actor.organization_id
    with org_session(org, engine=get_engine(settings)) as s:
        setting = s.scalar(select(PipelineConfig.worker_concurrency).where(PipelineConfig.organization_id == org))
        caps = dict(s.execute(select(ProviderConfig.provider, ProviderConfig.max_concurrency)
                              .where(ProviderConfig.organization_id == org)).tuples().all())
    return ParallelCalls(setting=int(setting or DEFAULT_PARALLEL_CALLS),
                         caps={p: None if caps.get(p) is None or caps[p] >= MAX_PARALLEL_CALLS else int(caps[p])
                               for p in PROVIDER_NAMES})
