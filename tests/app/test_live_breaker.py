"""Live Status shows each provider's circuit and, under a circuit pause, when the next probe goes out (issue 9
item 4): seeded straight into the shared circuit rows the workers write, read back in the console process."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiconsole.pipeline import circuits, config_row
from aiconsole.platform.cache import invalidate_live
from aiconsole.platform.clock import org_clock
from aiconsole.platform.db import service_session
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

RAW_TIME = re.compile(r"\d{2}:\d{2}:\d{2}\.\d|\+00:00|T\d{2}:\d{2}")  # microseconds, raw offsets, ISO 'T'


def _texts(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [shown(e.value) for e in [*at.error, *at.caption, *at.markdown]]


def _circuit_cards(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [t for t in (shown(c.value) for c in at.caption) if t.startswith("circuit ")]


def _not_closed(at) -> str:  # type: ignore[no-untyped-def]
    """The one provider card whose circuit is not closed."""
    cards = [t for t in _circuit_cards(at) if not t.startswith("circuit closed")]
    assert len(cards) == 1, _circuit_cards(at)
    return cards[0]


def _pause_on_an_open_circuit(org: int, *, probe_in: timedelta, state: str = "open") -> tuple[str, str, object]:
    """Pause the organization as a worker's breaker does and write its circuit; (provider, tz, next probe)."""
    now = utcnow()
    with service_session() as s:
        cfg = config_row.lock_or_create(s, org)
        provider = cfg.active_provider
        config_row.pause(cfg, kind=config_row.CIRCUIT_OPEN, by=None, now=now,
                         reason=f"Provider circuit open: {provider} failed 60% of recent calls and no fallback "
                                "provider is configured.")
        next_probe = now + probe_in + timedelta(microseconds=123456)
        circuits.write(s, org, provider, state=state, level=2, worker="worker-7", now=now, failure_rate=0.6,
                       next_probe_at=next_probe if state == "open" else None,
                       probe_until=next_probe if state == "half_open" else None)
        tz = org_clock(s, organization_id=org, now=now).tz.key
    invalidate_live(org)
    return provider, tz, next_probe


def test_closed_circuits_show_their_recent_failure_rate(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    org = at.session_state[ACTOR_KEY].organization_id
    now = utcnow()
    with service_session() as s:  # whatever an earlier test left: a probe succeeded and resumed
        cfg = config_row.lock_or_create(s, org)
        if cfg.paused:
            config_row.resume(cfg, by=None, now=now)
        circuits.write(s, org, cfg.active_provider, state="closed", level=2, worker="worker-7", now=now)
    invalidate_live(org)
    at.run()
    cards = _circuit_cards(at)
    assert cards and all(t.startswith("circuit closed · ") for t in cards), cards
    assert not any("next probe" in t for t in cards)
    assert not any("Processing is paused" in shown(e.value) for e in at.error)


def test_an_open_circuit_shows_its_state_failure_rate_and_next_probe_for_people(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    org = at.session_state[ACTOR_KEY].organization_id
    provider, tz, next_probe = _pause_on_an_open_circuit(org, probe_in=timedelta(seconds=95))
    at.run()
    assert not at.exception, at.exception
    local = next_probe.astimezone(ZoneInfo(tz))  # type: ignore[attr-defined]
    wall = local.strftime("%H:%M:%S")

    banner = next(t for t in (shown(e.value) for e in at.error) if "Processing is paused" in t)
    assert banner.endswith(f"configured. Next probe of {provider}: {wall} {local.strftime('%Z')} (in 2 min)."), banner
    card = _not_closed(at)
    assert card.startswith("circuit open · opened at 60% of recent calls failing"), card
    assert f"next probe of {provider}: {wall}" in card, card
    for text in _texts(at):
        assert not RAW_TIME.search(text), text


def test_a_half_open_circuit_says_whose_probe_is_out(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("viewer")
    org = at.session_state[ACTOR_KEY].organization_id
    provider, _tz, _ = _pause_on_an_open_circuit(org, probe_in=timedelta(seconds=40), state="half_open")
    at.run()
    assert not at.exception, at.exception
    card = _not_closed(at)
    assert card.startswith("circuit half-open") and f"a probe of {provider} is out now (worker-7)" in card, card
    banner = next(t for t in (shown(e.value) for e in at.error) if "Processing is paused" in t)
    assert banner.endswith(f" A probe of {provider} is out now (worker-7)."), banner
