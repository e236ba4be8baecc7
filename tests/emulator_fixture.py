"""Pytest plugin: the provider emulator as fixtures (conftest.py loads it through `pytest_plugins`).

`emulator` is a running EmulatorServer with no latency and no faults, fresh for each test; change its
behaviour with `emulator.configure(...)`. `emulator_factory(**knobs)` starts more, all stopped at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aiconsole.providers.emulator import EmulatorServer


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start emulators with the given knobs (seed=..., latency_ms=..., error_rate_429=..., ...)."""
    started: list[EmulatorServer] = []

    def start(**knobs: Any) -> EmulatorServer:
        server = EmulatorServer(**knobs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A running emulator on a free 127.0.0.1 port: no latency, no faults, seed 0."""
    return emulator_factory()
