"""The prompt editor's analysis panel: token count (labelled), cost per 1,000 photos, variables, output format
and warnings with their reasons, recomputed as the draft changes (count calls cached by model and text)."""

from __future__ import annotations

import streamlit as st

from aiconsole.lab.prompt_analysis import analyze_draft
from aiconsole.lab.prompt_suggestions import MIN_RESULTS, VersionPerformance, suggestions, version_performance
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.formatting import usd_small
from aiconsole.prompts.analysis import Analysis
from aiconsole.ui.widgets import code, md_join, say


@st.cache_data(ttl=60, show_spinner=False, max_entries=256)
def _cached(_actor: Actor, organization_id: int, draft: str, extras: tuple[str, ...]) -> Analysis:
    # Keyed by organization and draft text (hashed by Streamlit): typing back to a seen text makes no call.
    return analyze_draft(_actor, draft=draft, extra_variables=extras)


@st.cache_data(ttl=300, show_spinner=False, max_entries=64)
def _performance(_actor: Actor, organization_id: int, prompt_id: int) -> list[VersionPerformance]:
    return version_performance(_actor, prompt_id=prompt_id)


def render_analysis(actor: Actor, *, prompt_id: int, draft: str, extras: list[str]) -> None:
    """The compact analysis of the draft as typed."""
    with st.container(border=True, key="prompt_analysis"):
        try:
            result = _cached(actor, actor.organization_id, draft, tuple(extras))
        except AiconsoleError as exc:
            say("error", "{}", exc)
            return
        cols = st.columns(3)
        cols[0].metric(f"Tokens ({result.tokens.label})", f"{result.tokens.tokens:,}")
        cost = result.cost_per_1000_micros
        cols[1].metric("Cost per 1,000 photos", usd_small(cost) if cost is not None else "not token-billed")
        cols[2].metric("Output format", result.output_format)
        say("caption", "Variables: {}", md_join(code(v) for v in result.variables) or "none")
        for w in result.warnings:
            say("warning", "{} {}", w.message, w.reason, icon=":material/warning:")
        if not result.warnings:
            say("caption", "No warnings.")
        try:
            ideas = suggestions(draft, _performance(actor, actor.organization_id, prompt_id))
        except AiconsoleError as exc:
            say("error", "{}", exc)
            return
        for idea in ideas:
            say("info", "{}", idea, icon=":material/lightbulb:")
        if not ideas:
            say("caption", "Suggestions appear once two versions of this prompt have {}+ results each.", MIN_RESULTS)
