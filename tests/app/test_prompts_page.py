"""The Prompts page through AppTest: edit, save, label, diff, rollback; conflicts; roles; bad input refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from aiconsole.platform.actor import Actor
from aiconsole.prompts import versions as prompts
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/prompts.py"


def _open(app_as: Callable[[str], AppTest], role: str) -> tuple[AppTest, Actor]:
    at = app_as(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at, at.session_state[ACTOR_KEY]


def _tagger(actor: Actor) -> tuple[prompts.PromptRow, list[prompts.VersionRow]]:
    row = next(r for r in prompts.list_prompts(actor) if r.name == "photo-tagger")
    return row, prompts.list_versions(actor, prompt_id=row.id)


def _texts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def _editor(at: AppTest, prompt_id: int, base: int, text: str) -> str:
    key = f"prompt_editor_{prompt_id}_{base}"
    at.session_state[key] = text
    return key


def test_admin_edits_saves_labels_diffs_and_rolls_back(app_as) -> None:  # type: ignore[no-untyped-def]
    at, admin = _open(app_as, "admin")
    row, versions = _tagger(admin)
    latest = versions[0]
    assert at.selectbox(key="prompt_select").value == row.id
    assert any("photo-tagger" in str(df.value) for df in at.dataframe)
    draft = latest.content + "\nPrefer {{ language }} nouns; at most {max_labels} of them."
    _editor(at, row.id, latest.version, draft)
    at.run()
    assert any("max_labels" in shown(m.value) for m in at.markdown)
    at.text_input(key="prompt_message").input("Prefer plain nouns")
    at.button(key="prompt_save").click().run()
    assert not at.exception, at.exception
    assert f"Saved photo-tagger v{latest.version + 1}." in _texts(at, "success")
    _, versions = _tagger(admin)
    new = versions[0]
    assert (new.version, new.content, new.message, new.author) == (latest.version + 1, draft, "Prefer plain nouns",
                                                                   "admin@demo.aiconsole.dev")
    assert at.selectbox(key=f"prompt_base_{row.id}").value == new.version

    # Label the new version staging.
    at.selectbox(key="label_name").select("staging")
    at.selectbox(key=f"label_version_{row.id}").select(new.version)
    at.button(key="label_move").click().run()
    assert any(f"staging of photo-tagger now points at version {new.version}" in s for s in _texts(at, "success"))
    assert _tagger(admin)[0].labels["staging"] == new.version

    # The diff now compares the new version with the one it was made from.
    assert (at.selectbox(key=f"diff_left_{row.id}").value, at.selectbox(key=f"diff_right_{row.id}").value) == (
        latest.version, new.version)
    assert any(f"v{latest.version} and v{new.version} differ in 1 line." in shown(c.value) for c in at.caption)
    diff = next(df.value for df in at.dataframe if f"v{new.version}" in df.value.columns)
    assert list(diff["change"]).count("added") == 1
    assert draft.splitlines()[-1] in list(diff[f"v{new.version}"])

    # Deploy it (with confirmation), then roll back to the previous production.
    before = _tagger(admin)[0].labels["production"]
    at.selectbox(key="label_name").select("production")
    at.selectbox(key=f"label_version_{row.id}").select(new.version).run()
    at.button(key="label_deploy").click().run()
    at.button(key="label_deploy_confirm").click().run()
    assert _tagger(admin)[0].labels["production"] == new.version
    at.selectbox(key=f"rollback_version_{row.id}").select(before).run()
    at.button(key="prompt_rollback").click().run()
    at.button(key="prompt_rollback_confirm").click().run()
    assert not at.exception, at.exception
    assert any(f"back to version {before}" in s for s in _texts(at, "success"))
    assert _tagger(admin)[0].labels["production"] == before


def test_stale_save_shows_the_conflict_and_keeps_the_draft(app_as) -> None:  # type: ignore[no-untyped-def]
    at, admin = _open(app_as, "developer")
    row, versions = _tagger(admin)
    base = versions[0]
    draft = base.content + "\nMy edit."
    key = _editor(at, row.id, base.version, draft)
    at.run()
    # Meanwhile someone else saves a version from the same base.
    prompts.save_version(admin, prompt_id=row.id, base_version=base.version, content=base.content + "\nTheirs.",
                         message="their change")
    at.text_input(key="prompt_message").input("mine")
    at.button(key="prompt_save").click().run()
    assert not at.exception, at.exception
    [error] = [e for e in _texts(at, "error") if "Not saved" in e]
    assert f"saved version {base.version + 1} of photo-tagger" in error and "draft is kept" in error
    assert at.session_state[key] == draft
    assert _tagger(admin)[1][0].content == base.content + "\nTheirs."
    # Both added a line at the end: a conflict. Write the words myself, take the merge, save it on theirs.
    [choice] = [r for r in at.radio if r.key and r.key.startswith("merge_choice_")]
    choice.set_value("edit").run()
    [words] = [t for t in at.text_area if t.key and t.key.startswith("merge_edit_")]
    assert words.value == "My edit"  # starts from mine; the new line before and the full stop are both sides'
    words.input("Theirs.\nMy edit").run()
    assert any("Your words replace v" in c and "“Theirs”" in c for c in _texts(at, "caption")), _texts(at, "caption")
    at.button(key="prompt_merge_take").click().run()
    assert at.selectbox(key=f"prompt_base_{row.id}").value == base.version + 1
    assert at.session_state[f"_start_prompt_editor_{row.id}_{base.version + 1}"] == base.content + "\nTheirs.\nMy edit."
    at.text_input(key="prompt_message").input("mine, merged")
    at.button(key="prompt_save").click().run()
    assert _tagger(admin)[1][0].content == base.content + "\nTheirs.\nMy edit."


def test_developer_labels_staging_but_not_production(app_as) -> None:  # type: ignore[no-untyped-def]
    at, dev = _open(app_as, "developer")
    assert "production" not in at.selectbox(key="label_name").options
    assert not [b for b in at.button if b.key == "prompt_rollback"]
    row, versions = _tagger(dev)
    at.selectbox(key="label_name").select("new custom label").run()
    at.text_input(key="label_custom").input("candidate-2")
    at.selectbox(key=f"label_version_{row.id}").select(versions[-1].version)
    at.button(key="label_move").click().run()
    assert _tagger(dev)[0].labels["candidate-2"] == versions[-1].version
    assert "production" not in at.selectbox(key=f"label_remove_name_{row.id}").options
    at.selectbox(key=f"label_remove_name_{row.id}").select("candidate-2").run()
    at.button(key="label_remove").click().run()
    assert "candidate-2" not in _tagger(dev)[0].labels
    assert any("Removed candidate-2 from photo-tagger" in s for s in _texts(at, "success"))


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_read_only_roles_see_versions_without_edit_controls(app_as, role: str) -> None:  # type: ignore[no-untyped-def]
    at, _ = _open(app_as, role)
    assert any("photo-tagger" in str(df.value) for df in at.dataframe)
    assert any("not edit them" in shown(c.value) for c in at.caption)
    keys = {b.key for b in at.button}
    assert not keys & {"prompt_save", "label_move", "label_remove", "label_deploy", "prompt_rollback",
                        "prompt_import_run"}
    assert not [t for t in at.text_input if t.key == "prompt_message"]
    assert at.code  # the version's text is shown read-only


BAD = [
    ("Tag it for {{ audience }}.", "Line 1: 'audience' is not a known variable"),
    ("Tag it.\n{% if max_tags %}\nmany", "Line 2: '{% if %}' is never closed"),
    ("x" * (1024 * 1024), "1,048,576 bytes; the limit is 65,536 bytes"),
]


def test_bad_prompts_are_refused_with_the_reason_and_nothing_saved(app_as) -> None:  # type: ignore[no-untyped-def]
    at, dev = _open(app_as, "developer")
    row, versions = _tagger(dev)
    for text, words in BAD:
        _editor(at, row.id, versions[0].version, text)
        at.run()
        assert any(words in e for e in _texts(at, "error")), _texts(at, "error")
        at.text_input(key="prompt_message").input("bad")
        at.button(key="prompt_save").click().run()
        assert any("was not saved" in e and words in e for e in _texts(at, "error")), _texts(at, "error")
    assert len(_tagger(dev)[1]) == len(versions)


def test_developer_creates_a_prompt_after_a_refused_template(app_as) -> None:  # type: ignore[no-untyped-def]
    at, dev = _open(app_as, "developer")
    at.text_input(key="new_prompt_name").input("captions")
    at.text_area(key="new_prompt_content").input("Caption in {{ language }} for {{ audience }}.")
    next(b for b in at.button if b.label == "Create prompt").click().run()
    assert any("Line 1: 'audience' is not a known variable" in e for e in _texts(at, "error"))
    assert "captions" not in {r.name for r in prompts.list_prompts(dev)}
    at.text_area(key="new_prompt_content").input("Caption in {{ language }}, at most {max_tags} words.")
    next(b for b in at.button if b.label == "Create prompt").click().run()
    assert not at.exception, at.exception
    assert "Created captions (version 1)." in _texts(at, "success")
    created = next(r for r in prompts.list_prompts(dev) if r.name == "captions")
    assert at.selectbox(key="prompt_select").value == created.id
    assert prompts.list_versions(dev, prompt_id=created.id)[0].variables == ("language", "max_tags")
    assert any("one version; save another to compare" in shown(i.value) for i in at.info)


def test_import_refuses_a_broken_file_then_imports_an_export(app_as) -> None:  # type: ignore[no-untyped-def]
    import json

    from aiconsole.prompts import transfer as prompt_io

    at, admin = _open(app_as, "admin")
    assert at.download_button(key="export_download")
    at.file_uploader(key="prompt_import").upload("prompts.json", b"{not json", "application/json").run()
    at.button(key="prompt_import_run").click().run()
    assert any("neither JSON" in e and "YAML" in e for e in _texts(at, "error")), _texts(at, "error")
    doc = json.loads(prompt_io.export_prompts(admin))
    doc["prompts"] = [{**p, "name": "copy-" + p["name"]} for p in doc["prompts"] if p["name"] == "product-catalog"]
    at.file_uploader(key="prompt_import").set_value(("p.json", json.dumps(doc).encode(), "application/json")).run()
    at.button(key="prompt_import_run").click().run()
    assert not at.exception, at.exception
    assert any(s.startswith("Imported 1 prompt: 1 new") for s in _texts(at, "success")), _texts(at, "success")
    assert "copy-product-catalog" in {r.name for r in prompts.list_prompts(admin)}
