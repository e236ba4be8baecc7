"""Prompts: versions, conflicts on a stale base, labels per role, rollback, diff, usage sums, audit and revert."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, service_session
from aiconsole.platform.db.models import ROLES, AiProcessingResult, AuditLog, Photo, PromptLabel, PromptVersion
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts import transfer as prompt_io
from aiconsole.prompts import versions as prompts
from aiconsole.prompts.diffs import Segment
from aiconsole.prompts.versions import DiffRow, PromptConflict

V1 = "Tag this photo with up to {max_tags} labels."
V2 = "Tag this photo with up to {max_tags} labels.\nAnswer in {{ language }}."


def _actor(row: users.UserRow) -> Actor:
    return Actor(user_id=row.id, email=row.email, role=row.role, organization_id=row.organization_id)


def _world(settings: Settings) -> dict[str, Actor]:
    a = users.create_organization(name="Org A", settings=settings)
    b = users.create_organization(name="Org B", settings=settings)
    out = {role: _actor(users.create_user(Actor.system("t", a.id), email=f"{role}@a.example.com", display_name=role,
                                          role=role, password=None, settings=settings))
           for role in ROLES}
    out["other"] = _actor(users.create_user(Actor.system("t", b.id), email="admin@b.example.com", display_name="B",
                                            role="admin", password=None, settings=settings))
    return out


@pytest.fixture
def people(any_settings: Settings) -> dict[str, Actor]:
    """Org A with one actor per role; 'other' is an admin of org B (SQLite and PostgreSQL)."""
    return _world(any_settings)


@pytest.fixture
def lite(settings: Settings) -> dict[str, Actor]:
    """The same people on SQLite only."""
    return _world(settings)


def test_create_save_and_list(lite: dict[str, Actor], settings: Settings) -> None:
    dev = lite["developer"]
    first = prompts.create_prompt(dev, name="tagger", content=V1, description="Library tags", settings=settings)
    assert (first.version, first.variables, first.message, first.author) == (1, ("max_tags",), "Initial version",
                                                                             "developer@a.example.com")
    second = prompts.save_version(dev, prompt_id=first.prompt_id, base_version=1, content=V2,
                                  message="  Ask for   the language ", settings=settings)
    assert (second.version, second.variables, second.message) == (2, ("max_tags", "language"),
                                                                  "Ask for the language")
    [row] = prompts.list_prompts(lite["viewer"], settings=settings)
    assert (row.name, row.latest_version, row.version_count, row.labels, row.active) == ("tagger", 2, 2, {}, False)
    assert [v.version for v in prompts.list_versions(lite["viewer"], prompt_id=row.id,
                                                     settings=settings)] == [2, 1]
    assert prompts.list_prompts(lite["other"], settings=settings) == []
    with pytest.raises(NotFound):
        prompts.list_versions(lite["other"], prompt_id=row.id, settings=settings)
    with pytest.raises(ValidationFailed, match="already exists"):
        prompts.create_prompt(dev, name="Tagger", content=V1, settings=settings)


def test_stale_save_is_a_conflict_naming_who_and_carrying_the_diff(people: dict[str, Actor],
                                                                  any_settings: Settings) -> None:
    dev, admin = people["developer"], people["admin"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=any_settings)
    prompts.save_version(admin, prompt_id=v1.prompt_id, base_version=1, content=V2, message="language",
                         settings=any_settings)
    with pytest.raises(PromptConflict) as caught:
        prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=V1 + "\nBe brief.",
                             message="brevity", settings=any_settings)
    err = caught.value
    assert isinstance(err, ConflictError)
    assert "admin@a.example.com saved version 2 of tagger" in err.message and "'language'" in err.message
    assert "draft is kept" in str(err.hint)
    assert err.latest_version == 2 and err.latest_content == V2
    assert err.diff == [DiffRow("equal", 1, V1, 1, V1), DiffRow("added", None, None, 2, "Answer in {{ language }}.")]
    with service_session(engine=get_engine(any_settings)) as s:
        assert s.scalar(select(PromptVersion.version).order_by(PromptVersion.version.desc()).limit(1)) == 2
    with pytest.raises(NotFound, match="has no version 9"):
        prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=9, content=V1, message="x",
                             settings=any_settings)


def test_bad_saves_are_refused_and_nothing_is_written(lite: dict[str, Actor], settings: Settings) -> None:
    dev = lite["developer"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=settings)
    cases = [("Hi {{ nobody }}", "x", "Line 1: 'nobody' is not a known variable"),
             ("x" * 1024 * 1024, "x", "1,048,576 bytes"),
             ("a\n{% if max_tags %}b", "x", "Line 2: '{% if %}' is never closed"),
             ("", "x", "empty"),
             (V2, "   ", "message is empty"),
             (V1, "same", "same as version 1")]
    for content, message, words in cases:
        with pytest.raises(ValidationFailed, match=words.replace("{", r"\{").replace("(", r"\(")):
            prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=content, message=message,
                                 settings=settings)
    for role in ("analyst", "reviewer", "viewer"):
        with pytest.raises(PermissionDenied):
            prompts.save_version(lite[role], prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                                 settings=settings)
        with pytest.raises(PermissionDenied):
            prompts.create_prompt(lite[role], name="x", content=V1, settings=settings)
    with pytest.raises(NotFound):
        prompts.save_version(lite["other"], prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                             settings=settings)
    with pytest.raises(ValidationFailed, match="not a usable prompt name"):
        prompts.create_prompt(dev, name="  <b>", content=V1, settings=settings)
    assert [v.version for v in prompts.list_versions(dev, prompt_id=v1.prompt_id, settings=settings)] == [1]


def test_labels_per_role_rollback_and_audit(people: dict[str, Actor], any_settings: Settings) -> None:
    dev, admin = people["developer"], people["admin"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=any_settings)
    v2 = prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                              settings=any_settings)
    pid = v1.prompt_id
    change = prompts.move_label(dev, prompt_id=pid, label="staging", version_id=v2.id, expected_version=None,
                                settings=any_settings)
    assert (change.version, change.previous_version) == (2, None)
    prompts.move_label(dev, prompt_id=pid, label="candidate-2", version_id=v1.id, expected_version=None,
                       settings=any_settings)
    with pytest.raises(PermissionDenied, match=r"prompts\.label_production"):
        prompts.move_label(dev, prompt_id=pid, label="production", version_id=v2.id, expected_version=None,
                           settings=any_settings)
    for role in ("analyst", "reviewer", "viewer"):
        with pytest.raises(PermissionDenied):
            prompts.move_label(people[role], prompt_id=pid, label="staging", version_id=v1.id, expected_version=2,
                               settings=any_settings)
    with pytest.raises(ValidationFailed, match="not a valid label name"):
        prompts.move_label(admin, prompt_id=pid, label="Prod!", version_id=v1.id, expected_version=None,
                           settings=any_settings)
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v1.id, expected_version=None,
                       settings=any_settings)
    deployed = prompts.move_label(admin, prompt_id=pid, label="production", version_id=v2.id, expected_version=1,
                                  settings=any_settings)
    assert "now points at version 2 (was 1)" in deployed.message
    with pytest.raises(ValidationFailed, match="already points at version 2"):
        prompts.move_label(admin, prompt_id=pid, label="production", version_id=v2.id, expected_version=2,
                           settings=any_settings)
    with pytest.raises(PermissionDenied):
        prompts.rollback(dev, prompt_id=pid, version_id=v1.id, expected_version=2, settings=any_settings)
    with pytest.raises(ValidationFailed, match="not earlier than production"):
        prompts.rollback(admin, prompt_id=pid, version_id=v2.id, expected_version=2, settings=any_settings)
    back = prompts.rollback(admin, prompt_id=pid, version_id=v1.id, expected_version=2, settings=any_settings)
    assert (back.version, back.previous_version) == (1, 2)
    [row] = prompts.list_prompts(people["viewer"], settings=any_settings)
    assert row.labels == {"candidate-2": 1, "production": 1, "staging": 2}
    versions = prompts.list_versions(people["viewer"], prompt_id=pid, settings=any_settings)
    assert [v.labels for v in versions] == [("staging",), ("candidate-2", "production")]
    with pytest.raises(NotFound):
        prompts.move_label(people["other"], prompt_id=pid, label="staging", version_id=v1.id, expected_version=None,
                           settings=any_settings)
    entries = audit.list_entries(admin, entity_type="prompt_label", settings=any_settings)
    assert [(e.action, e.summary) for e in entries][:2] == [
        ("prompt.rollback", "Rolled production of tagger back to v1"), ("prompt.label", "Deployed production of "
                                                                                       "tagger to v2")]
    assert entries[0].before == {"prompt_id": pid, "label": "production", "version_id": v2.id, "version": 2}
    assert entries[0].after == {"prompt_id": pid, "label": "production", "version_id": v1.id, "version": 1}
    assert all(e.reversible for e in entries)
    saved = [e for e in audit.list_entries(admin, entity_type="prompt", settings=any_settings)]
    assert [e.action for e in saved] == ["prompt.version", "prompt.version", "prompt.create"]


def _entry(settings: Settings, entry_id: int) -> audit.AuditRow:
    with service_session(engine=get_engine(settings)) as s:
        e = s.get(AuditLog, entry_id)
        assert e is not None
        return audit.AuditRow(id=e.id, created_at=e.created_at, organization_id=e.organization_id,
                              user_id=e.user_id, actor=e.actor, action=e.action, entity_type=e.entity_type,
                              entity_id=e.entity_id, before=e.before, after=e.after, summary=e.summary,
                              reversible=e.reversible, reverted_by_id=e.reverted_by_id)


def _label_entries(settings: Settings) -> list[int]:
    with service_session(engine=get_engine(settings)) as s:
        return list(s.scalars(select(AuditLog.id).where(AuditLog.entity_type == "prompt_label")
                              .order_by(AuditLog.id)))


def _production(settings: Settings, pid: int) -> int | None:
    with service_session(engine=get_engine(settings)) as s:
        return s.scalar(select(PromptLabel.version_id).where(PromptLabel.prompt_id == pid,
                                                             PromptLabel.label == "production"))


def test_revert_audit_restores_the_label_or_refuses_a_later_change(people: dict[str, Actor],
                                                                   any_settings: Settings) -> None:
    admin, dev = people["admin"], people["developer"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=any_settings)
    v2 = prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                              settings=any_settings)
    pid = v1.prompt_id
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v1.id, expected_version=None,
                       settings=any_settings)
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v2.id, expected_version=1,
                       settings=any_settings)
    created, moved = _label_entries(any_settings)
    engine = get_engine(any_settings)
    # An older entry cannot be reverted while a later change is in place.
    with pytest.raises(ConflictError, match="changed again since"), service_session(engine=engine) as s:
        prompts.revert_audit(s, actor=admin, entry=_entry(any_settings, created))
    with pytest.raises(PermissionDenied), service_session(engine=engine) as s:
        prompts.revert_audit(s, actor=dev, entry=_entry(any_settings, moved))
    with service_session(engine=engine) as s:
        new_id = prompts.revert_audit(s, actor=admin, entry=_entry(any_settings, moved))
    assert _production(any_settings, pid) == v1.id
    revert = _entry(any_settings, new_id)
    assert (revert.action, revert.reversible, revert.after["version"]) == ("revert", True, 1)
    # Now the first move is the latest state again: reverting it removes the label it created.
    with service_session(engine=engine) as s:
        prompts.revert_audit(s, actor=admin, entry=_entry(any_settings, created))
    assert _production(any_settings, pid) is None
    # A different organization's admin cannot touch it.
    with pytest.raises(NotFound), service_session(engine=engine) as s:
        prompts.revert_audit(s, actor=people["other"], entry=_entry(any_settings, new_id))


def test_diff_rows_known_answer() -> None:
    left = "a\nb\nc\nd"
    right = "a\nB\nc\ne\nf"
    assert prompts.diff_rows(left, right) == [
        DiffRow("equal", 1, "a", 1, "a"), DiffRow("changed", 2, "b", 2, "B", (Segment("removed", "b"),
                                                                              Segment("added", "B"))),
        DiffRow("equal", 3, "c", 3, "c"),
        DiffRow("changed", 4, "d", 4, "e", (Segment("removed", "d"), Segment("added", "e"))),
        DiffRow("added", None, None, 5, "f")]
    assert prompts.diff_rows("x\ny", "y") == [DiffRow("removed", 1, "x", None, None), DiffRow("equal", 2, "y", 1, "y")]


def test_diff_versions_and_usage_known_answers(lite: dict[str, Actor], settings: Settings) -> None:
    dev = lite["developer"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=settings)
    v2 = prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                              settings=settings)
    rows = prompts.diff_versions(lite["viewer"], prompt_id=v1.prompt_id, left_version_id=v1.id,
                                 right_version_id=v2.id, settings=settings)
    assert [r.kind for r in rows] == ["equal", "added"]
    org = dev.organization_id
    with service_session(engine=get_engine(settings)) as s:
        photo = Photo(organization_id=org, sha256="0" * 64, storage_uri="file:///x.jpg", filename="x.jpg",
                      content_type="image/jpeg", byte_size=1, width=1, height=1, status="completed")
        s.add(photo)
        s.flush()
        # v1: two served photos (0.9, 0.7) and a failure; 3,000 micro-dollars in all -> 1,500 per photo.
        for status, conf, cost, version in (("completed", 0.9, 1000, v1.id), ("needs_review", 0.7, 1500, v1.id),
                                            ("failed", None, 500, v1.id), ("completed", 0.5, 40, v2.id),
                                            ("completed", 0.1, 99, None)):
            s.add(AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider="gemini", model="m",
                                     prompt_version_id=version, status=status, avg_confidence=conf,
                                     api_cost_micros=cost))
    prompts.invalidate_usage(org)
    newest, oldest = prompts.list_versions(lite["analyst"], prompt_id=v1.prompt_id, settings=settings)
    assert (oldest.photos, round(oldest.avg_confidence or 0, 6), oldest.cost_per_photo_micros) == (2, 0.8, 1500)
    assert (newest.photos, newest.avg_confidence, newest.cost_per_photo_micros) == (1, 0.5, 40)
    with pytest.raises(NotFound):
        prompts.diff_versions(lite["other"], prompt_id=v1.prompt_id, left_version_id=v1.id, right_version_id=v2.id,
                              settings=settings)


def test_usage_frame_and_chart_known_answer() -> None:
    from datetime import UTC, datetime

    from aiconsole.charts.base import is_empty_figure
    from aiconsole.charts.control import prompt_versions_chart

    def version(n: int, photos: int, conf: float | None, cost: int | None) -> prompts.VersionRow:
        return prompts.VersionRow(id=n, prompt_id=1, version=n, content="x", variables=(), message="m", author="a",
                                  created_at=datetime(2026, 1, 1, tzinfo=UTC), labels=(), photos=photos,
                                  avg_confidence=conf, cost_per_photo_micros=cost)

    frame = prompts.usage_frame([version(3, 0, None, None), version(2, 4, 0.75, 2500), version(1, 2, 0.5, 1000)])
    assert list(frame["version"]) == [1, 2, 3]
    fig = prompt_versions_chart(frame)
    bars, line = fig.data
    assert list(bars.x) == ["v1", "v2"] and list(bars.y) == [0.5, 0.75]
    assert list(line.y) == [0.001, 0.0025]
    assert is_empty_figure(prompt_versions_chart(prompts.usage_frame([version(1, 0, None, None)])))


def test_two_saves_from_the_same_base_at_once_one_wins(people: dict[str, Actor], any_settings: Settings) -> None:
    import threading

    dev, admin = people["developer"], people["admin"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=any_settings)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def save(actor: Actor, text: str) -> None:
        barrier.wait()
        try:
            prompts.save_version(actor, prompt_id=v1.prompt_id, base_version=1, content=text, message="race",
                                 settings=any_settings)
            outcomes.append("saved")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=save, args=(a, V1 + t)) for a, t in ((dev, "\nA"), (admin, "\nB"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "saved"]
    assert [v.version for v in prompts.list_versions(dev, prompt_id=v1.prompt_id, settings=any_settings)] == [2, 1]


def test_the_worker_reads_and_renders_the_deployed_version(lite: dict[str, Actor], settings: Settings) -> None:
    from aiconsole.pipeline.context import load_org_context
    from aiconsole.platform.db.models import PipelineConfig
    from aiconsole.prompts.render import prompt_values, render_prompt

    admin = lite["admin"]
    v1 = prompts.create_prompt(admin, name="tagger", content=V1, settings=settings)
    mixed = "Up to {max_tags} tags in {{ language }} for a {width}x{height} {{ content_type }}.\nKeep {this}."
    v2 = prompts.save_version(admin, prompt_id=v1.prompt_id, base_version=1, content=mixed, message="m",
                              settings=settings)
    with service_session(engine=get_engine(settings)) as s:
        s.add(PipelineConfig(organization_id=admin.organization_id, active_prompt_id=v1.prompt_id))
    prompts.move_label(admin, prompt_id=v1.prompt_id, label="production", version_id=v2.id, expected_version=None,
                       settings=settings)
    with service_session(engine=get_engine(settings)) as s:
        ctx = load_org_context(s, organization_id=admin.organization_id)
    assert ctx.prompt is not None and ctx.prompt.version_id == v2.id
    text = render_prompt(ctx.prompt, prompt_values(max_tags=7, width=640, height=480, content_type="image/png"))
    assert text == "Up to 7 tags in English for a 640x480 image/png.\nKeep {this}."
    assert prompts.list_prompts(admin, settings=settings)[0].active


def test_remove_label_refuses_production_and_its_revert_restores_it(lite: dict[str, Actor],
                                                                    settings: Settings) -> None:
    admin, dev = lite["admin"], lite["developer"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=settings)
    pid = v1.prompt_id
    prompts.move_label(dev, prompt_id=pid, label="candidate", version_id=v1.id, expected_version=None,
                       settings=settings)
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v1.id, expected_version=None,
                       settings=settings)
    with pytest.raises(ValidationFailed, match="production label cannot be removed"):
        prompts.remove_label(admin, prompt_id=pid, label="production", expected_version=1, settings=settings)
    with pytest.raises(PermissionDenied):
        prompts.remove_label(lite["viewer"], prompt_id=pid, label="candidate", expected_version=1, settings=settings)
    gone = prompts.remove_label(dev, prompt_id=pid, label="candidate", expected_version=1, settings=settings)
    assert (gone.version, gone.previous_version) == (None, 1)
    with pytest.raises(NotFound, match="has no label 'candidate'"):
        prompts.remove_label(dev, prompt_id=pid, label="candidate", expected_version=None, settings=settings)
    assert prompts.list_prompts(dev, settings=settings)[0].labels == {"production": 1}
    removal = _label_entries(settings)[-1]
    with service_session(engine=get_engine(settings)) as s:
        prompts.revert_audit(s, actor=admin, entry=_entry(settings, removal))
    assert prompts.list_prompts(dev, settings=settings)[0].labels == {"candidate": 1, "production": 1}


# ----------------------------------------------- a version that can never render (issue 9 item 6)

HOSTILE = "Tag it.\n{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"


def _stored_version(settings: Settings, actor: Actor, prompt_id: int, number: int, content: str) -> int:
    """A version written straight to the table, as one saved before the render check could have been."""
    with service_session(engine=get_engine(settings)) as s:
        row = PromptVersion(organization_id=actor.organization_id, prompt_id=prompt_id, version=number,
                            content=content, variables=[], message="old", author_id=actor.user_id,
                            created_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


@pytest.mark.timeout(60)
def test_a_template_that_cannot_render_is_neither_saved_imported_nor_deployed(lite: dict[str, Actor],
                                                                              settings: Settings) -> None:
    admin = lite["admin"]
    v1 = prompts.create_prompt(admin, name="tagger", content=V1, settings=settings)
    pid = v1.prompt_id
    for content, words in ((HOSTILE, r"Line 2: rendered with sample values it fails: range\(\) is limited"),
                           ("a\n{{ max_tags + 'x' }}", r"Line 2: .*unsupported operand"),
                           ("{{ ''.__class__ }}", "Line 1: .*'__class__' of 'str' object is unsafe")):
        with pytest.raises(ValidationFailed, match=words):
            prompts.save_version(admin, prompt_id=pid, base_version=1, content=content, message="m",
                                 settings=settings)
        with pytest.raises(ValidationFailed, match=words):
            prompts.create_prompt(admin, name="other", content=content, settings=settings)
    export = {"format": "aiconsole.prompts/1", "prompts": [
        {"name": "imported", "description": "", "labels": {}, "versions": [
            {"version": 1, "content": HOSTILE, "variables": [], "message": "m"}]}]}
    with pytest.raises(ValidationFailed, match=r"imported version 1: .*Line 2: .*range\(\) is limited"):
        prompt_io.import_prompts(admin, data=json.dumps(export), settings=settings)
    assert [r.name for r in prompts.list_prompts(admin, settings=settings)] == ["tagger"]

    # A hostile version already stored (saved before the check) cannot become production, by any path.
    bad = _stored_version(settings, admin, pid, 2, HOSTILE)
    with pytest.raises(ValidationFailed, match=r"Version 2 cannot be deployed: Line 2: .*range\(\) is limited"):
        prompts.move_label(admin, prompt_id=pid, label="production", version_id=bad, expected_version=None,
                           settings=settings)
    v3 = prompts.save_version(admin, prompt_id=pid, base_version=2, content=V2, message="m", settings=settings)
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v3.id, expected_version=None,
                       settings=settings)
    with pytest.raises(ValidationFailed, match="Version 2 cannot be deployed"):
        prompts.rollback(admin, prompt_id=pid, version_id=bad, expected_version=3, settings=settings)
    assert prompts.list_prompts(admin, settings=settings)[0].labels == {"production": 3}
    # Staging may point at it (the lab tests what staging names, and shows the same reason).
    prompts.move_label(admin, prompt_id=pid, label="staging", version_id=bad, expected_version=None, settings=settings)


# ------------------------------------------------------ label moves carry the version seen (issue 9 item 7)

def test_a_stale_label_move_is_refused_naming_who_moved_it_and_when(people: dict[str, Actor],
                                                                   any_settings: Settings) -> None:
    dev, admin = people["developer"], people["admin"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=any_settings)
    v2 = prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=1, content=V2, message="m",
                              settings=any_settings)
    v3 = prompts.save_version(dev, prompt_id=v1.prompt_id, base_version=2, content=V2 + "\nBe brief.",
                              message="m", settings=any_settings)
    pid, s = v1.prompt_id, any_settings
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v1.id, expected_version=None, settings=s)
    # Two admins' pages show production on v1; the first deploys v2, the second's deploy of v3 is stale.
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=v2.id, expected_version=1, settings=s)
    other = Actor(user_id=dev.user_id, email=dev.email, role="admin", organization_id=dev.organization_id)
    with pytest.raises(ConflictError) as caught:
        prompts.move_label(other, prompt_id=pid, label="production", version_id=v3.id, expected_version=1,
                           settings=s)
    assert re.fullmatch(r"Not moved: admin@a\.example\.com changed production of tagger at \d{4}-\d\d-\d\d "
                        r"\d\d:\d\d UTC; it now points at version 2, while your page showed it on version 1\.",
                        caught.value.message), caught.value.message
    assert "Reload the page" in str(caught.value.hint)
    # A page that never saw the label set, and a rollback from a stale page, are refused alike.
    with pytest.raises(ConflictError, match="it now points at version 2, while your page showed it not set"):
        prompts.move_label(other, prompt_id=pid, label="production", version_id=v3.id, expected_version=None,
                           settings=s)
    with pytest.raises(ConflictError, match="while your page showed it on version 3"):
        prompts.rollback(other, prompt_id=pid, version_id=v1.id, expected_version=3, settings=s)
    assert prompts.list_prompts(admin, settings=s)[0].labels == {"production": 2}

    # Staging: moved, then removed by one page while another still shows it.
    prompts.move_label(dev, prompt_id=pid, label="staging", version_id=v3.id, expected_version=None, settings=s)
    with pytest.raises(ConflictError, match="it now points at version 3, while your page showed it on version 1"):
        prompts.remove_label(dev, prompt_id=pid, label="staging", expected_version=1, settings=s)
    prompts.remove_label(dev, prompt_id=pid, label="staging", expected_version=3, settings=s)
    with pytest.raises(ConflictError, match=r"developer@a\.example\.com changed staging .*it now is not set, "
                                            "while your page showed it on version 3"):
        prompts.move_label(admin, prompt_id=pid, label="staging", version_id=v1.id, expected_version=3, settings=s)
    with pytest.raises(ConflictError, match="it now is not set"):
        prompts.remove_label(admin, prompt_id=pid, label="staging", expected_version=3, settings=s)
    # A fresh page (the version it saw is the current one) moves it.
    moved = prompts.move_label(admin, prompt_id=pid, label="production", version_id=v3.id, expected_version=2,
                               settings=s)
    assert (moved.version, moved.previous_version) == (3, 2)


def test_saving_from_an_older_version_is_a_branch_that_names_its_base(lite: dict[str, Actor],
                                                                       settings: Settings) -> None:
    dev, admin = lite["developer"], lite["admin"]
    v1 = prompts.create_prompt(dev, name="tagger", content=V1, settings=settings)
    pid = v1.prompt_id
    prompts.save_version(admin, prompt_id=pid, base_version=1, content=V2, message="language", settings=settings)
    # The editor was opened on v1 (production, say) while v2 was already there: a branch, not a conflict.
    branch = prompts.save_version(dev, prompt_id=pid, base_version=1, seen_latest=2, content=V1 + " Be brief.",
                                  message="brevity", settings=settings)
    assert (branch.version, branch.content, branch.message) == (3, V1 + " Be brief.",
                                                                "brevity (based on v1, not on v2)")
    with service_session(engine=get_engine(settings)) as s:
        after = s.scalars(select(AuditLog.after).where(AuditLog.action == "prompt.version")
                          .order_by(AuditLog.id.desc())).first()
    assert after is not None and after["based_on"] == 1
    # Someone saves v4 while the editor (opened when v3 was the newest) is still on v1: that is a conflict.
    prompts.save_version(admin, prompt_id=pid, base_version=3, content=V2 + " Be brief.", message="both",
                         settings=settings)
    with pytest.raises(PromptConflict) as caught:
        prompts.save_version(dev, prompt_id=pid, base_version=1, seen_latest=3, content=V1 + " Short.",
                             message="shorter", settings=settings)
    err = caught.value
    assert "saved version 4 of tagger" in err.message and "after you opened the editor on version 1" in err.message
    assert (err.base_version, err.base_content, err.latest_version, err.latest_author) == (
        1, V1, 4, "admin@a.example.com")
    with pytest.raises(ValidationFailed, match="same as version 4"):  # a copy of the newest is nothing new
        prompts.save_version(dev, prompt_id=pid, base_version=1, seen_latest=4, content=V2 + " Be brief.",
                             message="x", settings=settings)
    with pytest.raises(NotFound, match="has no version 7"):
        prompts.save_version(dev, prompt_id=pid, base_version=1, seen_latest=7, content=V1 + " x", message="x",
                             settings=settings)
    assert [v.version for v in prompts.list_versions(dev, prompt_id=pid, settings=settings)] == [4, 3, 2, 1]
