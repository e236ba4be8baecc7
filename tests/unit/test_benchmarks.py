"""Every benchmark script starts the way the README runs it (`python benchmarks/<name>.py`), and no file in
benchmarks/ can shadow a module: run as a script, the folder comes first on sys.path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aiconsole.platform.migrate import ROOT

BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))

# Runs a script as `python benchmarks/x.py --help` would (its folder first on sys.path, as __main__), then
# imports what the benchmarks go on to use (psycopg died on a shadowed `queue`) and prints every loaded
# module that came from benchmarks/.
PROBE = """
import runpy, sys
from pathlib import Path
script = Path(sys.argv[1]).resolve()
sys.path[0] = str(script.parent)
sys.argv = [str(script), "--help"]
try:
    runpy.run_path(str(script), run_name="__main__")
except SystemExit as exc:
    if exc.code not in (0, None):
        raise
import concurrent.futures, psycopg, redis, sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
# A sibling bench_* script may be imported (shared set-up); anything else from the folder shadows a module.
print("FROM-BENCHMARKS", sorted(name for name, module in sys.modules.items()
                                if Path(getattr(module, "__file__", None) or "/").resolve().parent == script.parent
                                and not name.startswith("bench_")))
"""


def test_the_documented_benchmarks_are_there() -> None:
    assert {p.name for p in SCRIPTS} >= {"bench_live_status.py", "bench_queue.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_no_benchmark_file_is_named_like_a_module_it_could_shadow(script: Path) -> None:
    assert script.stem not in sys.stdlib_module_names, f"{script.name} shadows the standard library's {script.stem}"
    assert script.stem.startswith("bench_"), f"{script.name}: name benchmark scripts bench_<what>.py"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_each_benchmark_starts_as_a_script(script: Path) -> None:
    run = subprocess.run([sys.executable, "-c", PROBE, str(script.relative_to(ROOT))], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "usage:" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "FROM-BENCHMARKS []"
