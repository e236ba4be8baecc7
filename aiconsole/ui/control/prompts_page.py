"""Prompts: versions with their labels and usage, the editor (validate, preview, save), labels and rollback,
side-by-side diffs, and export/import."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.charts.control import prompt_versions_chart
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.prompts import catalog
from aiconsole.prompts import transfer as prompt_io
from aiconsole.prompts import versions as prompts
from aiconsole.prompts.catalog import PromptRow, VersionRow
from aiconsole.ui.control.diff_view import show_diff
from aiconsole.ui.control.prompt_editor import edit_tab
from aiconsole.ui.widgets import confirmed_action, flash, md, say


def render(actor: Actor) -> None:
    """The prompts table and New prompt form, then the picked prompt's versions and its four tabs."""
    _apply_handovers()
    can_edit = allowed(actor.role, "prompts.edit")
    rows = catalog.list_prompts(actor)
    if not rows:
        st.info("This organization has no prompts yet. " + ("Create the first one below." if can_edit else
                                                            "Ask a developer or an admin to create one."))
        if can_edit:
            _new_prompt_form(actor, expanded=True)
        return

    st.dataframe(pd.DataFrame([{
        "prompt": r.name, "pipeline": "active" if r.active else "", "production": r.labels.get("production"),
        "staging": r.labels.get("staging"), "latest": r.latest_version,
        "other labels": ", ".join(f"{k}→v{v}" for k, v in r.labels.items() if k not in ("production", "staging")),
        "description": r.description} for r in rows]), hide_index=True, width="stretch")
    if can_edit:
        _new_prompt_form(actor, expanded=False)

    by_id = {r.id: r for r in rows}
    if st.session_state.get("prompt_select") not in by_id:
        st.session_state["prompt_select"] = next((r.id for r in rows if r.active), rows[0].id)
    prompt_id = st.selectbox("Prompt", list(by_id), key="prompt_select", format_func=lambda i: by_id[i].name)
    prompt = by_id[prompt_id]
    versions = catalog.list_versions(actor, prompt_id=prompt_id)
    _versions_table(versions)

    edit, labels, diff, io = st.tabs(["Edit", "Labels & rollback", "Compare versions", "Export / import"])
    with edit:
        edit_tab(actor, prompt, versions)
    with labels:
        _labels_tab(actor, prompt, versions)
    with diff:
        _diff_tab(actor, prompt, versions)
    with io:
        _io_tab(actor, can_edit)


def _apply_handovers() -> None:
    # Values for keyed widgets are handed over through these and applied before the widgets are drawn.
    if "_prompt_select_next" in st.session_state:
        st.session_state["prompt_select"] = st.session_state.pop("_prompt_select_next")
    if "_prompt_base_next" in st.session_state:
        pid, number = st.session_state.pop("_prompt_base_next")
        st.session_state[f"prompt_base_{pid}"] = number
    if "_prompt_diff_next" in st.session_state:  # after a save: compare the new version with its base
        pid, left, right = st.session_state.pop("_prompt_diff_next")
        st.session_state[f"diff_left_{pid}"], st.session_state[f"diff_right_{pid}"] = left, right


def _new_prompt_form(actor: Actor, *, expanded: bool) -> None:
    expander = st.expander("New prompt", icon=":material/add:", expanded=expanded)
    with expander, st.form("new_prompt", border=False):
        name = st.text_input("Name", key="new_prompt_name", max_chars=200)
        description = st.text_input("Description", key="new_prompt_description", max_chars=2000)
        content = st.text_area("First version", key="new_prompt_content", height=160,
                               placeholder="Tag this photo with up to {{ max_tags }} labels in {{ language }}.")
        if st.form_submit_button("Create prompt", type="primary"):
            try:
                first = prompts.create_prompt(actor, name=name, description=description, content=content)
                flash("success", "Created {} (version 1).", name)
                st.session_state["_prompt_select_next"] = first.prompt_id
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)


def _versions_table(versions: list[VersionRow]) -> None:
    """Versions newest first: number, labels, usage and who saved it when in view on a 1280 px window; the
    message last, where a long one may run off; the usage chart below."""
    cfg = st.column_config
    st.dataframe(pd.DataFrame([{
        "version": v.version, "labels": ", ".join(v.labels), "photos": v.photos,
        "avg confidence": fmt.number(v.avg_confidence, places=3), "cost / photo": fmt.usd(v.cost_per_photo_micros,
                                                                                           places=5),
        "created by": v.author, "created at": v.created_at, "message": v.message,
    } for v in versions]), hide_index=True, width="stretch",
        column_config={"version": cfg.NumberColumn(width=55, format="v%d"),
                       "labels": cfg.TextColumn(width=110),
                       "photos": cfg.NumberColumn(width=70, format="localized", help="Photos served with it"),
                       "avg confidence": cfg.TextColumn(width=100, alignment="right"),
                       "cost / photo": cfg.TextColumn(width=90, alignment="right"),
                       "created by": cfg.TextColumn(width=200),
                       "created at": cfg.DatetimeColumn(width=130, format="YYYY-MM-DD HH:mm"),
                       "message": cfg.TextColumn(width="large")})
    st.plotly_chart(prompt_versions_chart(catalog.usage_frame(versions)), width="stretch")


def _labels_tab(actor: Actor, prompt: PromptRow, versions: list[VersionRow]) -> None:
    """The prompt's labels; moving and removing them; rolling production back to an earlier version."""
    prompt_id = prompt.id
    by_number = {v.version: v for v in versions}
    can_deploy = allowed(actor.role, "prompts.label_production")
    # A click reruns the page, which reads the labels afresh: a move carries them as the previous run showed
    # them, so a move someone made meanwhile is refused as a conflict instead of overwritten.
    seen = st.session_state.get(f"_labels_seen_{prompt_id}", dict(prompt.labels))
    st.session_state[f"_labels_seen_{prompt_id}"] = dict(prompt.labels)
    st.dataframe(pd.DataFrame([{"label": k, "version": v} for k, v in prompt.labels.items()],
                              columns=["label", "version"]), hide_index=True)
    if not prompt.labels:
        st.caption("No labels yet. The worker uses the version labelled production of the active prompt.")
    if allowed(actor.role, "prompts.label_staging"):
        choices = ["staging", *sorted(k for k in prompt.labels if k not in ("staging", "production")),
                   "new custom label"] + (["production"] if can_deploy else [])
        c1, c2 = st.columns(2)
        label = c1.selectbox("Label", choices, key="label_name")
        if label == "new custom label":
            label = c1.text_input("Custom label name", key="label_custom", placeholder="candidate-2")
        target = c2.selectbox("Version", list(by_number), key=f"label_version_{prompt_id}",
                              format_func=lambda n: f"v{n}")

        def move() -> prompts.LabelChange:
            return prompts.move_label(actor, prompt_id=prompt_id, label=label, version_id=by_number[target].id,
                                      expected_version=seen.get(label))

        if label == "production":
            confirmed_action("Deploy to production", key="label_deploy", run=move, icon=":material/rocket_launch:",
                             prompt=f"Production of {prompt.name} moves to v{target}: workers use it for the next "
                                    "photo they claim.")
        elif st.button("Move label", key="label_move", icon=":material/label:"):
            try:
                flash("success", "{}", move().message)
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)
        removable = sorted(k for k in prompt.labels if k != "production")
        if removable:
            c1, c2 = st.columns(2)
            gone = c1.selectbox("Remove a label", removable, key=f"label_remove_name_{prompt_id}")
            if c2.button(md("Remove {}", gone), key="label_remove", icon=":material/label_off:"):
                try:
                    flash("success", "{}", prompts.remove_label(actor, prompt_id=prompt_id, label=gone,
                                                                expected_version=seen.get(gone)).message)
                    st.rerun()
                except AiconsoleError as exc:
                    say("error", "{}", exc)
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
                         run=lambda: prompts.rollback(actor, prompt_id=prompt_id, version_id=by_number[back].id,
                                                      expected_version=seen.get("production")))


def _diff_tab(actor: Actor, prompt: PromptRow, versions: list[VersionRow]) -> None:
    """Any two versions side by side."""
    if len(versions) < 2:
        st.info("This prompt has one version; save another to compare them.")
        return
    prompt_id = prompt.id
    by_number = {v.version: v for v in versions}
    c1, c2 = st.columns(2)
    numbers = list(by_number)
    for side, default in (("left", numbers[1]), ("right", numbers[0])):
        if st.session_state.get(f"diff_{side}_{prompt_id}") not in by_number:
            st.session_state[f"diff_{side}_{prompt_id}"] = default
    older = c1.selectbox("From", numbers, key=f"diff_left_{prompt_id}", format_func=lambda n: f"v{n}")
    newer = c2.selectbox("To", numbers, key=f"diff_right_{prompt_id}", format_func=lambda n: f"v{n}")
    rows = catalog.diff_versions(actor, prompt_id=prompt_id, left_version_id=by_number[older].id,
                                 right_version_id=by_number[newer].id)
    changed = sum(r.kind != "equal" for r in rows)
    say("caption", "v{} and v{} differ in {}.", older, newer, fmt.plural(changed, "line"))
    show_diff(rows, f"v{older}", f"v{newer}")


def _io_tab(actor: Actor, can_edit: bool) -> None:
    """Export every prompt as JSON or YAML; import an export (prompts.edit)."""
    fmt_choice = st.radio("Format", ["json", "yaml"], horizontal=True, key="export_fmt")
    st.download_button("Export all prompts", data=prompt_io.export_prompts(actor, fmt=fmt_choice),
                       file_name=f"prompts.{fmt_choice}", mime="application/json" if fmt_choice == "json"
                       else "application/x-yaml", key="export_download", icon=":material/download:")
    if not can_edit:
        return
    upload = st.file_uploader("Import prompts (a JSON or YAML export)", type=["json", "yaml", "yml"],
                              key="prompt_import")
    if st.button("Import", key="prompt_import_run", disabled=upload is None, icon=":material/upload:"):
        try:
            with st.spinner("Checking and importing..."):
                report = prompt_io.import_prompts(actor, data=upload.getvalue() if upload else b"")
            flash("success", "{}", report.message)
            st.rerun()
        except AiconsoleError as exc:
            say("error", "{}", exc)
