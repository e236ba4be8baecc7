"""The "Debug a photo" tab: find a photo, read its recorded timeline, re-run it with another configuration.

Deep link: ?photo=<id> opens that photo. Provider and user text (errors, traces, raw responses, prompts) is
shown in st.code or through the inert markdown helpers, never as markdown.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from aiconsole.lab import photo_timeline as pt
from aiconsole.lab import prompt_lab
from aiconsole.lab.photos import PhotoChoice
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.formatting import ms
from aiconsole.platform.permissions import allowed
from aiconsole.ui.widgets import md, say, why_not

PICK_KEY = "lab_debug_photo"


def _requested() -> int | None:
    value = st.query_params.get("photo")
    return int(value) if value and str(value).isdigit() else None


def _search(actor: Actor) -> int | None:
    c1, c2, c3 = st.columns([3, 2, 2])
    term = c1.text_input("Photo id, filename or tag", key="lab_debug_query")
    status = c2.selectbox("Status", ["any", *pt.PHOTO_STATUSES], key="lab_debug_status")
    day = c3.date_input("Uploaded on", value=None, key="lab_debug_day")
    hits = pt.search_photos(actor, query=term or "", status=None if status == "any" else status, day=day)
    if not hits:
        say("info", "No photo matches. Clear the filters to see this organization's newest photos.")
        return None
    labels = {h.id: f"#{h.id} · {h.filename} · {h.status} · {h.created_at:%Y-%m-%d %H:%M}" for h in hits}
    ids = list(labels)
    chosen = st.selectbox("Photo", ids, format_func=lambda i: labels[i], key=PICK_KEY)
    return int(chosen) if chosen is not None else None


def _tags_table(attempt: pt.Attempt) -> None:
    if not attempt.tags:
        st.caption("No tags were parsed from this attempt.")
        return
    st.dataframe([{"Tag": t.label, "Confidence": round(t.confidence, 3), "Accept at": t.accept_at,
                   "Reject below": t.reject_below, "Verdict": t.verdict.replace("_", " ")} for t in attempt.tags],
                 hide_index=True, use_container_width=True)


def _attempt(n: int, a: pt.Attempt) -> None:
    with st.expander(f"Attempt {n}: {a.status.replace('_', ' ')} · {a.at:%Y-%m-%d %H:%M:%S}", expanded=n == 1):
        st.markdown(md("Worker {} · {} / {} · prompt version {} · retries {} · cost {}",
                       a.worker_id or "unknown", a.provider, a.model,
                       a.prompt_version_id if a.prompt_version_id is not None else "none (built-in)",
                       a.retry_count, a.cost))
        st.markdown(md("Queue wait {} · provider {} · total {}", ms(a.queue_wait_ms), ms(a.provider_ms),
                       ms(a.total_ms)))
        if a.error_kind or a.error:
            st.markdown("**Error**")
            st.code(f"{a.error_kind or 'error'}: {a.error or ''}", language=None)
        st.markdown("**Parsed tags and the rule applied to each** (the organization's current thresholds)")
        _tags_table(a)
        st.markdown("**Recorded trace** (what the worker recorded for this attempt)")
        if a.trace:
            st.code(json.dumps(list(a.trace), indent=2, default=str)[:20_000], language="json")
        else:
            st.caption("No trace was recorded for this attempt.")
        st.caption("The rendered prompt and raw response are not recorded by the worker; re-run the photo "
                   "below to see the request and answer of a configuration.")


def _decisions(rows: tuple[dict[str, Any], ...]) -> None:
    st.subheader("Reviewer decisions")
    if not rows:
        st.caption("No reviewer has decided on this photo's tags yet.")
        return
    st.dataframe([{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows], hide_index=True)


def _rerun(actor: Actor, photo_id: int, recorded: list[str]) -> None:
    st.subheader("Re-run with another configuration")
    can = allowed(actor.role, "testing.run")
    if not can:
        say("caption", "Re-running a photo is for developers and admins: {}", why_not(actor, "testing.run") or "")
        return
    options = prompt_lab.lab_options(actor)
    providers = list(options.providers)
    c1, c2, c3 = st.columns(3)
    provider = c1.selectbox("Provider", providers, index=providers.index(options.active_provider)
                            if options.active_provider in providers else 0, key="lab_debug_provider")
    models = list(options.providers.get(provider, ()))
    model = c2.selectbox("Model", models, key="lab_debug_model") if models else None
    version = c3.number_input("Prompt version id (0 = production)", min_value=0, step=1, value=0,
                              key="lab_debug_version")
    draft = st.text_area("Or a draft prompt (overrides the version)", key="lab_debug_draft")
    if st.button("Re-run this photo", key="lab_debug_rerun", type="primary"):
        with st.spinner("Calling the provider (nothing is saved)…"):
            run = prompt_lab.run_test(actor, photo=PhotoChoice.from_photo(photo_id), provider=provider, model=model,
                                      draft=draft or None, version_id=int(version) or None)
        if not run.ok:
            say("error", "The provider answered with an error: {}", str(run.error))
            return
        st.markdown("**Request sent**")
        st.code(run.rendered_prompt or "(the provider takes no prompt)", language=None)
        st.markdown("**Raw response**")
        st.code(json.dumps(run.raw_response, indent=2, default=str)[:20_000]
                if not isinstance(run.raw_response, str) else run.raw_response[:20_000], language=None)
        diff = prompt_lab.tag_diff(run.labels(), recorded)
        st.markdown(md("Tags against the last recorded attempt: Jaccard {} · cost {}",
                       f"{diff.jaccard:.2f}", run.cost_text))
        st.dataframe([{"Tag": t, "Change": "added"} for t in diff.added]
                     + [{"Tag": t, "Change": "removed"} for t in diff.removed]
                     + [{"Tag": t, "Change": "same"} for t in diff.common], hide_index=True)


def render(actor: Actor) -> None:
    """Draw the tab."""
    requested = _requested()
    if requested is not None and PICK_KEY not in st.session_state:
        photo_id: int | None = requested
    else:
        photo_id = _search(actor)
    if photo_id is None:
        return
    st.query_params["photo"] = str(photo_id)
    try:
        t = pt.photo_timeline(actor, photo_id=photo_id)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    st.subheader(f"Photo #{t.photo.id}")
    st.markdown(md("{} · status {} · total cost {}", t.photo.filename, t.photo.status.replace("_", " "),
                   t.total_cost))
    st.markdown(md("Enqueued {} · started {} · finished {} · {}", f"{t.photo.created_at:%Y-%m-%d %H:%M:%S}",
                   f"{t.started_at:%Y-%m-%d %H:%M:%S}" if t.started_at else "not yet",
                   f"{t.completed_at:%Y-%m-%d %H:%M:%S}" if t.completed_at else "not yet",
                   fmt.plural(t.attempts_made, "claim")))
    if t.last_error:
        st.code(t.last_error, language=None)
    if not t.attempts:
        st.caption("No attempt has been recorded for this photo yet.")
    for n, a in enumerate(t.attempts, start=1):
        _attempt(n, a)
    _decisions(t.decisions)
    recorded = [s.label for s in t.attempts[-1].tags] if t.attempts else []
    try:
        _rerun(actor, photo_id, recorded)
    except AiconsoleError as exc:
        say("error", "{}", exc)
