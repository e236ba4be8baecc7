"""Ground truth and decisions out (CSV, JSONL, streamed in chunks from a server-side cursor) and ground truth in
(CSV or JSONL, every problem with its line number, one transaction or nothing, dry run, audit), on SQLite and
PostgreSQL, with each role's refusals."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from typer.testing import CliRunner
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.cli.main import app
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import AuditLog, GroundTruth, Photo, Prompt, PromptVersion
from aiconsole.platform.errors import PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.quality import ground_truth as gt
from aiconsole.quality import ground_truth_import as gti
from aiconsole.quality.decisions import TagDecision, submit_review

h = load_unit_module("test_review_queue")
runner = CliRunner()
NOW = h.NOW
LATER = NOW + timedelta(hours=2)


def analyst_of(team: Any) -> Actor:
    row = users.create_user(Actor.system("test", team.org), email=f"ann.{team.org}@review.example.com",
                            display_name="ann", role="analyst", password=None)
    return Actor(user_id=row.id, email=row.email, role="analyst", organization_id=team.org)


def truth(org: int) -> dict[int, tuple[tuple[str, str], ...]]:
    """photo -> ((label, source), ...) as stored."""
    with service_session() as s:
        rows = s.execute(select(GroundTruth.photo_id, GroundTruth.label, GroundTruth.source)
                         .where(GroundTruth.organization_id == org).order_by(GroundTruth.photo_id, GroundTruth.label))
        out: dict[int, list[tuple[str, str]]] = {}
        for pid, label, source in rows:
            out.setdefault(pid, []).append((label, source))
    return {k: tuple(v) for k, v in out.items()}


def sha(org: int, photo_id: int) -> str:
    with service_session() as s:
        return str(s.scalar(select(Photo.sha256).where(Photo.id == photo_id, Photo.organization_id == org)))


def import_audits(org: int) -> list[AuditLog]:
    with service_session() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.organization_id == org,
                                                     AuditLog.action == "ground_truth.import")))


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Truth Org")


@pytest.fixture
def reviewed(team: Any) -> dict[str, int]:
    """Two photos reviewed by rita: 'dog' approved; 'cat' renamed to 'salt; pepper', 'sofa' rejected as wrong."""
    with service_session() as s:
        prompt = Prompt(organization_id=team.org, name="tagger")
        s.add(prompt)
        s.flush()
        version = PromptVersion(organization_id=team.org, prompt_id=prompt.id, version=3, content="Tag {{ photo }}")
        s.add(version)
        s.flush()
        version_id = version.id
    a = h.add_photo(team.org, [("dog", 0.45, "needs_review")], minute=0, prompt_version_id=version_id)
    b = h.add_photo(team.org, [("cat", 0.5, "needs_review"), ("sofa", 0.55, "needs_review")], minute=1,
                    provider="gemini", model="gemini-2.5-flash")
    first = h.claim(team.first, order="oldest")
    submit_review(team.first, token=first.token, decisions=h.approve_all(first), now=NOW)
    second = h.claim(team.first, order="oldest")
    by_label = {t.label: t.tag_id for t in second.tags}
    submit_review(team.first, token=second.token, now=NOW + timedelta(minutes=1), decisions=[
        TagDecision(tag_id=by_label["cat"], action="rename", label="salt; pepper"),
        TagDecision(tag_id=by_label["sofa"], action="reject", reason="wrong", note="it is a chair")])
    return {"a": a, "b": b}


def joined(chunks: Iterator[str]) -> str:
    return "".join(chunks)


def test_ground_truth_exports_as_csv_and_jsonl_and_reads_back_unchanged(team: Any, reviewed: dict[str, int],
                                                                       any_settings: Settings) -> None:
    a, b = reviewed["a"], reviewed["b"]
    lines = [json.loads(x) for x in joined(gt.export_ground_truth(team.viewer, fmt="jsonl")).splitlines()]
    assert lines == [
        {"photo_id": a, "filename": "p0.jpg", "sha256": sha(team.org, a), "labels": ["dog"], "source": "review",
         "set_by": team.first.email, "set_at": NOW.isoformat()},
        {"photo_id": b, "filename": "p1.jpg", "sha256": sha(team.org, b), "labels": ["salt; pepper"],
         "source": "review", "set_by": team.first.email, "set_at": (NOW + timedelta(minutes=1)).isoformat()},
    ]
    text = joined(gt.export_ground_truth(team.viewer, fmt="csv"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(gt.TRUTH_COLUMNS)
    # A label holding ';' goes out as a JSON list, so it reads back as one label.
    assert [(r["photo_id"], r["labels"]) for r in rows] == [(str(a), "dog"), (str(b), '["salt; pepper"]')]
    before = truth(team.org)
    for data, name in ((text, "truth.csv"), ("\n".join(json.dumps(x) for x in lines), "truth.jsonl")):
        report = gti.import_truth(team.admin, data=data, filename=name)
        assert (report.rows, report.changed, report.unchanged, report.applied) == (2, 0, 2, False)
        assert report.message == "Nothing to change: the ground truth of 2 photos already matches."
    assert truth(team.org) == before and import_audits(team.org) == []
    # Edited and imported: b's labels replaced (source import), a's line unchanged keeps its review source.
    edited = text.replace('"[""salt; pepper""]"', "chair;Salt; pepper ;")
    report = gti.import_truth(team.admin, data=edited.encode(), filename="truth.csv", now=LATER)
    assert (report.changed, report.unchanged, report.labels_added, report.labels_removed) == (1, 1, 3, 1)
    assert report.changes == (gti.PhotoChange(3, b, "p1.jpg", ("salt; pepper",), ("chair", "pepper", "salt")),)
    assert truth(team.org) == {a: (("dog", "review"),), b: (("chair", "import"), ("pepper", "import"),
                                                           ("salt", "import"))}
    out = [json.loads(x) for x in joined(gt.export_ground_truth(team.viewer, fmt="jsonl")).splitlines()]
    assert out[1]["set_by"] == team.admin.email and out[1]["source"] == "import"
    assert out[1]["set_at"] == LATER.isoformat()


def test_decisions_export_every_decision_as_decided(team: Any, reviewed: dict[str, int]) -> None:
    analyst = analyst_of(team)
    records = [json.loads(x) for x in joined(gt.export_decisions(analyst, fmt="jsonl")).splitlines()]
    assert [{k: r[k] for k in ("photo_id", "action", "reason", "note", "label_before", "label_after", "reviewer",
                               "provider", "model", "prompt", "prompt_version", "queue_order")} for r in records] == [
        {"photo_id": reviewed["a"], "action": "approve", "reason": None, "note": None, "label_before": "dog",
         "label_after": "dog", "reviewer": team.first.email, "provider": "local", "model": "local-analyzer-v1",
         "prompt": "tagger", "prompt_version": 3, "queue_order": "oldest"},
        {"photo_id": reviewed["b"], "action": "reject", "reason": "wrong", "note": "it is a chair",
         "label_before": "sofa", "label_after": None, "reviewer": team.first.email, "provider": "gemini",
         "model": "gemini-2.5-flash", "prompt": None, "prompt_version": None, "queue_order": "oldest"},
        {"photo_id": reviewed["b"], "action": "rename", "reason": None, "note": None, "label_before": "cat",
         "label_after": "salt; pepper", "reviewer": team.first.email, "provider": "gemini",
         "model": "gemini-2.5-flash", "prompt": None, "prompt_version": None, "queue_order": "oldest"},
    ]
    assert [r["confidence"] for r in records] == [0.45, 0.55, 0.5]
    assert records[0]["decided_at"] == NOW.isoformat() and list(records[0]) == list(gt.DECISION_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(joined(gt.export_decisions(team.admin, fmt="csv")))))
    assert [(r["action"], r["reason"], r["label_after"]) for r in rows] == [
        ("approve", "", "dog"), ("reject", "wrong", ""), ("rename", "", "salt; pepper")]
    assert gt.export_size(analyst, decisions=True) == 3 and gt.export_size(team.viewer) == 2


def _many_photos(org: int, n: int) -> None:
    created = datetime(2026, 3, 1, tzinfo=UTC)
    with service_session() as s:
        first = int(s.scalar(select(func.coalesce(func.max(Photo.id), 0))) or 0) + 1
        s.execute(insert(Photo), [
            {"id": first + i, "organization_id": org, "sha256": hashlib.sha256(f"{org}-{i}".encode()).hexdigest(),
             "storage_uri": f"mem://{i}", "filename": f"bulk{i}.jpg", "content_type": "image/jpeg",
             "byte_size": 1, "width": 1, "height": 1, "status": "completed", "created_at": created,
             "updated_at": created} for i in range(n)])
        s.execute(insert(GroundTruth), [
            {"organization_id": org, "photo_id": first + i, "label": label, "source": "import",
             "created_at": created} for i in range(n) for label in ("cat", "animal")])


def test_a_large_export_streams_in_chunks_from_a_server_side_cursor(team: Any, any_settings: Settings) -> None:
    n = 6000
    _many_photos(team.org, n)
    cursors: list[str] = []
    engine = get_engine(any_settings)

    def seen(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM ground_truth" in statement and "count(" not in statement:
            cursors.append(type(cursor).__name__)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        chunks = gt.export_ground_truth(team.viewer, fmt="jsonl", chunk_rows=500)
        first = next(chunks)
        # The first chunk is out while the rest is still in the database: 500 photos read, not 6,000.
        assert first.count("\n") == 500 and cursors
        sizes = [first.count("\n")] + [c.count("\n") for c in chunks]
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sizes == [500] * 12
    if any_settings.resolved_database_url.startswith("postgresql"):
        assert cursors == ["ServerCursor"]  # psycopg's named cursor: rows stay on the server until fetched
    # Memory: consuming the export holds a chunk, never the whole file (1.4 MB of JSONL in chunks of 100 lines).
    tracemalloc.start()
    total = 0
    try:
        for chunk in gt.export_ground_truth(team.viewer, fmt="jsonl", chunk_rows=100):
            total += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total > 1_000_000 and peak < total / 5, (total, peak)
    csv_lines = sum(c.count("\n") for c in gt.export_ground_truth(team.viewer, fmt="csv", chunk_rows=700))
    assert csv_lines == n + 1


def _bad_csv(team: Any, photo: int, other_org_sha: str, other_photo: int) -> str:
    good = sha(team.org, photo)
    return "\n".join([
        "photo_id,sha256,labels,comment",          # line 1
        f"{photo},,dog;animal,",                    # 2: fine
        ",,cat,",                                   # 3: no photo
        "abc,,cat,",                                # 4: photo_id not a number
        ",xyz,cat,",                                # 5: sha256 malformed
        "999999,,cat,",                             # 6: photo id not in this organization
        f",{other_org_sha},cat,",                   # 7: another organization's photo, by sha256
        f"{other_photo},{good},cat,",               # 8: id and sha256 name different photos... (id unknown here)
        f",{good},cat,",                            # 9: the same photo as line 2
        f'{photo},,"[""cat"", """"]",',             # 10: an empty label in a JSON list (and line 2's photo)
        f"{photo},,{'x' * 201},",                   # 11: a label too long (and line 2's photo)
        f"{photo},,cat,extra,more",                 # 12: too many cells
        f'{photo},,"[broken",',                     # 13: '[' but not JSON
        "",                                         # 14: blank, skipped
    ])


def test_every_problem_is_listed_with_its_line_and_nothing_is_written(team: Any, reviewed: dict[str, int]) -> None:
    other = h.make_team("Other Org")
    other_photo = h.add_photo(other.org, [("x", 0.5, "needs_review")], minute=9)
    before = truth(team.org)
    a = reviewed["a"]
    with pytest.raises(gti.TruthImportRefused) as refused:
        gti.import_truth(team.admin, data=_bad_csv(team, a, sha(other.org, other_photo), other_photo),
                         filename="t.csv")
    assert [str(e) for e in refused.value.errors] == [
        "line 3: no photo: give its photo_id or its sha256.",
        "line 4: photo_id 'abc' is not a photo number.",
        "line 5: sha256 'xyz' is not 64 hexadecimal characters.",
        "line 6: photo #999999 is not in this organization.",
        f"line 7: photo sha256 {sha(other.org, other_photo)} is not in this organization.",
        f"line 8: photo #{other_photo} is not in this organization.",
        f"line 9: photo #{a} is also on line 2 (one line per photo).",
        "line 10: a label is empty.",
        "line 11: the label '" + "x" * 40 + "...' is longer than 200 characters.",
        "line 12: 5 cells, but the header names 4 columns.",
        "line 13: the labels cell starts with '[' but is not a JSON list (Expecting value).",
    ]
    assert str(refused.value).startswith("11 problems in the file, nothing was imported: line 3: no photo")
    assert truth(team.org) == before and import_audits(team.org) == []
    # Both ids known but different photos; JSONL's own kinds.
    b = reviewed["b"]
    jsonl = "\n".join([
        json.dumps({"photo_id": a, "sha256": sha(team.org, b), "labels": ["x"]}),
        "{not json",
        "[1, 2]",
        json.dumps({"photo_id": b, "labels": [1]}),
        json.dumps({"photo_id": b}),
        json.dumps({"photo_id": True, "labels": []}),
    ])
    with pytest.raises(gti.TruthImportRefused) as refused:
        gti.import_truth(team.admin, data=jsonl, filename="t.jsonl", dry_run=True)
    assert [str(e) for e in refused.value.errors] == [
        f"line 1: photo #{a} has sha256 {sha(team.org, a)}; {sha(team.org, b)} is photo #{b}.",
        "line 2: not JSON (Expecting property name enclosed in double quotes at column 2).",
        'line 3: not a JSON object (expected {"photo_id": ..., "labels": [...]}).',
        "line 4: labels must be a list of texts or one ';'-separated text.",
        "line 5: no labels: give 'labels' (an empty list clears the photo's ground truth).",
        "line 6: photo_id 'True' is not a photo number.",
    ]


@pytest.mark.parametrize(("data", "problem"), [
    (b"sha,tags\n1,cat\n", "line 1: the header needs a 'labels' column and a 'photo_id' or 'sha256' column "
                           "(it has: sha, tags)."),
    (b'photo_id,labels\n1,"cat\n', "line 2: not readable as CSV (unexpected end of data)."),
    (b"photo_id,labels\n1,caf\xe9\n", "line 2: not UTF-8 text (save the file as UTF-8)."),
    (b"", "the file has no lines to import."),
    (b"photo_id,labels\n", "the file has no lines to import."),
])
def test_file_level_problems(team: Any, data: bytes, problem: str) -> None:
    with pytest.raises(gti.TruthImportRefused) as refused:
        gti.import_truth(team.admin, data=data, fmt_name="csv")
    assert [str(e) for e in refused.value.errors] == [problem]


def test_errors_are_listed_up_to_the_cap_then_counted(team: Any) -> None:
    data = "photo_id,labels\n" + "".join(f"{900000 + i},cat\n" for i in range(150))
    with pytest.raises(gti.TruthImportRefused) as refused:
        gti.import_truth(team.admin, data=data)
    assert len(refused.value.errors) == gti.MAX_ERRORS and refused.value.more == 50
    assert str(refused.value.errors[-1]) == "line 101: photo #900099 is not in this organization."
    assert str(refused.value).startswith("150 problems in the file")


def test_import_by_sha256_with_labels_as_text_a_bom_and_crlf_and_a_dry_run(team: Any,
                                                                          reviewed: dict[str, int]) -> None:
    a, b = reviewed["a"], reviewed["b"]
    c = h.add_photo(team.org, [("tree", 0.9, "accepted")], status="completed", minute=5)
    data = ("\ufeffsha256,labels\r\n" f"{sha(team.org, a)},\r\n" f"{sha(team.org, b)},\"salt; pepper\"\r\n"
            f"{sha(team.org, c)},Tree;Oak\r\n").encode()
    before = truth(team.org)
    preview = gti.import_truth(team.admin, data=data, dry_run=True)
    assert (preview.applied, preview.changed, preview.cleared, preview.unchanged) == (False, 3, 1, 0)
    assert preview.message == ("Would change the ground truth of 3 photos (4 labels added, 2 removed, 1 cleared), "
                               "0 unchanged.")
    assert [(x.photo_id, x.before, x.after) for x in preview.changes] == [
        (a, ("dog",), ()), (b, ("salt; pepper",), ("pepper", "salt")), (c, (), ("oak", "tree"))]
    assert truth(team.org) == before and import_audits(team.org) == []
    done = gti.import_truth(team.admin, data=data, now=LATER)
    assert done.applied and done.message == preview.message.replace("Would change", "Imported")
    assert truth(team.org) == {b: (("pepper", "import"), ("salt", "import")),
                               c: (("oak", "import"), ("tree", "import"))}
    # The audit entry: who, counts and the sample of changed photos before and after.
    (entry,) = import_audits(team.org)
    assert entry.actor == team.admin.email and entry.id == done.audit_id
    assert entry.summary == ("Imported ground truth: 3 photos changed (4 labels added, 2 removed, 1 cleared), "
                             "0 unchanged")
    assert entry.after is not None and entry.before is not None
    assert (entry.after["changed"], entry.after["cleared"], entry.after["photos"][str(c)]) == (3, 1, ["oak", "tree"])
    assert entry.before["photos"][str(a)] == ["dog"]
    assert next(e.action for e in list_entries(team.admin, limit=5)) == "ground_truth.import"


def test_an_import_is_one_transaction(team: Any, reviewed: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the rows are written (here: the audit entry) leaves every photo as it was."""
    before = truth(team.org)
    data = json.dumps({"photo_id": reviewed["a"], "labels": "puppy"}) + "\n" + json.dumps(
        {"photo_id": reviewed["b"], "labels": []})

    def failing_record(*_: Any, **__: Any) -> int:
        raise RuntimeError("audit refused")

    monkeypatch.setattr(gti.audit, "record", failing_record)
    with pytest.raises(RuntimeError, match="audit refused"):
        gti.import_truth(team.admin, data=data)
    assert truth(team.org) == before
    monkeypatch.undo()
    gti.import_truth(team.admin, data=data)
    assert truth(team.org) == {reviewed["a"]: (("puppy", "import"),)}


def test_permissions(team: Any, reviewed: dict[str, int]) -> None:
    analyst = analyst_of(team)
    data = f"photo_id,labels\n{reviewed['a']},cat\n"
    for who in (team.viewer, team.first, analyst):
        with pytest.raises(PermissionDenied, match=r"quality\.ground_truth"):
            gti.import_truth(who, data=data, dry_run=True)
    for who in (team.viewer, team.first):
        with pytest.raises(PermissionDenied, match=r"quality\.export_decisions"):
            gt.export_decisions(who, fmt="csv")  # refused when asked, before any chunk is read
        with pytest.raises(PermissionDenied):
            gt.export_size(who, decisions=True)
    assert joined(gt.export_ground_truth(team.first, fmt="csv")).count("\n") == 3
    with pytest.raises(ValidationFailed, match="no export format 'xlsx'"):
        gt.export_ground_truth(team.viewer, fmt="xlsx")
    assert import_audits(team.org) == []


def test_export_bytes_is_bounded_for_the_console(team: Any, reviewed: dict[str, int]) -> None:
    data = gt.export_bytes(team.admin, fmt="csv", decisions=True, max_lines=3)
    assert data.decode().count("\n") == 4
    with pytest.raises(ValidationFailed, match="This export has 3 lines; the console builds downloads of up to 2"):
        gt.export_bytes(team.admin, fmt="csv", decisions=True, max_lines=2)


def test_only_the_organizations_own_rows_are_exported(team: Any, reviewed: dict[str, int]) -> None:
    other = h.make_team("Elsewhere")
    photo = h.add_photo(other.org, [("x", 0.5, "needs_review")], minute=3)
    item = h.claim(other.first)
    submit_review(other.first, token=item.token, decisions=h.approve_all(item), now=NOW)
    mine = [json.loads(x)["photo_id"] for x in joined(gt.export_ground_truth(team.viewer, fmt="jsonl")).splitlines()]
    assert photo not in mine and sorted(mine) == sorted(reviewed.values())
    assert all(r["photo_id"] != photo for r in map(json.loads, joined(
        gt.export_decisions(team.admin, fmt="jsonl")).splitlines()))


def test_the_cli_exports_to_a_file_and_imports_with_every_problem_listed(team: Any, reviewed: dict[str, int],
                                                                         tmp_path: Path) -> None:
    tmp_path = tmp_path / "files"
    tmp_path.mkdir()
    out = tmp_path / "truth.csv"
    done = runner.invoke(app, ["quality", "export-truth", "--format", "csv", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"Wrote 2 photos to {out}."
    assert out.read_text() == joined(gt.export_ground_truth(team.admin, fmt="csv"))
    assert list(tmp_path.iterdir()) == [out]  # the partial file was renamed, nothing left behind
    decisions = tmp_path / "decisions.jsonl"
    done = runner.invoke(app, ["quality", "export-truth", "--format", "jsonl", "--decisions", "--out",
                               str(decisions)])
    assert done.output.strip() == f"Wrote 3 decisions to {decisions}." and len(decisions.read_text().split("\n")) == 4
    bad = runner.invoke(app, ["quality", "export-truth", "--format", "xml", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "There is no export format 'xml'" in bad.output
    # Import: a dry run lists the changes and writes nothing; the real one writes; a bad file lists every line.
    edited = tmp_path / "edited.csv"
    edited.write_text(out.read_text().replace(",dog,", ",puppy,"))
    before = truth(team.org)
    dry = runner.invoke(app, ["quality", "import-truth", str(edited), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        f"line 2: photo #{reviewed['a']} p0.jpg: dog -> puppy",
        "Would change the ground truth of 1 photo (1 label added, 1 removed, 0 cleared), 1 unchanged. "
        "Nothing was written (dry run)."]
    assert truth(team.org) == before
    real = runner.invoke(app, ["quality", "import-truth", str(edited)])
    assert real.exit_code == 0 and real.output.startswith("Imported the ground truth of 1 photo")
    assert truth(team.org)[reviewed["a"]] == (("puppy", "import"),)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"photo_id": 424242, "labels": ["x"]}\n{"labels": "y"}\n')
    refused = runner.invoke(app, ["quality", "import-truth", str(broken)])
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == ["line 1: photo #424242 is not in this organization.",
                                           "line 2: no photo: give its photo_id or its sha256.",
                                           "Error: 2 problems; nothing was imported."]
    missing = runner.invoke(app, ["quality", "import-truth", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "Cannot read" in missing.output
