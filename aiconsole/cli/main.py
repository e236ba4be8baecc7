"""The `aiconsole` app: every command module's `commands`, in the order `aiconsole --help` lists them."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from aiconsole.cli import console, pipeline, quality, quality_disagreement, quality_truth, setup, stats, users

app = typer.Typer(
    name="aiconsole",
    help="Run and administer the aiconsole photo-tagging console and its processing workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (setup.commands, console.commands, pipeline.commands):
    app.add_typer(group)  # unnamed: its commands sit at the top level
app.add_typer(users.commands, name="user")
# `aiconsole quality ...`: one group; each quality command module's commands sit in it.
quality_group = typer.Typer(help="Quality Control: reports, ground truth and review decisions.", no_args_is_help=True)
for group in (quality.commands, quality_truth.commands, quality_disagreement.commands):
    quality_group.add_typer(group)
app.add_typer(quality_group, name="quality")
app.add_typer(stats.commands, name="stats")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `aiconsole` script and `python -m aiconsole`."""
    app(args=list(argv) if argv is not None else None, prog_name="aiconsole")
