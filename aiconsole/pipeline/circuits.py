"""An organization's circuit per provider, shared by every worker: "breaker" rows in ai_provider_health.

A circuit breaker lives in one worker's memory, but the pause it causes is the organization's, several
workers may probe, and Live Status runs in the console. So each change of an organization's circuit is
written as an `ai_provider_health` row whose `error_details.source` is "breaker": the state, the back-off
level, the failure rate that opened it, when the next probe may go out, and the worker. The newest such row
of an (organization, provider) is the circuit. Workers read it, under the organization's pipeline_config
row lock, to choose the back-off level and to take turns probing (a probe is claimed by a half_open row);
Live Status reads it to show the state. These rows need neither a new table nor Redis (which is optional),
and being health rows they also say "down" to everything that reads provider health.

States: `open` until `next_probe_at` (then it reads as half_open: a probe is due), `half_open` while one
worker's probe is out (its claim lapses at `probe_until`, should that worker die), `closed` once a probe
succeeded (on probation for the recovery period: opening again then doubles the open period).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform.db.models import AiProviderHealth

SOURCE = "breaker"
# How far back a circuit is looked for: longer than any open period (CallOptions.breaker_max_open_s) plus a
# probe. Older rows are history: the circuit counts as closed, long recovered.
LOOKBACK = timedelta(hours=1)

_H = AiProviderHealth


@dataclass(frozen=True)
class Circuit:
    """An organization's circuit for one provider, as the newest breaker row says."""

    provider: str
    state: str  # open, half_open or closed, as written
    at: datetime  # when it was written
    level: int  # consecutive opens without a real recovery (0: the first)
    failure_rate: float | None  # of the calls in the window that opened it
    next_probe_at: datetime | None  # open: when a probe may go out
    probe_until: datetime | None  # half_open: when the probing worker's claim lapses
    worker: str | None
    error_kind: str | None = None  # a failed probe's error kind

    def state_at(self, now: datetime) -> str:
        """closed, open or half_open at `now` (an open circuit whose probe is due reads as half_open)."""
        if self.state == "open" and (self.next_probe_at is None or now >= self.next_probe_at):
            return "half_open"
        return self.state

    def probe_due(self, now: datetime) -> bool:
        """Whether a worker may claim the probe now (a closed circuit under a circuit pause: at once)."""
        if self.state == "open":
            return self.next_probe_at is None or now >= self.next_probe_at
        if self.state == "half_open":
            return self.probe_until is None or now >= self.probe_until
        return True

    def next_level(self, now: datetime, *, recovery_s: float) -> int:
        """The back-off level of an open that follows this circuit: one more unless it recovered for real."""
        if self.state == "closed" and (now - self.at).total_seconds() >= recovery_s:
            return 0
        return self.level + 1


def next_level(previous: Circuit | None, now: datetime, *, recovery_s: float) -> int:
    """The back-off level of a circuit opening now after `previous` (None: none within LOOKBACK)."""
    return 0 if previous is None else previous.next_level(now, recovery_s=recovery_s)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _circuit(provider: str, at: datetime, details: dict[str, Any]) -> Circuit:
    rate = details.get("failure_rate")
    return Circuit(provider=provider, state=str(details.get("circuit", "closed")), at=at,
                   level=int(details.get("level") or 0), failure_rate=None if rate is None else float(rate),
                   next_probe_at=_time(details.get("next_probe_at")), probe_until=_time(details.get("probe_until")),
                   worker=details.get("worker"), error_kind=details.get("error_kind"))


def latest(session: Session, organization_id: int, *, now: datetime,
           provider: str | None = None) -> dict[str, Circuit]:
    """The newest circuit of each provider (or of `provider` only) written within LOOKBACK up to `now`."""
    query = (select(_H.provider_name, _H.last_check, _H.error_details)
             .where(_H.organization_id == organization_id, _H.last_check > now - LOOKBACK, _H.last_check <= now,
                    _H.error_details["source"].as_string() == SOURCE)
             .order_by(_H.last_check.desc(), _H.id.desc()))
    if provider is not None:
        query = query.where(_H.provider_name == provider)
    found: dict[str, Circuit] = {}
    for name, at, details in session.execute(query):
        if name not in found:
            found[name] = _circuit(name, at, details or {})
    return found


def latest_one(session: Session, organization_id: int, provider: str, *, now: datetime) -> Circuit | None:
    """The provider's circuit for the organization, or None when none was written within LOOKBACK."""
    return latest(session, organization_id, now=now, provider=provider).get(provider)


def write(session: Session, organization_id: int, provider: str, *, state: str, level: int, worker: str,
          now: datetime, failure_rate: float | None = None, next_probe_at: datetime | None = None,
          probe_until: datetime | None = None, error_kind: str | None = None) -> Circuit:
    """Record the circuit's new state in the caller's transaction; returns it as `latest` will read it."""
    details: dict[str, Any] = {"source": SOURCE, "circuit": state, "level": level, "worker": worker,
                               "failure_rate": failure_rate}
    for key, moment in (("next_probe_at", next_probe_at), ("probe_until", probe_until)):
        if moment is not None:
            details[key] = moment.isoformat()
    if error_kind is not None:
        details["error_kind"] = error_kind
    session.add(_H(organization_id=organization_id, provider_name=provider,
                   status="healthy" if state == "closed" else "down", response_time_ms=None,
                   error_rate=failure_rate, last_check=now, error_details=details))
    session.flush()
    return _circuit(provider, now, details)
