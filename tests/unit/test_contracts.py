"""The architecture contracts (.importlinter) hold, and each one fails on a deliberate violation.

The violations are written into a copy of the package, so this proves the contracts can fail without
touching the tree. Pages live outside the package (Streamlit runs them by path), so their one rule is
checked here with ast: a page file only hands over to the shell.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [str(LINT_IMPORTS), "--no-cache", *(a for c in contracts for a in ("--contract", c))]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_every_contract_holds_on_the_tree() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (contract id, file to edit, line appended to it, what the report names)
VIOLATIONS = [
    ("layers", "platform/money.py", "from aiconsole.pipeline import retry", "aiconsole.platform is not allowed"),
    ("layers", "control/queue_actions.py", "from aiconsole.live import windows",
     "aiconsole.control is not allowed to import aiconsole.live"),
    ("layers", "admin/reverts.py", "from aiconsole.control import rules_config",
     "aiconsole.admin is not allowed to import aiconsole.control"),
    ("layers", "providers/base.py", "import aiconsole.charts", "aiconsole.providers is not allowed"),
    ("no-cycles", "platform/errors.py", "def _late():\n    from aiconsole.platform import settings\n",
     "No cycles are allowed in aiconsole.platform"),
    ("streamlit-only-in-ui", "pipeline/retry.py", "import streamlit", "aiconsole.pipeline.retry -> streamlit"),
    ("ui-renders-only", "ui/widgets.py", "from aiconsole.platform.db import models",
     "aiconsole.ui.widgets -> aiconsole.platform.db"),
    ("ui-renders-only", "ui/widgets.py", "import sqlalchemy", "aiconsole.ui.widgets -> sqlalchemy"),
]


@pytest.mark.parametrize(("contract", "path", "line", "named"), VIOLATIONS,
                         ids=[f"{v[0]}:{v[1]}" for v in VIOLATIONS])
def test_a_deliberate_violation_breaks_its_contract(tmp_path: Path, contract: str, path: str, line: str,
                                                     named: str) -> None:
    shutil.copytree(ROOT / "aiconsole", tmp_path / "aiconsole", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    target = tmp_path / "aiconsole" / path
    assert target.exists(), f"{path} moved: point the violation at another module of that package"
    target.write_text(target.read_text() + "\n" + line + "\n")
    result = _lint(tmp_path, contract)
    assert result.returncode != 0, f"contract {contract} did not notice: {line!r} in {path}\n{result.stdout}"
    assert named in result.stdout, result.stdout


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


PAGE_FILES = sorted([*ROOT.glob("pages/*.py"), ROOT / "app.py"])
PAGE_MAY_IMPORT = {"aiconsole.ui.shell", "__future__"}
# app.py also declares the server `streamlit run` serves: st.App with the login-cookie route.
APP_MAY_IMPORT = PAGE_MAY_IMPORT | {"streamlit", "aiconsole.ui.server"}


@pytest.mark.parametrize("path", PAGE_FILES, ids=lambda p: p.name)
def test_page_files_only_hand_over_to_the_shell(path: Path) -> None:
    extra = _imports(path) - (APP_MAY_IMPORT if path.name == "app.py" else PAGE_MAY_IMPORT)
    assert not extra, f"{path.name} imports {sorted(extra)}: a page file calls the shell; code lives in aiconsole/ui/"


def test_the_page_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad_page.py"
    bad.write_text("from aiconsole.ui.shell import run_page\nfrom aiconsole.platform import db\nrun_page('x')\n")
    assert _imports(bad) - PAGE_MAY_IMPORT == {"aiconsole.platform"}
