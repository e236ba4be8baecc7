"""Demo organizations can send their Google calls to the local emulator (`aiconsole up --emulate`).

With `AICONSOLE_DEMO_EMULATOR_URL` set, every google-vision and gemini call of a demo organization (the
worker, the prompt lab, health probes, "Test connection") goes to that URL instead of Google, with a
stand-in key when none is stored. Organizations that are not demos are never affected, whatever their
settings say: emulated answers must not be mistaken for real ones. The console marks emulated providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from aiconsole.platform.db.models import Organization
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.providers.registry import capabilities

if TYPE_CHECKING:
    from aiconsole.providers.emulator import EmulatorServer

# The emulator checks keys only when started with one; the clients refuse to run without any key.
EMULATOR_KEY = "emulated-demo-key"
# What `aiconsole up --emulate` serves: Google-like latency and the odd 503, so retries and health show.
DEMO_KNOBS: dict[str, Any] = {"latency_ms": (150.0, 700.0), "error_rate_503": 0.01}


def is_demo_org(session: Session, *, organization_id: int) -> bool:
    """Whether the organization is a demo one (the only kind whose calls may be emulated)."""
    org = session.get(Organization, organization_id)
    return bool(org is not None and org.is_demo)


def emulator_url(*, is_demo: bool, settings: Settings | None = None) -> str | None:
    """The emulator a demo organization's Google calls go to, or None (real endpoints)."""
    if not is_demo:
        return None
    return (settings or get_settings()).demo_emulator_url


def emulated_endpoint(provider: str, *, is_demo: bool, settings: Settings | None = None) -> str | None:
    """The emulator URL if `provider`'s calls for this organization are emulated, else None."""
    if not capabilities(provider).emulatable:
        return None
    return emulator_url(is_demo=is_demo, settings=settings)


def start_demo_emulator(host: str = "127.0.0.1", port: int = 0, *, seed: int = 0) -> EmulatorServer:
    """Serve the emulator with the demo's latency and faults in a background thread."""
    from aiconsole.providers.emulator import EmulatorServer

    return EmulatorServer(host, port, seed=seed, **DEMO_KNOBS).start()
