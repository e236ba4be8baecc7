"""The Prompts page's Edit tab: the Ace editor, the template check and preview, saving a version (with the
conflict view and carrying a draft over), the test panel; and the side-by-side diff the page also shows."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit_ace import st_ace

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.prompts import templates as prompt_templates
from aiconsole.prompts import versions as prompts
from aiconsole.prompts.catalog import DiffRow, PromptRow, VersionRow
from aiconsole.ui.control.prompt_test_panel import render_test_panel
from aiconsole.ui.widgets import code, flash, md_join, say


def editor_key(prompt_id: int, base_version: int) -> str:
    """The Ace editor's widget key: one draft per prompt and base version."""
    return f"prompt_editor_{prompt_id}_{base_version}"


def show_diff(rows: list[DiffRow], left: str, right: str) -> None:
    """The diff as a table, then each differing line in full (wrapped) side by side."""
    st.dataframe(pd.DataFrame([(r.kind, r.left_no or "", r.left or "", r.right_no or "", r.right or "") for r in rows],
                              columns=["change", "#", left, "# ", right]), hide_index=True, width="stretch")
    changed = [r for r in rows if r.kind != "equal"]
    if changed:
        with st.expander(f"Differing lines in full ({len(changed)})", expanded=len(changed) <= 5):
            for r in changed[:50]:
                c1, c2 = st.columns(2)
                c1.code(f"{r.left_no}: {r.left}" if r.left is not None else "(no line)", language=None,
                        wrap_lines=True)
                c2.code(f"{r.right_no}: {r.right}" if r.right is not None else "(no line)", language=None,
                        wrap_lines=True)
            if len(changed) > 50:
                say("caption", "{} more differing line(s) are in the table above.", len(changed) - 50)


def edit_tab(actor: Actor, prompt: PromptRow, versions: list[VersionRow]) -> None:
    """Pick a base version, edit it (or read it), see its check, save it as a new version, test it on a photo."""
    by_number = {v.version: v for v in versions}
    prompt_id = prompt.id
    if st.session_state.get(f"prompt_base_{prompt_id}") not in by_number:
        st.session_state[f"prompt_base_{prompt_id}"] = versions[0].version
    base_number = st.selectbox("Base version", list(by_number), key=f"prompt_base_{prompt_id}",
                               format_func=lambda n: f"v{n} — {by_number[n].message}"
                               + (f" [{', '.join(by_number[n].labels)}]" if by_number[n].labels else ""))
    base = by_number[base_number]
    can_edit = allowed(actor.role, "prompts.edit")
    draft, extras = _editor(prompt_id, base) if can_edit else _reader(base)
    _check(draft, extras)
    if can_edit:
        _save(actor, prompt, base, draft, extras)
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


def _save(actor: Actor, prompt: PromptRow, base: VersionRow, draft: str, extras: list[str]) -> None:
    """Save as a new version; on a conflict, what changed since the base and carrying the draft over."""
    prompt_id = prompt.id
    message = st.text_input("What changed (saved with the version)", key="prompt_message", max_chars=500)
    if st.button("Save new version", key="prompt_save", type="primary", icon=":material/save:"):
        try:
            saved = prompts.save_version(actor, prompt_id=prompt_id, base_version=base.version, content=draft,
                                         message=message, extra_variables=extras)
            flash("success", "Saved {} v{}.", prompt.name, saved.version)
            st.session_state.pop("_prompt_conflict", None)
            st.session_state.pop("prompt_message", None)
            st.session_state["_prompt_base_next"] = (prompt_id, saved.version)
            st.session_state["_prompt_diff_next"] = (prompt_id, base.version, saved.version)
            st.rerun()
        except prompts.PromptConflict as exc:
            st.session_state["_prompt_conflict"] = (prompt_id, base.version, str(exc), exc.latest_version,
                                                    exc.diff)
        except AiconsoleError as exc:
            say("error", "{}", exc)
    conflict = st.session_state.get("_prompt_conflict")
    if not (conflict and conflict[:2] == (prompt_id, base.version)):
        return
    with st.container(border=True):
        say("error", "{}", conflict[2], icon=":material/merge_type:")
        say("caption", "What changed between v{} (yours started here) and v{}:", base.version, conflict[3])
        show_diff(conflict[4], f"v{base.version}", f"v{conflict[3]}")
        if st.button(f"Carry my draft over onto v{conflict[3]}", key="prompt_rebase"):
            st.session_state["_prompt_draft_next"] = draft
            st.session_state["_prompt_base_next"] = (prompt_id, conflict[3])
            st.session_state.pop(editor_key(prompt_id, conflict[3]), None)  # an older edit there yields
            st.session_state.pop("_prompt_conflict", None)
            st.rerun()
