"""The Ground truth panel through AppTest on the seeded demo (its review history is the ground truth): downloads
per role (decisions for admins and analysts; over the console's limit the CLI), an upload checked as a dry run
whose problems show by line as text, then imported (audited), and golden sets frozen, versioned, locked by a
validation run and deleted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from panel_apps import demo_actor, panel_app
from streamlit.testing.v1 import AppTest

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, ValidationRun
from aiconsole.quality import golden_sets as gs
from aiconsole.quality import ground_truth as gt
from aiconsole.ui.quality import truth_panel
from aiconsole.ui.widgets import FLASH_KEY, shown

PANEL = "aiconsole.ui.quality.truth_panel"


def _downloads(at: AppTest) -> dict[str, Any]:
    return {b.proto.label.split(" (")[0]: b.proto for b in at.get("download_button")}


def _texts(at: AppTest) -> str:
    return "\n".join(shown(str(e.value)) for kind in (at.markdown, at.caption, at.info, at.error, at.success)
                     for e in kind)


def _flashes(at: AppTest) -> list[str]:
    return [shown(m) for _kind, m in at.session_state[FLASH_KEY]] if FLASH_KEY in at.session_state else []


@pytest.mark.parametrize(("role", "decisions"), [("admin", True), ("analyst", True), ("viewer", False),
                                                 ("reviewer", False)])
def test_downloads_per_role(demo_env: dict[str, str], passwords: dict[str, str], role: str,
                            decisions: bool) -> None:
    actor = demo_actor(demo_env, passwords, role)
    at = panel_app(PANEL, actor)
    assert [s.value for s in at.subheader] == ["Export", "Import ground truth", "Golden sets"]
    buttons = _downloads(at)
    photos = gt.export_size(actor)
    assert photos > 0 and buttons["Ground truth"].label == f"Ground truth ({photos:,} photos)"
    assert not buttons["Ground truth"].disabled
    assert buttons["Decisions"].disabled is not decisions
    if not decisions:
        assert buttons["Decisions"].label == "Decisions"
        assert f"Your role ({role}) cannot do this." in shown(buttons["Decisions"].help)
        assert "Importing ground truth is for admins" in _texts(at) and not at.get("file_uploader")
        assert at.button(key="golden_freeze").disabled


def test_an_export_over_the_limit_points_at_the_cli(demo_env: dict[str, str], passwords: dict[str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truth_panel, "MAX_DOWNLOAD_LINES", 10)
    at = panel_app(PANEL, demo_actor(demo_env, passwords, "admin"))
    buttons = _downloads(at)
    assert buttons["Ground truth"].disabled and buttons["Decisions"].disabled
    assert "over the console's 10: use the command line." in shown(buttons["Ground truth"].help)
    assert "aiconsole quality export-truth --format csv --out FILE" in _texts(at)


def test_an_upload_is_checked_its_problems_shown_by_line_then_imported(demo_env: dict[str, str],
                                                                       passwords: dict[str, str]) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    first = json.loads(next(iter("".join(gt.export_ground_truth(admin, fmt="jsonl")).splitlines())))
    at = panel_app(PANEL, admin)
    hostile = "![x](http://evil.example/x.png)"
    bad = f"photo_id,labels\n{first['photo_id']},cat\n999999999,dog\n{hostile},cat\n".encode()
    at.file_uploader(key="truth_upload").set_value(("truth.csv", bad, "text/csv")).run()
    at.button(key="truth_check").click().run()
    assert not at.exception, at.exception
    assert [shown(e.value) for e in at.error] == ["2 problems in the file; nothing was imported."]
    problems = at.dataframe[-1].value
    assert problems.to_dict("records") == [
        {"line": "3", "problem": "photo #999999999 is not in this organization."},
        {"line": "4", "problem": f"photo_id '{hostile}' is not a photo number."}]
    assert "truth_import" not in [b.key for b in at.button]
    # A good file: the preview says what changes, Import writes it and says so.
    good = f"photo_id,labels\n{first['photo_id']},golden check;{first['labels'][0]}\n".encode()
    at.file_uploader(key="truth_upload").set_value(("truth.csv", good, "text/csv")).run()
    at.button(key="truth_check").click().run()
    assert next(shown(i.value) for i in at.info) == (
        "Would change the ground truth of 1 photo (1 label added, "
        f"{len(first['labels']) - 1} removed, 0 cleared), 0 unchanged.")
    preview = at.dataframe[-1].value.to_dict("records")
    assert preview == [{"line": "2", "photo": f"#{first['photo_id']}", "filename": first["filename"],
                        "now": "; ".join(first["labels"]),
                        "after import": "; ".join(sorted({"golden check", first["labels"][0]}))}]
    at.button(key="truth_import").click().run()
    assert not at.exception, at.exception
    assert _flashes(at)[0].startswith("Imported the ground truth of 1 photo")
    with service_session() as s:
        entry = s.query(AuditLog).filter(AuditLog.action == "ground_truth.import").order_by(AuditLog.id.desc()).first()
    assert entry is not None and entry.actor == admin.email and entry.summary.startswith(
        "Imported ground truth from truth.csv: 1 photo changed")


def test_golden_sets_are_frozen_versioned_locked_and_deleted(demo_env: dict[str, str],
                                                             passwords: dict[str, str]) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    at = panel_app(PANEL, admin)
    at.text_input(key="golden_name").input("Panel set")
    at.radio(key="golden_mode").set_value("A random sample").run()
    at.number_input(key="golden_sample").set_value(5).run()
    at.button(key="golden_freeze").click().run()
    assert not at.exception, at.exception
    assert _flashes(at) == ["Froze Panel set v1: 5 photos."]
    at = panel_app(PANEL, admin)
    made = next(r for r in gs.list_golden_sets(admin) if r.name == "Panel set")
    at.selectbox(key="golden_pick").set_value(made.id).run()
    assert "A random sample of 5 of " in _texts(at)
    at.button(key=f"golden_again_{made.id}").click().run()
    assert _flashes(at) == ["Froze Panel set v2: 5 photos."]
    table = panel_app(PANEL, admin).dataframe[-1].value
    assert table[table["name"] == "Panel set"]["version"].tolist() == ["v2", "v1"]
    # Locked by a validation run: Delete is disabled and says why; released, it deletes.
    with service_session() as s:
        run = ValidationRun(organization_id=admin.organization_id, name="lab run", status="running")
        s.add(run)
        s.flush()
        run_id = run.id
    gs.register_run(admin, set_id=made.id, run_id=run_id)
    at = panel_app(PANEL, admin)
    at.selectbox(key="golden_pick").set_value(made.id).run()
    delete = at.button(key=f"golden_delete_{made.id}")
    assert delete.disabled and "A validation run uses it." in shown(delete.help)
    table = at.dataframe[-1].value
    assert table[(table["name"] == "Panel set") & (table["version"] == "v1")]["in use"].tolist() == ["locked"]
    gs.release_run(admin, set_id=made.id, run_id=run_id)
    at = panel_app(PANEL, admin)
    at.selectbox(key="golden_pick").set_value(made.id).run()
    at.button(key=f"golden_delete_{made.id}").click().run()
    at.button(key=f"golden_delete_{made.id}_confirm").click().run()
    assert not at.exception, at.exception
    assert _flashes(at) == ["Deleted golden set 'Panel set' v1 (5 photos)."]
    assert [r.version for r in gs.list_golden_sets(admin) if r.name == "Panel set"] == [2]
