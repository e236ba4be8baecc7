"""Unit-test modules whose helpers other tests share, loaded by path (tests/ is not a package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

UNIT = Path(__file__).resolve().parent / "unit"


def load_unit_module(name: str) -> ModuleType:
    """tests/unit/<name>.py as a fresh module (its tests are not collected again from it)."""
    spec = importlib.util.spec_from_file_location(f"{name}_helpers", UNIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
