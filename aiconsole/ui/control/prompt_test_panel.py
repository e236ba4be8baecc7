"""The editor's test panel: run the draft or a saved version on a photo, side by side with production, and deploy.

The prompt editor calls `render_test_panel`; everything it shows comes from `aiconsole.lab.prompt_lab`
(which checks testing.run itself) and deploying goes through `aiconsole.prompts.versions.move_label` (which
checks prompts.label_production). Provider answers are user-facing text: rendered inert or in code blocks.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from aiconsole.lab import photos as lab_photos
from aiconsole.lab import prompt_lab
from aiconsole.lab.photos import PhotoChoice
from aiconsole.lab.prompt_lab import Comparison, LabOptions, TestRun
from aiconsole.platform import formatting
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.providers.samples import list_samples
from aiconsole.ui.widgets import confirmed_action, md, md_join, say, show_flashes

PHOTO_SOURCES = ("Sample gallery", "Upload a file", "Photo id")
DRAFT, VERSION, PRODUCTION = "Unsaved draft", "Selected saved version", "Production prompt"
VERDICTS = {"accepted": "accepted", "needs_review": "needs review", "rejected": "rejected"}


def render_test_panel(actor: Actor, *, draft: str | None, prompt_id: int | None, version_id: int | None,
                      key_prefix: str = "lab") -> None:
    """Photo, provider and model pickers, the Run test button, results beside production's, and Deploy."""

    def key(name: str) -> str:
        return f"{key_prefix}_{name}"

    st.subheader("Test on a photo")
    if not allowed(actor.role, "testing.run"):
        say("info", "Running tests needs the developer or admin role; yours ({}) can read prompts only.", actor.role)
        return
    show_flashes()
    try:
        options = prompt_lab.lab_options(actor)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    what = _what_to_test(draft, version_id, key)
    left, right = st.columns([3, 2])
    with left:
        photo = _photo_picker(actor, key)
    with right:
        provider, model = _provider_picker(options, key)
        compare = st.toggle("Compare with production", value=True, key=key("compare"),
                            help=md("Also run production ({} · {} with the production prompt) on the same photo.",
                                    options.active_provider, options.active_model))
        with st.expander("Variable values"):
            variables_text = st.text_area("One name=value per line", key=key("variables"), height=100,
                                          placeholder="language=German\naudience=stock library")
    if st.button("Run test", key=key("run"), type="primary", icon=":material/science:", disabled=photo is None,
                 help=None if photo is not None else "Choose a photo first."):
        _run(actor, key, photo, provider, model, what, draft, version_id, variables_text, compare)
    result: TestRun | Comparison | None = st.session_state.get(key("result"))
    if result is None:
        st.caption("Pick a photo, a provider and a model, then run the test. Nothing is saved or queued: "
                   "the photo is analysed once and the answer is shown here.")
        return
    _show_result(result)
    tested_version = st.session_state.get(key("tested_version"))
    if tested_version is not None and prompt_id is not None:
        _deploy(actor, prompt_id, tested_version, key)


def _what_to_test(draft: str | None, version_id: int | None, key: Any) -> str:
    choices = [c for c, present in ((DRAFT, draft is not None), (VERSION, version_id is not None)) if present]
    if len(choices) > 1:
        return str(st.radio("Test", choices, horizontal=True, key=key("what")))
    if choices:
        say("caption", "Testing: {}.", choices[0].lower())
        return choices[0]
    st.caption("Testing: the production prompt.")
    return PRODUCTION


def _photo_picker(actor: Actor, key: Any) -> PhotoChoice | None:
    source = st.radio("Photo", PHOTO_SOURCES, horizontal=True, key=key("photo_source"))
    choice: PhotoChoice | None = None
    if source == PHOTO_SOURCES[0]:
        samples = {s.name: s.title for s in list_samples()}
        cols = st.columns([3, 1])
        name = cols[0].selectbox("Sample photo", list(samples), format_func=samples.__getitem__, key=key("sample"))
        look = cols[1].number_input("Look", min_value=0, max_value=11, value=0, step=1, key=key("look"),
                                    help="0 is the photo itself; 1-11 are crops, flips and exposure changes.")
        choice = PhotoChoice.from_sample(str(name), int(look))
    elif source == PHOTO_SOURCES[1]:
        upload = st.file_uploader("Photo file (checked like an upload, never stored or queued)", key=key("upload"))
        if upload is not None:
            choice = PhotoChoice.from_upload(upload.name, upload.getvalue())
    else:
        photo_id = st.number_input("Photo id", min_value=1, step=1, value=None, key=key("photo_id"),
                                   help="The id of a photo of this organization (see Live Status or the gallery).")
        if photo_id is not None:
            choice = PhotoChoice.from_photo(int(photo_id))
    if choice is None:
        return None
    try:
        st.image(lab_photos.photo_preview(actor, photo=choice, max_side=320), width=240)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return None
    return choice


def _provider_picker(options: LabOptions, key: Any) -> tuple[str, str]:
    names = list(options.providers)
    provider = st.selectbox(
        "Provider", names, index=names.index(options.active_provider) if options.active_provider in names else 0,
        format_func=lambda p: p if options.enabled.get(p, True) else f"{p} (disabled in the pipeline)",
        key=key("provider"))
    models = list(options.providers[str(provider)])
    default = models.index(options.active_model) if options.active_model in models else 0
    model = st.selectbox("Model", models, index=default, key=key(f"model_{provider}"))
    return str(provider), str(model)


def _run(actor: Actor, key: Any, photo: PhotoChoice | None, provider: str, model: str, what: str,
         draft: str | None, version_id: int | None, variables_text: str, compare: bool) -> None:
    if photo is None:
        return
    args: dict[str, Any] = {"photo": photo, "provider": provider, "model": model,
                            "draft": draft if what == DRAFT else None,
                            "version_id": version_id if what == VERSION else None}
    st.session_state.pop(key("result"), None)
    st.session_state.pop(key("tested_version"), None)
    try:
        args["variables"] = prompt_lab.parse_variables(variables_text or "")
        with st.spinner(f"Calling {provider} ({model}){' and production' if compare else ''}…"):
            result = (prompt_lab.compare_with_production(actor, **args) if compare
                      else prompt_lab.run_test(actor, **args))
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    st.session_state[key("result")] = result
    st.session_state[key("tested_version")] = args["version_id"]


def _show_result(result: TestRun | Comparison) -> None:
    if isinstance(result, TestRun):
        _show_run(result, "This test")
        return
    left, right = st.columns(2)
    with left:
        _show_run(result.test, "This test")
    with right:
        _show_run(result.production, "Production")
    st.markdown("##### Tags compared with production")
    if result.diff is None:
        st.info("No comparison: one of the two calls failed (see its error above).")
        return
    d = result.diff
    cols = st.columns(4)
    cols[0].metric("Added", len(d.added))
    cols[1].metric("Removed", len(d.removed))
    cols[2].metric("In both", len(d.common))
    cols[3].metric("Jaccard", f"{d.jaccard:.2f}", help="Tags in both ÷ tags in either; 1.00 = the same tags.")
    for title, labels in (("Added", d.added), ("Removed", d.removed)):
        if labels:
            say("markdown", "**{}:** {}", title, md_join(labels))


def _show_run(run: TestRun, title: str) -> None:
    with st.container(border=True):
        say("markdown", "**{}** · {} · {}", title, run.provider, run.model)
        say("caption", "Photo: {} ({}×{}) · prompt: {}", run.photo.label, run.photo.width, run.photo.height,
            run.prompt_source)
        for note in run.notes:
            say("caption", "{}", note)
        if run.error is not None:
            say("error", "{}", run.error, icon=":material/error:")
        else:
            cols = st.columns(3)
            cols[0].metric("Cost", run.cost_text)
            usage = f"{run.input_tokens:,} in / {run.output_tokens:,} out" if run.billing == "tokens" \
                else f"{run.units:,} unit{'s' if run.units != 1 else ''}"
            cols[1].metric("Tokens" if run.billing == "tokens" else "Units", usage)
            cols[2].metric("Latency", formatting.ms(run.latency_ms), help=md("Total {}", formatting.ms(run.total_ms)))
            if run.tags:
                st.dataframe(
                    [{"tag": t.label, "confidence": t.confidence, "verdict": VERDICTS.get(t.verdict, t.verdict)}
                     for t in run.tags],
                    hide_index=True, width="stretch",
                    column_config={"confidence": st.column_config.ProgressColumn(
                        "confidence", min_value=0.0, max_value=1.0, format="%.2f")})
                say("caption", "Photo status under the current rules: {}", run.photo_status)
            else:
                st.info("The provider answered with no tags for this photo.")
        if run.rendered_prompt is not None:
            st.caption("Rendered prompt" + ("" if run.prompt_sent else " (not sent: this provider takes none)"))
            st.code(run.rendered_prompt, language=None, wrap_lines=True)
        if run.raw_response is not None:
            with st.expander("Raw response"):
                st.json(run.raw_response, expanded=False)


def _deploy(actor: Actor, prompt_id: int, version_id: int, key: Any) -> None:
    if not allowed(actor.role, "prompts.label_production"):
        st.caption("An admin deploys a tested version to production.")
        return
    from aiconsole.prompts import catalog
    from aiconsole.prompts import versions as prompts  # the prompt editor's domain module (labels, audit)

    now = next((r.labels.get("production") for r in catalog.list_prompts(actor) if r.id == prompt_id), None)
    # A click reruns the panel, which reads production afresh: the deploy carries production as the previous
    # run showed it, so a deploy someone made meanwhile is refused as a conflict instead of overwritten.
    seen = st.session_state.get(key("production_seen"), now)
    st.session_state[key("production_seen")] = now
    confirmed_action(
        "Deploy this version to production", key=key("deploy"), icon=":material/rocket_launch:",
        prompt=f"Move the production label ({'not set' if now is None else f'now v{now}'}) to the tested version? "
               "Workers use it for the next photo they claim; the change is audited and can be rolled back.",
        run=lambda: prompts.move_label(actor, prompt_id=prompt_id, label="production", version_id=version_id,
                                       expected_version=seen))
