"""The Prompts page after someone else saved meanwhile: the three-way view, merging, choosing per conflict;
branching from an older version on purpose; labels in the base picker after a rollback (issue 10 items 4, 9)."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from aiconsole.platform.actor import Actor
from aiconsole.prompts import versions as prompts
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/prompts.py"
V1 = "Tag this photo with {{ max_tags }} labels."
V2 = "Tag this photo with up to {{ max_tags }} labels in {{ language }}."
V3 = "Tag this photo with up to {{ max_tags }} labels in {{ language }}. Use lower-case nouns, no duplicates."
# Someone's rewrite, saved as v4 while the editor was open on v3.
V4 = ("Describe what is in the photo with at most {{ max_tags }} short tags in {{ language }}. "
      "Use lower-case nouns, no duplicates.")


def _open(app_as: Callable[[str], AppTest], role: str) -> tuple[AppTest, Actor]:
    at = app_as(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at, at.session_state[ACTOR_KEY]


def _texts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def _prompt_with_three_versions(actor: Actor, name: str) -> int:
    pid = prompts.create_prompt(actor, name=name, content=V1).prompt_id
    prompts.save_version(actor, prompt_id=pid, base_version=1, content=V2, message="Language")
    prompts.save_version(actor, prompt_id=pid, base_version=2, content=V3, message="Lower-case nouns")
    return pid


def _pick(at: AppTest, pid: int) -> None:
    at.run()  # the new prompt among the options first
    at.selectbox(key="prompt_select").select(pid).run()
    assert not at.exception, at.exception


def _save(at: AppTest, message: str) -> None:
    at.text_input(key="prompt_message").input(message)
    at.button(key="prompt_save").click().run()
    assert not at.exception, at.exception


def _newest(actor: Actor, pid: int) -> prompts.VersionRow:
    return prompts.list_versions(actor, prompt_id=pid)[0]


def _stale_save(app_as: Callable[[str], AppTest], name: str, mine: str) -> tuple[AppTest, Actor, int]:
    """Open the editor on v3, someone saves the v4 rewrite, save my draft: refused, three-way view shown."""
    at, dev = _open(app_as, "developer")
    admin = app_as("admin").session_state[ACTOR_KEY]  # someone else
    pid = _prompt_with_three_versions(dev, name)
    _pick(at, pid)
    assert at.selectbox(key=f"prompt_base_{pid}").value == 3
    at.session_state[f"prompt_editor_{pid}_3"] = mine
    at.run()
    prompts.save_version(admin, prompt_id=pid, base_version=3, content=V4, message="Rewrite as a description")
    _save(at, "Skip watermarks")
    [error] = [e for e in _texts(at, "error") if e.startswith("Not saved")]
    assert f"{admin.email} saved version 4 of {name}" in error and "after you opened the editor on version 3" in error
    assert "draft is kept" in error
    assert at.session_state[f"prompt_editor_{pid}_3"] == mine
    assert len(prompts.list_versions(dev, prompt_id=pid)) == 4  # nothing of mine was saved
    return at, dev, pid


def test_stale_save_merges_their_rewrite_and_my_edit(app_as) -> None:  # type: ignore[no-untyped-def]
    mine = V3 + " Skip watermarks and text."
    at, dev, pid = _stale_save(app_as, "merge-clean", mine)
    # The three-way view: base, their version and my draft, changed words marked.
    html = [h.value for h in at.get("html")]
    assert any("<del" in h and "Tag this" in h and "<ins" in h and "Describe what is in the" in h for h in html)
    assert any("<ins" in h and "Skip watermarks and text." in h for h in html)
    assert any("No conflicts: the merge keeps v4's 3 changes and your 1 change" in s
               for s in _texts(at, "success")), _texts(at, "success")
    # Nothing is saved until I take the merge into the editor and save it myself.
    at.button(key="prompt_merge_take").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key=f"prompt_base_{pid}").value == 4
    merged = V4 + " Skip watermarks and text."
    assert at.session_state[f"_start_prompt_editor_{pid}_4"] == merged
    assert any("merged text is in the editor on v4" in s for s in _texts(at, "info"))
    assert _newest(dev, pid).version == 4
    _save(at, "Skip watermarks")
    saved = _newest(dev, pid)
    assert (saved.version, saved.content, saved.message) == (5, merged, "Skip watermarks")
    assert "Saved merge-clean v5." in _texts(at, "success")


def test_choosing_mine_for_a_conflict_keeps_mine_and_says_theirs_is_replaced(app_as) -> None:  # type: ignore[no-untyped-def]
    at, dev, pid = _stale_save(app_as, "merge-conflict", V3.replace("labels", "keywords"))
    assert any("1 conflict: v4 and your draft changed the same words" in w for w in _texts(at, "warning"))
    assert at.button(key="prompt_merge_take").disabled  # a conflict is never settled by default
    [choice] = [r for r in at.radio if r.key and r.key.startswith("merge_choice_")]
    assert choice.value is None
    html = [h.value for h in at.get("html")]
    assert any("short tags" in h and "<del" in h for h in html) and any("keywords" in h and "<ins" in h for h in html)
    choice.set_value("mine").run()
    assert "Your text replaces v4's “short tags”." in _texts(at, "caption"), _texts(at, "caption")
    at.button(key="prompt_merge_take").click().run()
    merged = V4.replace("short tags", "keywords")  # the rest of their rewrite is kept
    assert at.session_state[f"_start_prompt_editor_{pid}_4"] == merged
    _save(at, "Keywords")
    assert _newest(dev, pid).content == merged


def test_choosing_theirs_says_my_words_are_dropped(app_as) -> None:  # type: ignore[no-untyped-def]
    at, dev, pid = _stale_save(app_as, "merge-theirs", V3.replace("labels", "keywords"))
    [choice] = [r for r in at.radio if r.key and r.key.startswith("merge_choice_")]
    choice.set_value("theirs").run()
    assert "v4's text stays; yours (“keywords”) is dropped." in _texts(at, "caption"), _texts(at, "caption")
    at.button(key="prompt_merge_take").click().run()
    # Their version unchanged: saving it again is refused as nothing new.
    assert at.session_state[f"_start_prompt_editor_{pid}_4"] == V4
    _save(at, "Nothing")
    assert any("same as version 4" in e for e in _texts(at, "error"))
    assert _newest(dev, pid).version == 4


def test_branching_from_production_while_staging_is_newer_is_allowed_and_named(app_as) -> None:  # type: ignore[no-untyped-def]
    at, admin = _open(app_as, "admin")
    pid = _prompt_with_three_versions(admin, "branching")
    versions = {v.version: v for v in prompts.list_versions(admin, prompt_id=pid)}
    prompts.move_label(admin, prompt_id=pid, label="production", version_id=versions[2].id, expected_version=None)
    prompts.move_label(admin, prompt_id=pid, label="staging", version_id=versions[3].id, expected_version=None)
    _pick(at, pid)
    at.selectbox(key=f"prompt_base_{pid}").select(2).run()
    assert any("You are editing v2; v3 is newer. Saving makes a new version based on v2" in i
               for i in _texts(at, "info")), _texts(at, "info")
    at.session_state[f"prompt_editor_{pid}_2"] = V2 + " Prefer plain words."
    at.run()
    _save(at, "Plain words on production")
    assert not [e for e in _texts(at, "error") if "Not saved" in e], _texts(at, "error")
    assert "Saved branching v4, based on v2 (not on v3)." in _texts(at, "success"), _texts(at, "success")
    saved = _newest(admin, pid)
    assert (saved.version, saved.content, saved.message) == (4, V2 + " Prefer plain words.",
                                                              "Plain words on production (based on v2, not on v3)")
    assert at.selectbox(key=f"prompt_base_{pid}").value == 4


def _browser_shows(at: AppTest, key: str, picked: str) -> str:
    """The text a browser shows in a selectbox: what Streamlit last sent it for the value, else what was picked."""
    proto = at.selectbox(key=key).proto
    return proto.raw_value if proto.set_value else picked


def test_production_label_moves_in_the_base_picker_after_rollback(app_as) -> None:  # type: ignore[no-untyped-def]
    at, admin = _open(app_as, "admin")
    row = next(r for r in prompts.list_prompts(admin) if r.name == "photo-tagger")
    production = row.labels["production"]
    earlier = production - 1
    key = f"prompt_base_{row.id}"
    box = at.selectbox(key=key)
    picked = next(o for o in box.options if o.startswith(f"v{production} "))
    assert "[production" in picked
    box.select(production).run()  # the person picks production's version as the base: the browser shows `picked`
    shown_now = _browser_shows(at, key, picked)
    at.selectbox(key=f"rollback_version_{row.id}").select(earlier).run()
    shown_now = _browser_shows(at, key, shown_now)
    at.button(key="prompt_rollback").click().run()
    shown_now = _browser_shows(at, key, shown_now)
    at.button(key="prompt_rollback_confirm").click().run()
    assert not at.exception, at.exception
    assert prompts.list_prompts(admin)[[r.id for r in prompts.list_prompts(admin)].index(row.id)].labels[
        "production"] == earlier
    shown_now = _browser_shows(at, key, shown_now)
    assert at.selectbox(key=key).value == production
    assert "production" not in shown_now, shown_now
    assert any(o.startswith(f"v{earlier} ") and "production" in o for o in at.selectbox(key=key).options)
    table = next(df.value for df in at.dataframe if "created by" in df.value.columns)
    labels = dict(zip(table["version"], table["labels"], strict=True))
    assert "production" in labels[earlier] and "production" not in labels[production]
