"""`aiconsole quality export-truth | import-truth`: ground truth and review decisions out, ground truth in.

The export streams to the file chunk by chunk (any size) and appears under its name only once complete; the
import lists every problem with its line number and writes nothing unless the whole file is right. Both act
as the system actor of the organization (`--org`), like every CLI command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from aiconsole.cli.common import EXIT_ERROR, handles_errors, load_settings, resolve_org
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import ValidationFailed
from aiconsole.quality import ground_truth, ground_truth_import

commands = typer.Typer()  # joins main.py's `quality` group
SHOWN_CHANGES = 20
OrgOption = Annotated[str | None, typer.Option(help="Organization id, slug or name (default: the only one).")]


@commands.command("export-truth")
@handles_errors
def export_truth(
    out: Annotated[Path, typer.Option("--out", help="The file to write ('-' for standard output).")],
    file_format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    decisions: Annotated[bool, typer.Option("--decisions", help="Every review decision instead of the ground "
                                                                "truth.")] = False,
    org: OrgOption = None,
) -> None:
    """Export the organization's ground truth (one photo a line) or every review decision, streamed."""
    settings = load_settings()
    actor = Actor.system("cli", resolve_org(org, settings).id)
    export = ground_truth.export_decisions if decisions else ground_truth.export_ground_truth
    chunks = export(actor, fmt=file_format, settings=settings)
    if str(out) == "-":
        for chunk in chunks:
            sys.stdout.write(chunk)
        return
    partial = out.with_name(out.name + ".part")
    lines = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as f:
            for chunk in chunks:
                f.write(chunk)
                lines += chunk.count("\n")
        os.replace(partial, out)
    except OSError as exc:
        raise ValidationFailed(f"Cannot write {out}: {exc.strerror}.", hint="Choose a writable path.") from None
    finally:
        partial.unlink(missing_ok=True)
    rows = lines - 1 if file_format == "csv" else lines
    what = "decision" if decisions else "photo"
    typer.echo(f"Wrote {fmt.plural(rows, what)} to {out}.")


@commands.command("import-truth")
@handles_errors
def import_truth(
    file: Annotated[Path, typer.Argument(help="A CSV or JSONL file of photo (photo_id or sha256) -> labels.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and show what would change; write "
                                                            "nothing.")] = False,
    file_format: Annotated[str | None, typer.Option("--format", help="csv or jsonl (default: from the file "
                                                                     "name, else its first character).")] = None,
    org: OrgOption = None,
) -> None:
    """Import ground truth in one transaction: every line checked first, a bad line writes nothing."""
    settings = load_settings()
    actor = Actor.system("cli", resolve_org(org, settings).id)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ValidationFailed(f"Cannot read {file}: {exc.strerror}.", hint="Check the path.") from None
    try:
        report = ground_truth_import.import_truth(actor, data=data, fmt_name=file_format, filename=file.name,
                                                  dry_run=dry_run, settings=settings)
    except ground_truth_import.TruthImportRefused as refused:
        for problem in refused.errors:
            typer.secho(str(problem), fg=typer.colors.RED, err=True)
        if refused.more:
            typer.secho(f"... and {fmt.plural(refused.more, 'more problem')}.", fg=typer.colors.RED, err=True)
        typer.secho(f"Error: {fmt.plural(len(refused.errors) + refused.more, 'problem')}; nothing was imported.",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_ERROR) from None
    for change in report.changes[:SHOWN_CHANGES] if dry_run else ():
        typer.echo(f"line {change.line}: photo #{change.photo_id} {change.filename}: "
                   f"{'; '.join(change.before) or '(none)'} -> {'; '.join(change.after) or '(none)'}")
    if dry_run and report.changed > SHOWN_CHANGES:
        typer.echo(f"... and {fmt.plural(report.changed - SHOWN_CHANGES, 'more photo')}.")
    typer.echo(report.message + (" Nothing was written (dry run)." if dry_run else ""))
