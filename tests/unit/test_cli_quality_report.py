"""`aiconsole quality report` on SQLite and PostgreSQL: the JSON carries every analytics and calibration number
(checked against a small history worked out by hand and against the domain functions), the text form reads,
and a bad --days is one red line with exit code 2."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner
from unit_helpers import load_unit_module

from aiconsole.cli.main import app
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.settings import Settings
from aiconsole.quality import stats

qah = load_unit_module("test_quality_analytics")
rqh = qah.rqh
runner = CliRunner()


@pytest.fixture
def team(any_settings: Settings) -> Any:
    """Three random-order reviews and one from the low-confidence order, an hour ago; a photo awaiting review."""
    team = rqh.make_team("Report Org")
    at = utcnow() - timedelta(hours=1)
    created = at - timedelta(minutes=30)
    review = qah.add_review
    review(team.org, team.first, order="random", at=at, created=created,
           decisions=[("cat", 0.9, "accepted", "approve", None), ("cat", 0.62, "needs_review", "reject", None)])
    review(team.org, team.first, order="random", at=at, created=created,
           decisions=[("dog", 0.7, "needs_review", "rename", "wolf")])
    review(team.org, team.second, order="lowest_confidence", at=at, created=created,
           decisions=[("cat", 0.55, "needs_review", "approve", None)])
    rqh.add_photo(team.org, [("cat", 0.7, "needs_review")], key="waiting")
    return team


def _report(*args: str) -> Any:
    result = runner.invoke(app, ["quality", "report", "--org", "Report Org", *args])
    assert result.exit_code == 0, result.output
    return result


def test_json_has_every_number(team: Any) -> None:
    data = json.loads(_report("--json", "--days", "7").output)
    a, c = data["analytics"], data["calibration"]
    assert data["organization"] == "Report Org" and a["days"] == 7 and a["timezone"] == "UTC"
    summary = {(s["sample"], s["tags"]): s for s in a["precision"]["summaries"]}
    rnd, every = summary[("random", "all")], summary[("all", "all")]
    assert (rnd["decided"], rnd["correct"], rnd["biased"]) == (3, 2, False)
    assert (every["decided"], every["correct"], every["biased"]) == (4, 3, True)
    wilson = stats.wilson_interval(2, 3)
    assert wilson is not None and rnd["interval"] == {"estimate": wilson.estimate, "low": wilson.low,
                                                       "high": wilson.high, "half_width": wilson.half_width}
    assert len(a["precision"]["points"]) == 14  # 7 days x 2 samples
    assert sum(a["histogram"]["approved"]) == 2 and sum(a["histogram"]["rejected"]) == 1
    labels = {p["label"]: p for p in a["labels"]}
    # The waiting photo is from March: the backlog counts it now, the window's label figures do not.
    assert (labels["cat"]["decided"], labels["cat"]["tags"], labels["cat"]["awaiting_review"]) == (3, 3, 0)
    assert labels["dog"]["correction_rate"] == 1.0
    assert a["corrections"] == [{"before": "dog", "after": "wolf", "count": 1}]
    assert sum(reviews for _, reviews, _ in a["throughput"]["days"]) == 3
    assert {r["email"]: r["reviews"] for r in a["throughput"]["reviewers"]} == {team.first.email: 2,
                                                                               team.second.email: 1}
    assert a["backlog"]["awaiting"] == 1 and a["backlog"]["reviews_last_24h"] == 3
    assert c["sample"] == "random" and c["target"] == 0.95 and c["n_bins"] == 10
    cat = next(x for x in c["labels"] if x["label"] == "cat")
    assert cat["proposal"] is None
    assert cat["summary"] == "label 'cat': only 2 random-sample decisions; a threshold needs at least 20."
    assert [(m["provider"], m["calibration"]["decided"]) for m in c["models"]] == [("local", 3)]
    assert len(cat["calibration"]["bins"]) == 10


def test_options_reach_the_report(team: Any) -> None:
    data = json.loads(_report("--json", "--days", "2", "--target", "0.9", "--sample", "all").output)
    assert data["analytics"]["days"] == 2 and data["calibration"]["target"] == 0.9
    assert data["calibration"]["sample"] == "all" and "biased" in data["calibration"]["note"]
    cat = next(x for x in data["calibration"]["labels"] if x["label"] == "cat")
    assert cat["calibration"]["decided"] == 3


def test_text_form(team: Any) -> None:
    out = _report("--days", "7").output
    assert "Quality report for Report Org: the last 7 days" in out
    assert "random sample (unbiased), all tags: 66.7% +- " in out and "(2 of 3 tags right)" in out
    assert "all reviews (biased), all tags: 75.0% +- " in out
    assert "  dog -> wolf: 1" in out and "Backlog: 1 photo awaiting review" in out
    assert "label 'cat': only 2 random-sample decisions" in out and "None" not in out


def test_a_bad_window_is_one_red_line(team: Any) -> None:
    result = runner.invoke(app, ["quality", "report", "--org", "Report Org", "--days", "0"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Error: A window of 0 days is outside 1..365.")
    assert "Traceback" not in result.output
