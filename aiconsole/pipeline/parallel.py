"""Parallel calls per worker: the one number an organization sets (Pipeline page), the caps that lower it, and
the worker's slots that hold every call to it.

An organization's photos get at most `parallel_calls` provider calls at once in each worker; a provider's cap
(Providers page) lowers that for its own calls, and a worker started with `--concurrency N` runs at most N
calls at all. `effective_parallel_calls` is the one rule for what comes out; the Pipeline and Providers pages
show it and `SlottedCaller` holds the worker to it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from aiconsole.pipeline.calls import Caller, Held, Released
from aiconsole.pipeline.context import OrgContext
from aiconsole.pipeline.queue import ClaimedPhoto
from aiconsole.pipeline.recording import Outcome
from aiconsole.pipeline.routing import RouteDecision
from aiconsole.platform.db.models import MAX_PARALLEL_CALLS
from aiconsole.providers.base import ProviderResult


def effective_parallel_calls(setting: int, cap: int | None = None, ceiling: int | None = None) -> int:
    """The calls a worker runs at once: the organization's setting, lowered by a provider's cap and the worker's."""
    return max(1, min(v for v in (setting, cap, ceiling, MAX_PARALLEL_CALLS) if v is not None))


def is_cap(cap: int | None, setting: int) -> bool:
    """Whether a provider's cap lowers the organization's parallel calls (a cap at or above it changes nothing)."""
    return cap is not None and cap < min(setting, MAX_PARALLEL_CALLS)


class CallSlots:
    """At most `limit` holders per key at once; the limit is read on every acquire, so a new setting applies to
    the next call."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running: dict[Hashable, int] = defaultdict(int)
        self._peak: dict[Hashable, int] = defaultdict(int)

    @contextmanager
    def slot(self, key: Hashable, limit: int) -> Iterator[None]:
        """Hold one of `key`'s slots for the block, waiting while `limit` are held."""
        with self._cond:
            while self._running[key] >= limit:
                self._cond.wait()
            self._running[key] += 1
            self._peak[key] = max(self._peak[key], self._running[key])
        try:
            yield
        finally:
            with self._cond:
                self._running[key] -= 1
                self._cond.notify_all()

    def peak(self, key: Hashable) -> int:
        """The most slots of `key` ever held at once."""
        with self._cond:
            return self._peak.get(key, 0)


class SlottedCaller(Caller):
    """A Caller whose photos and provider calls each take a slot: an organization's photos at most its parallel
    calls at once, each provider's calls at most its capped figure."""

    def __init__(self, *, ceiling: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ceiling = ceiling  # the worker's own most (`aiconsole worker --concurrency`), None: none
        self.slots = CallSlots()

    def parallel_calls(self, ctx: OrgContext, provider: str | None = None) -> int:
        """How many of this organization's photos (or calls to `provider`) this worker runs at once."""
        cap = None if provider is None else ctx.setup(provider).parallel_cap
        return effective_parallel_calls(ctx.parallel_calls, cap, self.ceiling)

    def process(self, photo: ClaimedPhoto, ctx: OrgContext, *, claimed_at: datetime) -> Outcome | Released | Held:
        """Caller.process in one of the organization's slots."""
        with self.slots.slot((ctx.organization_id, None), self.parallel_calls(ctx)):
            return super().process(photo, ctx, claimed_at=claimed_at)

    def call(self, ctx: OrgContext, decision: RouteDecision, *args: Any, **kwargs: Any) -> ProviderResult:
        """Caller.call in one of the provider's slots (its cap, when it has one below the setting)."""
        with self.slots.slot((ctx.organization_id, decision.provider), self.parallel_calls(ctx, decision.provider)):
            return super().call(ctx, decision, *args, **kwargs)
