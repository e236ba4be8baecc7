"""House rules a grep can check: pages only render; domain modules never import streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_PAGES = ("sqlalchemy", "psycopg", "redis", "google", "alembic", "aiconsole.platform.db")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


PAGE_FILES = sorted([*ROOT.glob("pages/*.py"), ROOT / "app.py"])


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_pages_do_not_import_storage_or_sdks(path: Path) -> None:
    bad = {n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN_IN_PAGES)}
    assert not bad, f"{path.name} imports {sorted(bad)}: pages only render; call aiconsole functions instead"


def test_domain_modules_do_not_import_streamlit() -> None:
    offenders = []
    for path in (ROOT / "aiconsole").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "aiconsole").parts[:1]:
            continue
        if any(n == "streamlit" or n.startswith("streamlit.") for n in _imports(path)):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"only aiconsole/ui/ may import streamlit: {offenders}"


def test_there_are_pages() -> None:
    assert len(PAGE_FILES) >= 3


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad_page.py"
    bad.write_text("from sqlalchemy import select\nimport google.genai\n")
    assert {"sqlalchemy", "google.genai"} <= _imports(bad)
