"""Import ground truth from CSV or JSONL (photo -> labels): every line checked, then one transaction or nothing.

A line names its photo by `photo_id` or `sha256` (both: they must agree) and gives `labels`: a JSON list or a
';'-separated string (a CSV cell may hold either; an export's other columns are ignored). The labels replace
the photo's ground truth (an empty list clears it) with source 'import', set by the importing user. A photo
whose labels are already exactly these is left as it is (its source and author too).

The whole file is checked before anything is written, against the organization's photos in the same
transaction that writes: every problem is listed with its line number (up to `MAX_ERRORS`, then how many
more), e.g. "line 7: photo sha256 ab12... is not in this organization", and a file with any problem writes
nothing. A dry run checks the same way and answers what would change, writing nothing. An applied import is
one audit entry with its counts and a sample of the photos it changed.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aiconsole.pipeline.rules import normalize_label
from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.models import GroundTruth, Photo
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality.ground_truth import FORMATS, LABEL_SEPARATOR, Format, check_format
from aiconsole.quality.review_queue import write_session

MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_IMPORT_ROWS = 200_000
MAX_ERRORS = 100
MAX_LABEL = 200
PREVIEW_LIMIT = 200
AUDIT_SAMPLE = 50
_LOOKUP_CHUNK = 900  # ids per IN list: under SQLite's old 999-variable limit
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,18}")

TRUTH = cast(Table, GroundTruth.__table__)
PHOTOS = cast(Table, Photo.__table__)


@dataclass(frozen=True)
class LineError:
    """One problem in an import file; `line` is None for the file as a whole."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


class TruthImportRefused(ValidationFailed):
    """The file has problems; nothing was imported. `errors` lists them (up to MAX_ERRORS), `more` the rest."""

    def __init__(self, errors: Sequence[LineError], more: int = 0) -> None:
        self.errors, self.more = tuple(errors), more
        shown = "; ".join(str(e) for e in self.errors[:3])
        super().__init__(f"{fmt.plural(len(self.errors) + more, 'problem')} in the file, nothing was imported: "
                         f"{shown}" + ("; ..." if len(self.errors) + more > 3 else "") + ".",
                         hint="Fix the lines listed and import again (a dry run checks without writing).")


@dataclass(frozen=True)
class TruthRow:
    """One line of the file as read: the photo it names and its labels (normalized, sorted, unique)."""

    line: int
    photo_id: int | None
    sha256: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PhotoChange:
    """What an import does to one photo's ground truth."""

    line: int
    photo_id: int
    filename: str
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass(frozen=True)
class TruthImport:
    """What an import did (or, for a dry run, would do); `changes` holds the first PREVIEW_LIMIT changes."""

    rows: int
    changed: int
    unchanged: int
    cleared: int
    labels_added: int
    labels_removed: int
    changes: tuple[PhotoChange, ...]
    applied: bool
    audit_id: int | None
    message: str


class _Problems:
    def __init__(self) -> None:
        self.found: list[LineError] = []

    def add(self, line: int | None, message: str) -> None:
        self.found.append(LineError(line, message))

    def raise_any(self) -> None:
        if self.found:
            ordered = sorted(self.found, key=lambda e: (e.line or 0))
            raise TruthImportRefused(ordered[:MAX_ERRORS], max(0, len(ordered) - MAX_ERRORS))


def _labels(raw: Any, line: int, problems: _Problems, *, cell: bool) -> tuple[str, ...] | None:
    if cell and isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.add(line, f"the labels cell starts with '[' but is not a JSON list ({exc.msg}).")
            return None
    if isinstance(raw, str):
        pieces = [p for p in raw.split(LABEL_SEPARATOR) if p.strip()]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        pieces = raw
    else:
        problems.add(line, "labels must be a list of texts or one ';'-separated text.")
        return None
    labels = {normalize_label(p) for p in pieces}
    if "" in labels:
        problems.add(line, "a label is empty.")
    long = sorted(lb for lb in labels if len(lb) > MAX_LABEL)
    if long:
        problems.add(line, f"the label '{long[0][:40]}...' is longer than {MAX_LABEL} characters.")
    return None if "" in labels or long else tuple(sorted(labels))


def _row(record: dict[str, Any], line: int, problems: _Problems, *, cell: bool) -> TruthRow | None:
    """A checked row from a record's photo_id / sha256 / labels (CSV cells are text: `cell`)."""
    raw_id, raw_sha = record.get("photo_id"), record.get("sha256")
    raw_id = None if raw_id in (None, "") else raw_id
    raw_sha = None if raw_sha in (None, "") else raw_sha
    photo_id = sha = None
    ok = True
    if raw_id is None and raw_sha is None:
        problems.add(line, "no photo: give its photo_id or its sha256.")
        ok = False
    if raw_id is not None:
        text = raw_id.strip() if isinstance(raw_id, str) else raw_id
        number = isinstance(text, int) and not isinstance(text, bool) and 0 < text < 2**63
        if number or (isinstance(text, str) and _DIGITS.fullmatch(text)):
            photo_id = int(text)
        else:
            problems.add(line, f"photo_id {str(raw_id)[:40]!r} is not a photo number.")
            ok = False
    if raw_sha is not None:
        sha = raw_sha.strip().lower() if isinstance(raw_sha, str) else None
        if sha is None or not _SHA256.fullmatch(sha):
            problems.add(line, f"sha256 {str(raw_sha)[:70]!r} is not 64 hexadecimal characters.")
            ok = False
    if "labels" not in record:
        problems.add(line, "no labels: give 'labels' (an empty list clears the photo's ground truth).")
        return None
    labels = _labels(record["labels"], line, problems, cell=cell)
    return TruthRow(line, photo_id, sha, labels) if ok and labels is not None else None


def _csv_rows(text: str, problems: _Problems) -> Iterator[TruthRow | None]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if not header:
            return
        if "labels" not in header or not {"photo_id", "sha256"} & set(header):
            problems.add(1, "the header needs a 'labels' column and a 'photo_id' or 'sha256' column "
                            f"(it has: {', '.join(h for h in header if h)[:200] or 'nothing'}).")
            return
        end = reader.line_num
        for cells in reader:
            line, end = end + 1, reader.line_num  # a quoted cell may span lines: report where the record starts
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.add(line, f"{len(cells)} cells, but the header names {len(header)} columns.")
                yield None
                continue
            yield _row(dict(zip(header, cells, strict=False)), line, problems, cell=True)
    except csv.Error as exc:
        problems.add(reader.line_num, f"not readable as CSV ({exc}).")


def _jsonl_rows(text: str, problems: _Problems) -> Iterator[TruthRow | None]:
    # Split on newlines only: str.splitlines also splits inside a JSON string holding U+2028.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.add(line, f"not JSON ({exc.msg} at column {exc.colno}).")
            yield None
            continue
        if not isinstance(record, dict):
            problems.add(line, "not a JSON object (expected {\"photo_id\": ..., \"labels\": [...]}).")
            yield None
            continue
        yield _row(record, line, problems, cell=False)


def _format(data: str, filename: str | None, given: str | None) -> Format:
    if given is not None:
        return check_format(given)
    ext = (filename or "").rsplit(".", 1)[-1].lower()
    if ext in FORMATS:
        return cast(Format, ext)
    return "jsonl" if data.lstrip().startswith("{") else "csv"


def parse_truth(data: str | bytes, *, fmt_name: str | None = None,
                filename: str | None = None) -> tuple[list[TruthRow], list[LineError]]:
    """The file's good rows and every problem found reading it (the photos are not looked up here)."""
    problems = _Problems()
    if len(data) > MAX_IMPORT_BYTES:
        raise TruthImportRefused([LineError(None, f"the file is {len(data):,} bytes; the limit is "
                                                  f"{MAX_IMPORT_BYTES:,} (split it).")])
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise TruthImportRefused([LineError(cast(bytes, data)[:exc.start].count(b"\n") + 1,
                                            "not UTF-8 text (save the file as UTF-8).")]) from None
    rows: list[TruthRow] = []
    reading = _jsonl_rows if _format(text, filename, fmt_name) == "jsonl" else _csv_rows
    count = 0
    for row in reading(text, problems):
        count += 1
        if count > MAX_IMPORT_ROWS:
            problems.add(None, f"more than {MAX_IMPORT_ROWS:,} lines (split the file).")
            break
        if row is not None:
            rows.append(row)
    if count == 0 and not problems.found:
        problems.add(None, "the file has no lines to import.")
    return rows, problems.found


def _lookup(s: Session, org: int, column: Any, values: set[Any]) -> dict[Any, tuple[int, str, str]]:
    found: dict[Any, tuple[int, str, str]] = {}
    ordered = sorted(values)
    for i in range(0, len(ordered), _LOOKUP_CHUNK):
        for pid, sha, name in s.execute(select(PHOTOS.c.id, PHOTOS.c.sha256, PHOTOS.c.filename).where(
                PHOTOS.c.organization_id == org, column.in_(ordered[i:i + _LOOKUP_CHUNK]))):
            found[pid if column is PHOTOS.c.id else sha] = (pid, sha, name)
    return found


def _resolve(s: Session, org: int, rows: list[TruthRow],
             problems: _Problems) -> list[tuple[TruthRow, int, str]]:
    """(row, photo id, filename) for each row whose photo is this organization's, once per photo."""
    by_id = _lookup(s, org, PHOTOS.c.id, {r.photo_id for r in rows if r.photo_id is not None})
    by_sha = _lookup(s, org, PHOTOS.c.sha256, {r.sha256 for r in rows if r.sha256 is not None})
    resolved: list[tuple[TruthRow, int, str]] = []
    first_line: dict[int, int] = {}
    for r in rows:
        hit_id = by_id.get(r.photo_id) if r.photo_id is not None else None
        hit_sha = by_sha.get(r.sha256) if r.sha256 is not None else None
        if r.photo_id is not None and hit_id is None:
            problems.add(r.line, f"photo #{r.photo_id} is not in this organization.")
        if r.sha256 is not None and hit_sha is None:
            problems.add(r.line, f"photo sha256 {r.sha256} is not in this organization.")
        hit = hit_id or hit_sha
        if hit is None or (r.photo_id is not None and hit_id is None) or (r.sha256 is not None and hit_sha is None):
            continue
        if hit_id and hit_sha and hit_id[0] != hit_sha[0]:
            problems.add(r.line, f"photo #{r.photo_id} has sha256 {hit_id[1]}; {r.sha256} is photo #{hit_sha[0]}.")
            continue
        if hit[0] in first_line:
            problems.add(r.line, f"photo #{hit[0]} is also on line {first_line[hit[0]]} (one line per photo).")
            continue
        first_line[hit[0]] = r.line
        resolved.append((r, hit[0], hit[2]))
    return resolved


def _current(s: Session, org: int, photo_ids: list[int]) -> dict[int, set[str]]:
    current: dict[int, set[str]] = {}
    for i in range(0, len(photo_ids), _LOOKUP_CHUNK):
        for pid, label in s.execute(select(TRUTH.c.photo_id, TRUTH.c.label).where(
                TRUTH.c.organization_id == org, TRUTH.c.photo_id.in_(photo_ids[i:i + _LOOKUP_CHUNK]))):
            current.setdefault(pid, set()).add(label)
    return current


def import_truth(actor: Actor, *, data: str | bytes, fmt_name: str | None = None, filename: str | None = None,
                 dry_run: bool = False, now: datetime | None = None,
                 settings: Settings | None = None) -> TruthImport:
    """Check the file, then replace the named photos' ground truth in one transaction (see the module).

    Raises TruthImportRefused listing every problem (nothing written); with `dry_run` nothing is written."""
    actor.require("quality.ground_truth")
    rows, found = parse_truth(data, fmt_name=fmt_name, filename=filename)
    problems = _Problems()
    problems.found.extend(found)
    org, now = actor.organization_id, now or utcnow()
    try:
        with write_session(org, settings) as s:
            resolved = _resolve(s, org, rows, problems)
            problems.raise_any()
            return _apply(s, actor, resolved, rows=len(rows), filename=filename, dry_run=dry_run, now=now)
    except IntegrityError:
        raise ConflictError("A photo's ground truth changed while the import was writing (a review was "
                            "submitted); nothing was imported.", hint="Import the file again.") from None


def _apply(s: Session, actor: Actor, resolved: list[tuple[TruthRow, int, str]], *, rows: int,
           filename: str | None, dry_run: bool, now: datetime) -> TruthImport:
    org = actor.organization_id
    current = _current(s, org, sorted(pid for _, pid, _ in resolved))
    changes = [PhotoChange(r.line, pid, name, tuple(sorted(current.get(pid, ()))), r.labels)
               for r, pid, name in resolved if set(r.labels) != current.get(pid, set())]
    added = sum(len(set(c.after) - set(c.before)) for c in changes)
    removed = sum(len(set(c.before) - set(c.after)) for c in changes)
    cleared = sum(not c.after for c in changes)
    unchanged = len(resolved) - len(changes)
    counts = (f"{fmt.plural(len(changes), 'photo')} changed ({fmt.plural(added, 'label')} added, "
              f"{fmt.count(removed)} removed, {fmt.count(cleared)} cleared), {fmt.count(unchanged)} unchanged")
    audit_id = None
    if not dry_run and changes:
        ids = [c.photo_id for c in changes]
        for i in range(0, len(ids), _LOOKUP_CHUNK):
            s.execute(delete(TRUTH).where(TRUTH.c.organization_id == org,
                                          TRUTH.c.photo_id.in_(ids[i:i + _LOOKUP_CHUNK])))
        values = [{"organization_id": org, "photo_id": c.photo_id, "label": label, "source": "import",
                   "review_id": None, "set_by": actor.user_id, "created_at": now} for c in changes for label in c.after]
        if values:
            s.execute(insert(TRUTH), values)
        sample = changes[:AUDIT_SAMPLE]
        audit_id = audit.record(
            s, actor=actor, action="ground_truth.import", entity_type="ground_truth", entity_id=None,
            before={"photos": {str(c.photo_id): list(c.before) for c in sample}},
            after={"file": filename, "rows": rows, "changed": len(changes), "unchanged": unchanged,
                   "labels_added": added, "labels_removed": removed, "cleared": cleared,
                   "photos": {str(c.photo_id): list(c.after) for c in sample},
                   "sample_of_changed": len(sample) < len(changes)},
            summary=f"Imported ground truth{f' from {filename}' if filename else ''}: {counts}")
    verb = "Would change" if dry_run else "Imported"
    message = (f"{verb} the ground truth of {counts.replace(' changed', '', 1)}." if changes
               else f"Nothing to change: the ground truth of {fmt.plural(unchanged, 'photo')} already matches.")
    return TruthImport(rows=rows, changed=len(changes), unchanged=unchanged, cleared=cleared, labels_added=added,
                       labels_removed=removed, changes=tuple(changes[:PREVIEW_LIMIT]),
                       applied=not dry_run and bool(changes), audit_id=audit_id, message=message)
