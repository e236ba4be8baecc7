"""`aiconsole quality report [--json] [--days N] [--org ...]`: every quality analytics and calibration figure,
as JSON for scripts and CI or as text to read.

The JSON is the analytics and calibration dataclasses as they are (intervals with their half width, each
label's calibration with its summary line); the text is the same figures through `platform.formatting`.
Acts as the organization's system actor, like every CLI command.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aiconsole.cli.common import handles_errors, load_settings, resolve_org
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor

if TYPE_CHECKING:
    from aiconsole.quality.analytics import QualityAnalytics
    from aiconsole.quality.calibration import CalibrationReport
    from aiconsole.quality.stats import Interval

commands = typer.Typer()


def plain(value: Any) -> Any:
    """`value` as JSON-ready data: dataclasses as objects with their properties too (an interval's half width,
    a label's summary line), moments and days as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out |= {name: plain(getattr(value, name)) for name, attr in vars(type(value)).items()
                if isinstance(attr, property)}
        return out
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _interval(i: Interval | None) -> str:
    return "—" if i is None else f"{fmt.pct(i.estimate)} +- {i.half_width * 100:.1f}"


def text_report(org: str, view: QualityAnalytics, cal: CalibrationReport) -> list[str]:
    """The report as lines to read."""
    lines = [f"Quality report for {org}: the last {fmt.plural(view.days, 'day')} "
             f"(since {fmt.when(view.since, view.timezone, seconds=False)})", "", "Precision"]
    for s in view.precision.summaries:
        which = "random sample (unbiased)" if s.sample == "random" else "all reviews (biased)"
        tags = "all tags" if s.tags == "all" else "tags the rules accepted"
        lines.append(f"  {which}, {tags}: {_interval(s.interval)} ({fmt.count(s.correct)} of "
                     f"{fmt.plural(s.decided, 'tag')} right)")
    random = next(s for s in view.precision.summaries if s.sample == "random")
    if not random.decided:
        lines.append(f"  {random.note}")
    lines += ["", "Per label (most decided first)"]
    lines += [f"  {p.label}: {fmt.plural(p.decided, 'decision')}, precision {_interval(p.precision)}, random "
              f"sample {_interval(p.random_precision)}, corrections {fmt.pct(p.correction_rate)}, review rate "
              f"{fmt.pct(p.review_rate)} of {fmt.plural(p.tags, 'tag')}" for p in view.labels] or ["  none yet"]
    lines += ["", "Most common renames"]
    lines += [f"  {c.before} -> {c.after}: {fmt.count(c.count)}" for c in view.corrections] or ["  none yet"]
    t, b = view.throughput, view.backlog
    lines += ["", f"Reviews: {fmt.count(sum(n for _, n, _ in t.days))} in the window, "
                  f"{fmt.count(b.reviews_last_24h)} in the last 24 hours"]
    lines += [f"  {r.email or f'user #{r.reviewer_id}'}: {fmt.plural(r.reviews, 'review')}, "
              f"{fmt.number(r.per_hour, 1)} per active hour" for r in t.reviewers]
    eta = "—" if b.eta_hours is None else fmt.duration(b.eta_hours * 3600)
    lines += [f"Backlog: {fmt.plural(b.awaiting, 'photo')} awaiting review; at the last 24 hours' pace {eta}", "",
              f"Calibration ({cal.note} Target precision {fmt.pct(cal.target)}.)"]
    lines += [f"  {m.provider} / {m.model}: ECE {fmt.number(m.calibration.ece, 3)} over "
              f"{fmt.plural(m.calibration.decided, 'tag')}" for m in cal.models]
    lines += [f"  {c.summary}" for c in cal.labels] or [f"  No reviewed labels in the window. {cal.note}"]
    return lines


@commands.command("report")
@handles_errors
def report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every number) instead of text.")] = False,
    days: Annotated[int, typer.Option(help="The last N days of the organization's calendar, today included.")] = 30,
    org: Annotated[str | None, typer.Option(help="Organization id, slug or name (default: the only one).")] = None,
    target: Annotated[float, typer.Option(help="The precision accept thresholds are proposed for.")] = 0.95,
    sample: Annotated[str, typer.Option(help="Calibrate on 'random' (unbiased) or 'all' reviews.")] = "random",
) -> None:
    """Quality analytics and calibration: precision, confidence, labels, renames, throughput, backlog, thresholds."""
    # Imported here: the analytics bring in numpy and scipy, which other commands (the worker) have no use for.
    from aiconsole.quality import analytics, calibration

    settings = load_settings()
    target_org = resolve_org(org, settings)
    actor = Actor.system("cli", target_org.id)
    view = analytics.analytics(actor, days=days, settings=settings)
    cal = calibration.calibration(actor, days=days, target=target, sample=sample, settings=settings)
    if as_json:
        typer.echo(json.dumps({"organization": target_org.name, "analytics": plain(view),
                               "calibration": plain(cal)}, indent=2, ensure_ascii=False))
        return
    typer.echo("\n".join(text_report(target_org.name, view, cal)))
