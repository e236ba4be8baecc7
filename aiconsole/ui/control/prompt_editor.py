"""The Prompts page's Edit tab: the base version, the Ace editor, the template check and preview, saving a
version (a branch when the base is older on purpose; the three-way view when someone saved meanwhile), the
test panel."""

from __future__ import annotations

import streamlit as st
from streamlit_ace import st_ace

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.prompts import templates as prompt_templates
from aiconsole.prompts import versions as prompts
from aiconsole.prompts.catalog import PromptRow, VersionRow
from aiconsole.ui.control.prompt_analysis_panel import render_analysis
from aiconsole.ui.control.prompt_merge import Conflict, merge_view
from aiconsole.ui.control.prompt_test_panel import render_test_panel
from aiconsole.ui.widgets import code, flash, md_join, say


def editor_key(prompt_id: int, base_version: int) -> str:
    """The Ace editor's widget key: one draft per prompt and base version."""
    return f"prompt_editor_{prompt_id}_{base_version}"


def _seen_key(prompt_id: int, base_version: int) -> str:
    return f"_seen_{editor_key(prompt_id, base_version)}"


def _base_label(v: VersionRow) -> str:
    return f"v{v.version} — {v.message}" + (f" [{', '.join(v.labels)}]" if v.labels else "")


def _base_select(prompt_id: int, by_number: dict[int, VersionRow]) -> VersionRow:
    """The base version picker. Its labels ([production]...) follow label moves and rollbacks."""
    key, shown = f"prompt_base_{prompt_id}", f"_prompt_base_shown_{prompt_id}"
    if st.session_state.get(key) not in by_number:
        st.session_state[key] = next(iter(by_number))
    # The browser shows the option text it was last sent for the picked value; when a label moved since, setting
    # the value again makes Streamlit send the new text (else "[production]" would stay on the old version).
    if st.session_state.get(shown) != _base_label(by_number[st.session_state[key]]):
        st.session_state[key] = st.session_state[key]
    number = st.selectbox("Base version", list(by_number), key=key, format_func=lambda n: _base_label(by_number[n]))
    st.session_state[shown] = _base_label(by_number[number])
    return by_number[number]


def edit_tab(actor: Actor, prompt: PromptRow, versions: list[VersionRow]) -> None:
    """Pick a base version, edit it (or read it), see its check, save it as a new version, test it on a photo."""
    by_number = {v.version: v for v in versions}
    prompt_id, latest = prompt.id, versions[0].version
    base = _base_select(prompt_id, by_number)
    # Opening the editor on a base (picking it, or arriving on it) is the moment "someone saved meanwhile" is
    # measured from: a version saved after it is a conflict, one that was already there makes this a branch.
    if st.session_state.get(f"_prompt_opened_{prompt_id}") != base.version:
        st.session_state[f"_prompt_opened_{prompt_id}"] = base.version
        st.session_state[_seen_key(prompt_id, base.version)] = latest
    seen = int(st.session_state.get(_seen_key(prompt_id, base.version), latest))
    if base.version < seen:
        newer = ", ".join(f"v{n}" for n in sorted(n for n in by_number if base.version < n <= seen))
        say("info", "You are editing v{}; {} is newer. Saving makes a new version based on v{}, without {}'s "
            "changes.", base.version, newer, base.version, newer, icon=":material/call_split:")
    can_edit = allowed(actor.role, "prompts.edit")
    draft, extras = _editor(prompt_id, base) if can_edit else _reader(base)
    _check(draft, extras)
    render_analysis(actor, prompt_id=prompt_id, draft=draft, extras=extras)
    if can_edit:
        _save(actor, prompt, base, seen, draft, extras)
    render_test_panel(actor, draft=draft, prompt_id=prompt_id, version_id=base.id)


def _editor(prompt_id: int, base: VersionRow) -> tuple[str, list[str]]:
    """The Ace editor and the extra-variables field: (draft, extra variables)."""
    key = editor_key(prompt_id, base.version)
    # The editor's starting text must stay the same for its key, or Streamlit would make it a new widget.
    if "_prompt_draft_next" in st.session_state:  # a draft carried over from a conflict
        st.session_state[f"_start_{key}"] = st.session_state.pop("_prompt_draft_next")
    start = st.session_state.setdefault(f"_start_{key}", base.content)
    say("caption", "Write {} (or {}) to insert a variable; the worker fills it in. Known: {}.", code("{{ max_tags }}"),
        code("{max_tags}"), md_join(prompt_templates.KNOWN_VARIABLES))
    value = st_ace(value=start, language="django", theme="chrome", wrap=True, show_gutter=True, min_lines=8,
                   max_lines=40, font_size=14, auto_update=True, key=key)
    draft = start if value is None else str(value)
    extras_text = st.text_input("Extra variables (comma-separated; values come from experiment variants)",
                                key="prompt_extras", value=", ".join(v for v in base.variables
                                                                     if v not in prompt_templates.KNOWN_VARIABLES))
    return draft, _split(extras_text)


def _reader(base: VersionRow) -> tuple[str, list[str]]:
    """The base version read-only, for roles that cannot edit: (its content, its extra variables)."""
    st.code(base.content, language=None, wrap_lines=True, line_numbers=True)
    st.caption("Your role can read prompts but not edit them.")
    return base.content, _split(", ".join(v for v in base.variables if v not in prompt_templates.KNOWN_VARIABLES))


def _split(extras_text: str) -> list[str]:
    return [e.strip() for e in extras_text.split(",") if e.strip()]


def _check(draft: str, extras: list[str]) -> None:
    """The draft's variables, errors and warnings, and a preview with sample values when it is valid."""
    try:
        check = prompt_templates.check_template(draft, extra_variables=extras)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    say("markdown", "**Variables:** {}", md_join(code(v) for v in check.variables) or "none")
    for issue in check.errors:
        say("error", "{}", issue, icon=":material/error:")
    for issue in check.warnings:
        say("warning", "{}", issue, icon=":material/warning:")
    if check.ok:
        with st.expander("Preview with sample values", icon=":material/visibility:"):
            try:
                st.code(prompt_templates.preview(draft, extra_variables=extras), language=None, wrap_lines=True)
            except AiconsoleError as exc:
                say("error", "{}", exc)


def _save(actor: Actor, prompt: PromptRow, base: VersionRow, seen: int, draft: str, extras: list[str]) -> None:
    """Save as a new version; when someone saved meanwhile, the three-way view to merge the draft onto theirs."""
    prompt_id = prompt.id
    message = st.text_input("What changed (saved with the version)", key="prompt_message", max_chars=500)
    if st.button("Save new version", key="prompt_save", type="primary", icon=":material/save:"):
        try:
            saved = prompts.save_version(actor, prompt_id=prompt_id, base_version=base.version, seen_latest=seen,
                                         content=draft, message=message, extra_variables=extras)
            if saved.version == base.version + 1:
                flash("success", "Saved {} v{}.", prompt.name, saved.version)
            else:
                flash("success", "Saved {} v{}, based on v{} (not on v{}).", prompt.name, saved.version, base.version,
                      saved.version - 1)
            st.session_state.pop("_prompt_conflict", None)
            st.session_state.pop("prompt_message", None)
            st.session_state["_prompt_base_next"] = (prompt_id, saved.version)
            st.session_state["_prompt_diff_next"] = (prompt_id, base.version, saved.version)
            st.rerun()
        except prompts.PromptConflict as exc:
            st.session_state["_prompt_conflict"] = (base.version, Conflict(
                prompt_id=prompt_id, message=str(exc), base_version=exc.base_version,
                base_content=exc.base_content, latest_version=exc.latest_version,
                latest_content=exc.latest_content, latest_author=exc.latest_author))
        except AiconsoleError as exc:
            say("error", "{}", exc)
    pending = st.session_state.get("_prompt_conflict")
    if not pending or pending[0] != base.version or pending[1].prompt_id != prompt_id:
        return
    conflict: Conflict = pending[1]
    with st.container(border=True):
        say("error", "{}", conflict.message, icon=":material/merge_type:")
        merged = merge_view(conflict, draft)
    if merged is not None:
        onto = conflict.latest_version
        st.session_state["_prompt_draft_next"] = merged
        st.session_state["_prompt_base_next"] = (prompt_id, onto)
        st.session_state.pop(editor_key(prompt_id, onto), None)  # an older edit there yields
        # The merge was made against v{onto}: a version saved after it is again someone else's.
        st.session_state[f"_prompt_opened_{prompt_id}"] = onto
        st.session_state[_seen_key(prompt_id, onto)] = onto
        st.session_state.pop("_prompt_conflict", None)
        flash("info", "The merged text is in the editor on v{}: review it, then save.", onto)
        st.rerun()
