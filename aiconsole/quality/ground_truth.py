"""Export ground truth and every review decision as CSV or JSONL, streamed: any size, never all rows in memory.

An export is a generator of text chunks. Its query runs on a server-side cursor (`yield_per`: a named cursor
on PostgreSQL, SQLite's stepping cursor), so the database hands rows over `CHUNK_ROWS` at a time and each
chunk is written out before the next is read. The permission is checked when the export is asked for, not
when its first chunk is read.

Ground truth is one line per photo: its id, filename, sha256, labels, and the source, person and moment of
its newest label (a review, an import or an adjudication rewrites all of a photo's labels at once). A CSV
cell holds the labels ';'-separated, or as a JSON list when a label itself holds ';' (or the cell would start
with '['), which is what `ground_truth_import` reads back. Decisions are one line each, as decided: who, when,
photo, tag, action, reason, note, label before and after, confidence, rule verdict, provider, model, prompt
and version, and the queue order (the random-sample order's decisions are the unbiased ones).

Permissions: ground truth for everyone who sees Quality (quality.view); decisions name their reviewers, so
they are for admins and analysts (quality.export_decisions).
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, func, select

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import org_session
from aiconsole.platform.db.models import GroundTruth, Photo, Prompt, PromptVersion, Review, ReviewDecision, User
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
MIME_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
CHUNK_ROWS = 1000
LABEL_SEPARATOR = ";"
TRUTH_COLUMNS = ("photo_id", "filename", "sha256", "labels", "source", "set_by", "set_at")
DECISION_COLUMNS = ("decision_id", "review_id", "decided_at", "reviewer", "photo_id", "filename", "sha256",
                    "tag_id", "action", "reason", "note", "label_before", "label_after", "confidence",
                    "ai_verdict", "provider", "model", "prompt", "prompt_version", "queue_order")

TRUTH = cast(Table, GroundTruth.__table__)
PHOTOS = cast(Table, Photo.__table__)
USERS = cast(Table, User.__table__)
DECISIONS = cast(Table, ReviewDecision.__table__)
REVIEWS = cast(Table, Review.__table__)
VERSIONS = cast(Table, PromptVersion.__table__)
PROMPTS = cast(Table, Prompt.__table__)


def check_format(fmt: str) -> Format:
    """`fmt` if it is an export format, else ValidationFailed naming them."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"There is no export format {fmt!r}.", hint=f"Use one of: {', '.join(FORMATS)}.")
    return cast(Format, fmt)


def labels_cell(labels: Sequence[str]) -> str:
    """The labels as one CSV cell: ';'-separated, or a JSON list when ';'-separating would not read back."""
    joined = LABEL_SEPARATOR.join(labels)
    if any(LABEL_SEPARATOR in label for label in labels) or joined.startswith("["):
        return json.dumps(list(labels), ensure_ascii=False)
    return joined


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _truth_query(org: int) -> Select[Any]:
    t, p, u = TRUTH.c, PHOTOS.c, USERS.c
    return (select(t.photo_id, p.filename, p.sha256, t.label, t.source, u.email, t.created_at)
            .join(PHOTOS, p.id == t.photo_id).outerjoin(USERS, u.id == t.set_by)
            .where(t.organization_id == org).order_by(t.photo_id, t.label))


def _decision_query(org: int) -> Select[Any]:
    d, p, u, r, v, pr = DECISIONS.c, PHOTOS.c, USERS.c, REVIEWS.c, VERSIONS.c, PROMPTS.c
    return (select(d.id, d.review_id, d.created_at, u.email, d.photo_id, p.filename, p.sha256, d.tag_id, d.action,
                   d.reason, d.note, d.label_before, d.label_after, d.confidence, d.ai_verdict, d.ai_provider,
                   d.model, pr.name, v.version, r.queue_order)
            .join(PHOTOS, p.id == d.photo_id).join(REVIEWS, r.id == d.review_id)
            .outerjoin(USERS, u.id == d.reviewer_id).outerjoin(VERSIONS, v.id == d.prompt_version_id)
            .outerjoin(PROMPTS, pr.id == v.prompt_id)
            .where(d.organization_id == org).order_by(d.id))


def _streamed(org: int, query: Select[Any], settings: Settings | None, chunk_rows: int) -> Iterator[Any]:
    """The query's rows from a server-side cursor, `chunk_rows` fetched at a time, in one read transaction."""
    with org_session(org, settings=settings) as s:
        yield from s.execute(query.execution_options(yield_per=chunk_rows))


def _truth_records(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    # Rows come ordered by photo, so a photo's labels are consecutive: one photo in memory at a time.
    for photo_id, group in itertools.groupby(rows, key=lambda r: r.photo_id):
        labels = list(group)
        newest = max(labels, key=lambda r: r.created_at)
        yield {"photo_id": photo_id, "filename": newest.filename, "sha256": newest.sha256,
               "labels": [r.label for r in labels], "source": newest.source, "set_by": newest.email,
               "set_at": _iso(newest.created_at)}


def _decision_records(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for r in rows:
        yield dict(zip(DECISION_COLUMNS, (r[0], r[1], _iso(r[2]), *r[3:]), strict=True))


class _Lines(list[str]):
    """The text csv.writer writes, line by line (a file without a growing buffer)."""

    def write(self, text: str) -> None:
        self.append(text)


def _encoded(records: Iterable[dict[str, Any]], fmt: Format, columns: Sequence[str],
             chunk_rows: int) -> Iterator[str]:
    """CSV (a header line first) or JSONL text, `chunk_rows` records per chunk (the CSV header goes with the
    first)."""
    lines = _Lines()
    writer = csv.writer(lines, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(columns)
    for n, record in enumerate(records, start=1):
        if fmt == "jsonl":
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer.writerow(["" if record[c] is None else labels_cell(record[c]) if c == "labels" else record[c]
                             for c in columns])
        if n % chunk_rows == 0:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def _export(actor: Actor, permission: str, fmt: str, query: Select[Any], records: Any, columns: Sequence[str],
            chunk_rows: int, settings: Settings | None) -> Iterator[str]:
    # Checked now, not when the first chunk is read: the generators below run only then.
    actor.require(permission)
    checked = check_format(fmt)
    return _encoded(records(_streamed(actor.organization_id, query, settings, chunk_rows)), checked, columns,
                    chunk_rows)


def export_ground_truth(actor: Actor, *, fmt: str, chunk_rows: int = CHUNK_ROWS,
                        settings: Settings | None = None) -> Iterator[str]:
    """The organization's ground truth, one photo per line, as chunks of CSV or JSONL text (see the module)."""
    return _export(actor, "quality.view", fmt, _truth_query(actor.organization_id), _truth_records, TRUTH_COLUMNS,
                   chunk_rows, settings)


def export_decisions(actor: Actor, *, fmt: str, chunk_rows: int = CHUNK_ROWS,
                     settings: Settings | None = None) -> Iterator[str]:
    """Every review decision of the organization, oldest first, as chunks of CSV or JSONL text."""
    return _export(actor, "quality.export_decisions", fmt, _decision_query(actor.organization_id),
                   _decision_records, DECISION_COLUMNS, chunk_rows, settings)


def export_size(actor: Actor, *, decisions: bool = False, settings: Settings | None = None) -> int:
    """How many lines an export holds (photos with ground truth, or decisions), counted in the database."""
    actor.require("quality.export_decisions" if decisions else "quality.view")
    org = actor.organization_id
    query = (select(func.count()).select_from(DECISIONS).where(DECISIONS.c.organization_id == org) if decisions
             else select(func.count(func.distinct(TRUTH.c.photo_id))).where(TRUTH.c.organization_id == org))
    with org_session(org, settings=settings) as s:
        return int(s.scalar(query) or 0)


def export_bytes(actor: Actor, *, fmt: str, decisions: bool = False, max_lines: int,
                 settings: Settings | None = None) -> bytes:
    """A whole export in memory, for a download button: refused beyond `max_lines` (use the CLI's stream)."""
    size = export_size(actor, decisions=decisions, settings=settings)
    if size > max_lines:
        raise ValidationFailed(f"This export has {size:,} lines; the console builds downloads of up to "
                               f"{max_lines:,}.", hint="Run `aiconsole quality export-truth` (any size).")
    export = export_decisions if decisions else export_ground_truth
    return "".join(export(actor, fmt=fmt, settings=settings)).encode("utf-8")
