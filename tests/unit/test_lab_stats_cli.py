"""`aiconsole stats analyze` end to end: the installed script in a subprocess, from a file and from stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COMPARISON = {"metric_type": "mean", "difference": "absolute", "alpha": 0.05, "sequential_tuning": 5000,
              "control": {"n": 500, "sum": 1250.0, "sum_squares": 4000.0},
              "treatment": {"n": 520, "sum": 1235.0, "sum_squares": 3900.0}}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiconsole", "stats", "analyze", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_file_in_result_json_out(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(COMPARISON))
    proc = _run(str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"frequentist", "sequential", "bayesian"}
    assert set(out["frequentist"]) == {"estimate", "ci", "p_value"}
    assert set(out["sequential"]) == {"ci", "p_value"}
    assert set(out["bayesian"]) == {"chance_to_win", "ci", "risk"}
    assert out["frequentist"]["estimate"] == 1235.0 / 520 - 1250.0 / 500
    assert len(out["bayesian"]["risk"]) == 2


def test_stdin_and_bad_input_names_the_field() -> None:
    ok = _run("-", stdin=json.dumps(COMPARISON))
    assert ok.returncode == 0 and "p_value" in ok.stdout
    bad = dict(COMPARISON, treatment={"n": 520, "sum": 1235.0})
    proc = _run("-", stdin=json.dumps(bad))
    assert proc.returncode == 2
    assert "treatment.sum_squares is required" in proc.stderr and "Traceback" not in proc.stderr
    assert "not JSON" in _run("-", stdin="{nope").stderr
    assert "Cannot read" in _run("/nonexistent/c.json").stderr
