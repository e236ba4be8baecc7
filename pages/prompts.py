"""Prompts: versions with their labels and usage, the editor (validate, preview, save), labels and rollback,
side-by-side diffs, and export/import."""

import pandas as pd
import streamlit as st
from streamlit_ace import st_ace

from aiconsole.charts import figures as charts
from aiconsole.platform import formatting as fmt
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.prompts import templates as prompt_templates
from aiconsole.prompts import transfer as prompt_io
from aiconsole.prompts import versions as prompts
from aiconsole.ui.control.prompt_test_panel import render_test_panel
from aiconsole.ui.session import require
from aiconsole.ui.widgets import confirmed_action, flash, show_flashes

actor = require("pipeline.view")
st.title(":material/edit_note: Prompts")
show_flashes()
can_edit = allowed(actor.role, "prompts.edit")
can_stage = allowed(actor.role, "prompts.label_staging")
can_deploy = allowed(actor.role, "prompts.label_production")
# Values for keyed widgets are handed over through these and applied before the widgets are drawn.
if "_prompt_select_next" in st.session_state:
    st.session_state["prompt_select"] = st.session_state.pop("_prompt_select_next")
if "_prompt_base_next" in st.session_state:
    _pid, _number = st.session_state.pop("_prompt_base_next")
    st.session_state[f"prompt_base_{_pid}"] = _number
if "_prompt_diff_next" in st.session_state:  # after a save: compare the new version with its base
    _pid, _left, _right = st.session_state.pop("_prompt_diff_next")
    st.session_state[f"diff_left_{_pid}"], st.session_state[f"diff_right_{_pid}"] = _left, _right


def editor_key(prompt_id: int, base_version: int) -> str:
    """The Ace editor's widget key: one draft per prompt and base version."""
    return f"prompt_editor_{prompt_id}_{base_version}"


def show_diff(rows: list[prompts.DiffRow], left: str, right: str) -> None:
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
                st.caption(f"{len(changed) - 50} more differing line(s) are in the table above.")


def new_prompt_form() -> None:
    expander = st.expander("New prompt", icon=":material/add:", expanded=not rows)
    with expander, st.form("new_prompt", border=False):
        name = st.text_input("Name", key="new_prompt_name", max_chars=200)
        description = st.text_input("Description", key="new_prompt_description", max_chars=2000)
        content = st.text_area("First version", key="new_prompt_content", height=160,
                               placeholder="Tag this photo with up to {{ max_tags }} labels in {{ language }}.")
        if st.form_submit_button("Create prompt", type="primary"):
            try:
                first = prompts.create_prompt(actor, name=name, description=description, content=content)
                flash("success", f"Created {name} (version 1).")
                st.session_state["_prompt_select_next"] = first.prompt_id
                st.rerun()
            except AiconsoleError as exc:
                st.error(str(exc))


rows = prompts.list_prompts(actor)
if not rows:
    st.info("This organization has no prompts yet. " + ("Create the first one below." if can_edit else
                                                        "Ask a developer or an admin to create one."))
    if can_edit:
        new_prompt_form()
    st.stop()

st.dataframe(pd.DataFrame([{
    "prompt": r.name, "pipeline": "active" if r.active else "", "production": r.labels.get("production"),
    "staging": r.labels.get("staging"), "latest": r.latest_version,
    "other labels": ", ".join(f"{k}→v{v}" for k, v in r.labels.items() if k not in ("production", "staging")),
    "description": r.description} for r in rows]), hide_index=True, width="stretch")
if can_edit:
    new_prompt_form()

by_id = {r.id: r for r in rows}
if st.session_state.get("prompt_select") not in by_id:
    st.session_state["prompt_select"] = next((r.id for r in rows if r.active), rows[0].id)
prompt_id = st.selectbox("Prompt", list(by_id), key="prompt_select", format_func=lambda i: by_id[i].name)
prompt = by_id[prompt_id]
versions = prompts.list_versions(actor, prompt_id=prompt_id)
by_number = {v.version: v for v in versions}

left, right = st.columns([3, 2])
left.dataframe(pd.DataFrame([{
    "version": v.version, "labels": ", ".join(v.labels), "message": v.message, "author": v.author,
    "saved": v.created_at, "photos": v.photos, "avg confidence": v.avg_confidence,
    "cost / photo": fmt.usd(v.cost_per_photo_micros, places=5) if v.cost_per_photo_micros is not None else "",
} for v in versions]), hide_index=True, width="stretch",
    column_config={"avg confidence": st.column_config.NumberColumn(format="%.3f"),
                   "saved": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
right.plotly_chart(charts.prompt_versions_chart(prompts.usage_frame(versions)), width="stretch")

edit_tab, labels_tab, diff_tab, io_tab = st.tabs(["Edit", "Labels & rollback", "Compare versions", "Export / import"])

# ------------------------------------------------------------------------------------------------- edit
with edit_tab:
    if st.session_state.get(f"prompt_base_{prompt_id}") not in by_number:
        st.session_state[f"prompt_base_{prompt_id}"] = versions[0].version
    base_number = st.selectbox("Base version", list(by_number), key=f"prompt_base_{prompt_id}",
                               format_func=lambda n: f"v{n} — {by_number[n].message}"
                               + (f" [{', '.join(by_number[n].labels)}]" if by_number[n].labels else ""))
    base = by_number[base_number]
    key = editor_key(prompt_id, base.version)
    draft = base.content
    if can_edit:
        # The editor's starting text must stay the same for its key, or Streamlit would make it a new widget.
        if "_prompt_draft_next" in st.session_state:  # a draft carried over from a conflict
            st.session_state[f"_start_{key}"] = st.session_state.pop("_prompt_draft_next")
        start = st.session_state.setdefault(f"_start_{key}", base.content)
        st.caption("Write `{{ max_tags }}` (or `{max_tags}`) to insert a variable; the worker fills it in. "
                   "Known: " + ", ".join(prompt_templates.KNOWN_VARIABLES) + ".")
        value = st_ace(value=start, language="django", theme="chrome", wrap=True, show_gutter=True, min_lines=8,
                       max_lines=40, font_size=14, auto_update=True, key=key)
        draft = start if value is None else str(value)
        extras_text = st.text_input("Extra variables (comma-separated; values come from experiment variants)",
                                    key="prompt_extras", value=", ".join(v for v in base.variables
                                                                         if v not in prompt_templates.KNOWN_VARIABLES))
    else:
        st.code(base.content, language=None, wrap_lines=True, line_numbers=True)
        st.caption("Your role can read prompts but not edit them.")
        extras_text = ", ".join(v for v in base.variables if v not in prompt_templates.KNOWN_VARIABLES)
    extras = [e.strip() for e in extras_text.split(",") if e.strip()]
    try:
        check = prompt_templates.check_template(draft, extra_variables=extras)
    except AiconsoleError as exc:
        st.error(str(exc))
        check = None
    if check is not None:
        # Variable names are identifiers (checked), so a code span shows them safely.
        st.markdown("**Variables:** " + (", ".join(f"`{v}`" for v in check.variables) or "none"))
        for issue in check.errors:
            st.error(str(issue), icon=":material/error:")
        for issue in check.warnings:
            st.warning(str(issue), icon=":material/warning:")
        if check.ok:
            with st.expander("Preview with sample values", icon=":material/visibility:"):
                try:
                    st.code(prompt_templates.preview(draft, extra_variables=extras), language=None, wrap_lines=True)
                except AiconsoleError as exc:
                    st.error(str(exc))
    if can_edit:
        message = st.text_input("What changed (saved with the version)", key="prompt_message", max_chars=500)
        if st.button("Save new version", key="prompt_save", type="primary", icon=":material/save:"):
            try:
                saved = prompts.save_version(actor, prompt_id=prompt_id, base_version=base.version, content=draft,
                                             message=message, extra_variables=extras)
                flash("success", f"Saved {prompt.name} v{saved.version}.")
                st.session_state.pop("_prompt_conflict", None)
                st.session_state.pop("prompt_message", None)
                st.session_state["_prompt_base_next"] = (prompt_id, saved.version)
                st.session_state["_prompt_diff_next"] = (prompt_id, base.version, saved.version)
                st.rerun()
            except prompts.PromptConflict as exc:
                st.session_state["_prompt_conflict"] = (prompt_id, base.version, str(exc), exc.latest_version,
                                                        exc.diff)
            except AiconsoleError as exc:
                st.error(str(exc))
        conflict = st.session_state.get("_prompt_conflict")
        if conflict and conflict[:2] == (prompt_id, base.version):
            with st.container(border=True):
                st.error(conflict[2], icon=":material/merge_type:")
                st.caption(f"What changed between v{base.version} (yours started here) and v{conflict[3]}:")
                show_diff(conflict[4], f"v{base.version}", f"v{conflict[3]}")
                if st.button(f"Carry my draft over onto v{conflict[3]}", key="prompt_rebase"):
                    st.session_state["_prompt_draft_next"] = draft
                    st.session_state["_prompt_base_next"] = (prompt_id, conflict[3])
                    st.session_state.pop(editor_key(prompt_id, conflict[3]), None)  # an older edit there yields
                    st.session_state.pop("_prompt_conflict", None)
                    st.rerun()
    render_test_panel(actor, draft=draft, prompt_id=prompt_id, version_id=base.id)

# ----------------------------------------------------------------------------------------------- labels
with labels_tab:
    st.dataframe(pd.DataFrame([{"label": k, "version": v} for k, v in prompt.labels.items()],
                              columns=["label", "version"]), hide_index=True)
    if not prompt.labels:
        st.caption("No labels yet. The worker uses the version labelled production of the active prompt.")
    if can_stage:
        choices = ["staging", *sorted(k for k in prompt.labels if k not in ("staging", "production")),
                   "new custom label"] + (["production"] if can_deploy else [])
        c1, c2 = st.columns(2)
        label = c1.selectbox("Label", choices, key="label_name")
        if label == "new custom label":
            label = c1.text_input("Custom label name", key="label_custom", placeholder="candidate-2")
        target = c2.selectbox("Version", list(by_number), key=f"label_version_{prompt_id}",
                              format_func=lambda n: f"v{n}")

        def move() -> prompts.LabelChange:
            return prompts.move_label(actor, prompt_id=prompt_id, label=label, version_id=by_number[target].id)

        if label == "production":
            confirmed_action("Deploy to production", key="label_deploy", run=move, icon=":material/rocket_launch:",
                             prompt=f"Production of {prompt.name} moves to v{target}: workers use it for the next "
                                    "photo they claim.")
        elif st.button("Move label", key="label_move", icon=":material/label:"):
            try:
                flash("success", move().message)
                st.rerun()
            except AiconsoleError as exc:
                st.error(str(exc))
        removable = sorted(k for k in prompt.labels if k != "production")
        if removable:
            c1, c2 = st.columns(2)
            gone = c1.selectbox("Remove a label", removable, key=f"label_remove_name_{prompt_id}")
            if c2.button(f"Remove {gone}", key="label_remove", icon=":material/label_off:"):
                try:
                    flash("success", prompts.remove_label(actor, prompt_id=prompt_id, label=gone).message)
                    st.rerun()
                except AiconsoleError as exc:
                    st.error(str(exc))
    else:
        st.caption("Your role cannot move labels.")
    production = prompt.labels.get("production")
    earlier = [n for n in by_number if production is not None and n < production]
    if can_deploy and earlier:
        st.subheader("Roll back production")
        back = st.selectbox("Back to", earlier, key=f"rollback_version_{prompt_id}",
                            format_func=lambda n: f"v{n} — {by_number[n].message}")
        confirmed_action(f"Roll back production to v{back}", key="prompt_rollback", icon=":material/undo:",
                         prompt=f"Production of {prompt.name} moves from v{production} back to v{back}; workers use "
                                "it for the next photo. The move is audited and can be reverted.",
                         run=lambda: prompts.rollback(actor, prompt_id=prompt_id, version_id=by_number[back].id))

# ------------------------------------------------------------------------------------------------- diff
with diff_tab:
    if len(versions) < 2:
        st.info("This prompt has one version; save another to compare them.")
    else:
        c1, c2 = st.columns(2)
        numbers = list(by_number)
        for side, default in (("left", numbers[1]), ("right", numbers[0])):
            if st.session_state.get(f"diff_{side}_{prompt_id}") not in by_number:
                st.session_state[f"diff_{side}_{prompt_id}"] = default
        older = c1.selectbox("From", numbers, key=f"diff_left_{prompt_id}", format_func=lambda n: f"v{n}")
        newer = c2.selectbox("To", numbers, key=f"diff_right_{prompt_id}", format_func=lambda n: f"v{n}")
        rows_ = prompts.diff_versions(actor, prompt_id=prompt_id, left_version_id=by_number[older].id,
                                      right_version_id=by_number[newer].id)
        changed = sum(r.kind != "equal" for r in rows_)
        st.caption(f"{changed} line(s) differ between v{older} and v{newer}.")
        show_diff(rows_, f"v{older}", f"v{newer}")

# ------------------------------------------------------------------------------------------- export/import
with io_tab:
    fmt_choice = st.radio("Format", ["json", "yaml"], horizontal=True, key="export_fmt")
    st.download_button("Export all prompts", data=prompt_io.export_prompts(actor, fmt=fmt_choice),
                       file_name=f"prompts.{fmt_choice}", mime="application/json" if fmt_choice == "json"
                       else "application/x-yaml", key="export_download", icon=":material/download:")
    if can_edit:
        upload = st.file_uploader("Import prompts (a JSON or YAML export)", type=["json", "yaml", "yml"],
                                  key="prompt_import")
        if st.button("Import", key="prompt_import_run", disabled=upload is None, icon=":material/upload:"):
            try:
                with st.spinner("Checking and importing..."):
                    report = prompt_io.import_prompts(actor, data=upload.getvalue() if upload else b"")
                flash("success", report.message)
                st.rerun()
            except AiconsoleError as exc:
                st.error(str(exc))
