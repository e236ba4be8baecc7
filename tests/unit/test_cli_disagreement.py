"""`aiconsole quality refresh-disagreements`: the command module's own Typer app (main.py joins it to the quality
group) counts every settled result into the organization's disagreement facts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from typer.testing import CliRunner
from unit_helpers import load_unit_module

from aiconsole.cli.quality_disagreement import commands
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import PhotoDisagreement
from aiconsole.platform.settings import Settings

h = load_unit_module("test_review_queue")
d = load_unit_module("test_disagreement")


def test_refresh_disagreements_counts_every_result(settings: Settings) -> None:
    team: Any = h.make_team("Cli Disagreement Org")
    photos = [d.pair_photo(team.org, ["cat"], ["dog"] if i % 2 else ["cat"], minute=i,
                           created=h.T0 + timedelta(hours=1, minutes=i)) for i in range(4)]
    result = CliRunner().invoke(commands, ["--org", "Cli Disagreement Org"])
    assert result.exit_code == 0, result.output
    assert "Read 8 results; recomputed 4 photos." in result.output
    with service_session() as s:
        scores = {p: s.get(PhotoDisagreement, p).jaccard for p in photos}  # type: ignore[union-attr]
    assert scores == {photos[0]: 1.0, photos[1]: 0.0, photos[2]: 1.0, photos[3]: 0.0}


def test_the_command_sits_in_the_quality_group() -> None:
    from aiconsole.cli.main import app

    result = CliRunner().invoke(app, ["quality", "--help"])
    assert result.exit_code == 0, result.output
    assert "refresh-disagreements" in result.output
