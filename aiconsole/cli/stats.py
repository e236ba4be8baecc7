"""`aiconsole stats analyze FILE|-`: the Testing Lab's statistics engine on one comparison from anywhere.

Reads one comparison as JSON (a file, or '-' for standard input) and prints the engine's result as JSON;
the shapes are aiconsole.lab.stats_models'. Needs no database or settings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiconsole.cli.common import handles_errors
from aiconsole.lab import stats_engine
from aiconsole.platform.errors import ValidationFailed

commands = typer.Typer(help="The Testing Lab's statistics engine (GrowthBook's numbers).", no_args_is_help=True)

INPUT_HELP = ('A comparison as JSON, or - for standard input: {"metric_type": "proportion"|"mean"|"ratio", '
              '"difference": "relative"|"absolute", "alpha": 0.05, "sequential_tuning": 5000, '
              '"control": {"n", "sum", "sum_squares"}, "treatment": {...}} (sum_squares only for means; ratios add '
              'denominator_sum, denominator_sum_squares, sum_products).')


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"Cannot read {source}: {exc.strerror}.", hint="Give a readable file or -.") from None


@commands.command("analyze")
@handles_errors
def analyze(source: Annotated[str, typer.Argument(metavar="FILE|-", help=INPUT_HELP)]) -> None:
    """Analyse one comparison: frequentist, sequential and Bayesian results as JSON."""
    text = _read(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"The input is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
                               hint="Give one comparison object.") from None
    result = stats_engine.analyze(stats_engine.comparison_from_json(data))
    typer.echo(json.dumps(result.to_json_dict(), indent=2))
