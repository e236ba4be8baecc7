"""`aiconsole quality refresh-disagreements [--org ...]`: count every settled result into the organization's
provider / prompt-version disagreement facts now (the Quality page and the review queue do it a chunk at a
time; a first run over a large history is quicker here). Acts as the organization's system actor."""

from __future__ import annotations

from typing import Annotated

import typer

from aiconsole.cli.common import handles_errors, load_settings, resolve_org
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.quality import disagreement

commands = typer.Typer()  # joins main.py's `quality` group
OrgOption = Annotated[str | None, typer.Option(help="Organization id, slug or name (default: the only one).")]


@commands.command("refresh-disagreements")
@handles_errors
def refresh_disagreements(org: OrgOption = None) -> None:
    """Bring the disagreement facts (Jaccard of each photo's sources) up to date with every settled result."""
    settings = load_settings()
    actor = Actor.system("cli", resolve_org(org, settings).id)
    report = disagreement.refresh_all(actor, chunk=10_000, settings=settings)
    typer.echo(f"Read {fmt.plural(report.results, 'result')}; recomputed {fmt.plural(report.photos, 'photo')}.")
