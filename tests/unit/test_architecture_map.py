"""docs/ARCHITECTURE.md is the current map: every module of the package is named under its area in the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "aiconsole"
# The UI's live, control and admin panels are described as a group ("<name>_page.py ... and their panels").
GROUPED = ("ui/live/", "ui/control/", "ui/admin/")


def _areas(doc: str) -> dict[str, str]:
    """Each top-level package's stretch of the tree section, by name."""
    tree = doc.split("## The tree", 1)[1].split("\n```", 2)[1]
    parts = re.split(r"^  ([a-z_]+)/", tree, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def unnamed_modules(doc: str, package: Path = PACKAGE) -> list[str]:
    """The modules (paths under the package) whose file name the tree does not mention under their area."""
    areas = _areas(doc)
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if path.name in ("__init__.py", "__main__.py") or "/" not in rel or rel.startswith(GROUPED):
            continue
        area = rel.split("/", 1)[0]
        if not re.search(rf"(?<![\w.]){re.escape(path.name)}\b", areas.get(area, "")):
            missing.append(rel)
    return missing


def test_every_module_is_on_the_map() -> None:
    missing = unnamed_modules((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    assert missing == [], f"docs/ARCHITECTURE.md's tree does not name: {', '.join(missing)}"


def test_a_module_missing_from_the_map_is_found(tmp_path: Path) -> None:
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "named.py").write_text("")
    (tmp_path / "quality" / "forgotten.py").write_text("")
    doc = "## The tree\n\n```\n  quality/   area\n    named.py   a module\n  lab/\n    forgotten.py  elsewhere\n```\n"
    assert unnamed_modules(doc, tmp_path) == ["quality/forgotten.py"]
