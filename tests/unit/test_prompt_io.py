"""Prompt export and import: round trips in JSON and YAML, unchanged versions skipped, bad files refused whole."""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import Prompt, PromptVersion
from aiconsole.platform.errors import PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts import transfer as prompt_io
from aiconsole.prompts import versions as prompts

V1 = "Tag this photo with up to {max_tags} labels."
V2 = "Tag this photo with up to {max_tags} labels.\nAnswer in {{ language }}."


def _people(settings: Settings) -> tuple[Actor, Actor, Actor, Actor]:
    """Org A's admin, developer and viewer, and org B's admin."""
    a = users.create_organization(name="Org A", settings=settings)
    b = users.create_organization(name="Org B", settings=settings)
    made = []
    for org, role, email in ((a, "admin", "admin@a.example.com"), (a, "developer", "dev@a.example.com"),
                             (a, "viewer", "viewer@a.example.com"), (b, "admin", "admin@b.example.com")):
        row = users.create_user(Actor.system("t", org.id), email=email, display_name=role, role=role,
                                password=None, settings=settings)
        made.append(Actor(user_id=row.id, email=row.email, role=row.role, organization_id=row.organization_id))
    return made[0], made[1], made[2], made[3]


def _seed(admin: Actor, settings: Settings) -> int:
    v1 = prompts.create_prompt(admin, name="tagger", content=V1, description="Library tags", settings=settings)
    v2 = prompts.save_version(admin, prompt_id=v1.prompt_id, base_version=1, content=V2, message="language",
                              settings=settings)
    prompts.move_label(admin, prompt_id=v1.prompt_id, label="production", version_id=v1.id, expected_version=None,
                       settings=settings)
    prompts.move_label(admin, prompt_id=v1.prompt_id, label="staging", version_id=v2.id, expected_version=None,
                       settings=settings)
    return v1.prompt_id


def _counts(settings: Settings, org: int) -> tuple[int, int]:
    with service_session(engine=get_engine(settings)) as s:
        return (int(s.scalar(select(func.count()).select_from(Prompt).where(Prompt.organization_id == org)) or 0),
                int(s.scalar(select(func.count()).select_from(PromptVersion)
                             .where(PromptVersion.organization_id == org)) or 0))


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_export_then_import_into_another_org_round_trips(fmt: str, settings: Settings) -> None:
    admin, _dev, viewer, other = _people(settings)
    _seed(admin, settings)
    text = prompt_io.export_prompts(viewer, fmt=fmt, settings=settings)
    doc = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert doc["format"] == "aiconsole.prompts/1"
    [p] = doc["prompts"]
    assert (p["name"], p["labels"], [v["version"] for v in p["versions"]]) == (
        "tagger", {"production": 1, "staging": 2}, [1, 2])
    assert p["versions"][1]["content"] == V2 and p["versions"][1]["variables"] == ["max_tags", "language"]
    report = prompt_io.import_prompts(other, data=text.encode(), settings=settings)
    assert (report.created_prompts, report.added_versions, report.skipped_versions, report.labels_set) == (1, 2, 0, 2)
    [row] = prompts.list_prompts(other, settings=settings)
    assert (row.name, row.labels, row.latest_version) == ("tagger", {"production": 1, "staging": 2}, 2)
    versions = prompts.list_versions(other, prompt_id=row.id, settings=settings)
    assert [v.message for v in versions] == ["language (imported v2)", "Initial version (imported v1)"]
    assert versions[0].content == V2 and versions[0].author == "admin@b.example.com"


def test_reimport_skips_unchanged_and_appends_new_versions_without_moving_labels(settings: Settings) -> None:
    admin, dev, _viewer, _other = _people(settings)
    pid = _seed(admin, settings)
    text = prompt_io.export_prompts(admin, settings=settings)
    report = prompt_io.import_prompts(dev, data=text, settings=settings)
    assert (report.created_prompts, report.added_versions, report.skipped_versions, report.labels_set) == (0, 0, 2, 0)
    doc = json.loads(text)
    doc["prompts"][0]["versions"].append({"version": 3, "content": V2 + "\nBe brief.", "message": "brief"})
    doc["prompts"][0]["labels"]["production"] = 3
    report = prompt_io.import_prompts(dev, data=json.dumps(doc), settings=settings)
    assert (report.added_versions, report.skipped_versions, report.labels_set) == (1, 2, 0)
    [row] = prompts.list_prompts(admin, settings=settings)
    assert (row.latest_version, row.labels) == (3, {"production": 1, "staging": 2})
    assert row.id == pid


def test_developer_import_of_a_new_prompt_sets_staging_but_not_production(settings: Settings) -> None:
    admin, dev, viewer, other = _people(settings)
    _seed(other, settings)
    text = prompt_io.export_prompts(other, settings=settings)
    report = prompt_io.import_prompts(dev, data=text, settings=settings)
    assert report.labels_set == 1 and "production not set (your role cannot deploy)" in report.message
    assert prompts.list_prompts(admin, settings=settings)[0].labels == {"staging": 2}
    with pytest.raises(PermissionDenied):
        prompt_io.import_prompts(viewer, data=text, settings=settings)


def _doc(**prompt: object) -> str:
    base: dict[str, object] = {"name": "p", "versions": [{"version": 1, "content": V1}]}
    base.update(prompt)
    return json.dumps({"format": "aiconsole.prompts/1", "prompts": [base]})


@pytest.mark.parametrize(("data", "words"), [
    ("{not json", "neither JSON"),
    ("a: [unclosed", "neither JSON"),
    ("- just\n- a list\n", "expected a mapping"),
    (b"\xff\xfe", "not UTF-8"),
    (json.dumps({"prompts": "x"}), "prompts: Input should be a valid list"),
    (json.dumps({"format": "other/9", "prompts": []}), "format: Input should be 'aiconsole.prompts/1'"),
    (_doc(versions=[]), "prompts.0.versions: List should have at least 1 item"),
    (_doc(surprise=1), "prompts.0.surprise: Extra inputs are not permitted"),
    (_doc(labels={"production": 7}), "label 'production' points at version 7"),
    (_doc(labels={"Bad Label": 1}), "'Bad Label' is not a valid label name"),
    (_doc(versions=[{"version": 1, "content": V1}, {"version": 1, "content": V2}]), "same number"),
    (_doc(versions=[{"version": 1, "content": "Hi {{ nobody }}"}]), "p version 1: .*Line 1: 'nobody'"),
    (_doc(versions=[{"version": 1, "content": "{% if max_tags %}"}]), "p version 1: .*never closed"),
])
def test_bad_files_are_refused_with_the_problem_and_nothing_is_saved(data: str | bytes, words: str,
                                                                     settings: Settings) -> None:
    admin, *_ = _people(settings)
    with pytest.raises(ValidationFailed, match=words):
        prompt_io.import_prompts(admin, data=data, settings=settings)
    assert _counts(settings, admin.organization_id) == (0, 0)


def test_a_bad_second_prompt_leaves_the_first_unsaved(settings: Settings) -> None:
    admin, *_ = _people(settings)
    doc = {"format": "aiconsole.prompts/1", "prompts": [
        {"name": "good", "versions": [{"version": 1, "content": V1}]},
        {"name": "bad", "versions": [{"version": 1, "content": "x" * (1024 * 1024)}]}]}
    with pytest.raises(ValidationFailed, match=r"bad version 1: .*1,048,576 bytes"):
        prompt_io.import_prompts(admin, data=json.dumps(doc), settings=settings)
    assert _counts(settings, admin.organization_id) == (0, 0)
    with pytest.raises(ValidationFailed, match="Unknown export format"):
        prompt_io.export_prompts(admin, fmt="xml", settings=settings)
