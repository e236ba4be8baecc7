"""Pipeline: the models table (projected cost and what it rests on, recent quality) and the switch panel, whose
choices say which providers can't be switched to and why before anything is confirmed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.control import pipeline_settings
from aiconsole.control.pipeline_settings import CostProjection, PipelineView, QualityRow
from aiconsole.control.provider_choices import ProviderChoice, provider_choices
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.ui.widgets import flash, inert, say

Choice = tuple[str, str]  # (provider, model)
# Short labels with their meaning in the header's help, and widths that keep every column in view in the
# main area of a 1,280 px window (about 820 px beside the sidebar).
MODEL_COLUMNS = {
    "active": st.column_config.TextColumn("", width=28, help="The active provider and model."),
    "provider": st.column_config.TextColumn("provider", width=95),
    "model": st.column_config.TextColumn("model", width=145),
    "cost": st.column_config.TextColumn("$ / 1,000", width=75,
                                        help="Projected cost of 1,000 photos at today's prices."),
    "basis": st.column_config.TextColumn("cost basis", width=160,
                                         help="What the projection rests on; the notes under the table say more."),
    "photos": st.column_config.TextColumn("photos", width=60, help="Photos it processed in the usage window."),
    "confidence": st.column_config.TextColumn("conf.", width=55, help="Average tag confidence."),
    "review": st.column_config.TextColumn("review", width=60, help="Share of photos sent to review."),
    "errors": st.column_config.TextColumn("errors", width=55, help="Share of photos whose call failed."),
    "p95": st.column_config.TextColumn("p95", width=65, help="95th percentile of the provider's answer time."),
}


def render(actor: Actor, view: PipelineView, *, can_configure: bool) -> None:
    """The models table and, for pipeline.configure, the switch panel."""
    choices = pipeline_settings.model_choices()
    st.subheader("Models")
    days = st.selectbox("Usage window", [1, 7, 30], index=1, key="pipe_days",
                        format_func=lambda d: f"last {fmt.plural(d, 'day')}",
                        help="Projected costs use the organization's average tokens/units per photo in this window.")
    try:
        costs = {(c.provider, c.model): c for c in pipeline_settings.projected_cost_per_1000(actor, days=days)}
        quality = {(q.provider, q.model): q for q in pipeline_settings.recent_quality(actor, days=days)}
        states = provider_choices(actor)
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    _models_table(view, choices, costs, quality, days)
    if can_configure:
        with st.container(border=True):
            _switch_panel(actor, view, choices, costs, quality, states)


def _models_table(view: PipelineView, choices: list[Choice], costs: dict[Choice, CostProjection],
                  quality: dict[Choice, QualityRow], days: int) -> None:
    table = []
    for provider, model in choices:
        c, q = costs[(provider, model)], quality.get((provider, model))
        table.append({
            "active": "●" if (provider, model) == (view.active_provider, view.active_model) else "",
            "provider": provider, "model": model, "cost": fmt.usd(c.cost_per_1000_micros),
            "basis": c.short_basis or c.basis, "photos": f"{q.photos:,}" if q else "0",
            "confidence": fmt.pct(q.avg_confidence) if q else "—",
            "review": fmt.pct(q.needs_review_rate) if q else "—", "errors": fmt.pct(q.error_rate) if q else "—",
            "p95": fmt.ms(q.p95_latency_ms) if q else "—",
        })
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", column_config=MODEL_COLUMNS)
    notes = dict.fromkeys(f"{c.provider}: {c.basis}" for c in costs.values() if c.short_basis != c.basis)
    if notes:
        say("caption", "Cost basis — {}.", "; ".join(notes))
    if not quality:
        say("caption", "No photos were processed in the last {} days, so there is no quality to compare yet; "
            "costs are estimates.", days)


def _switched(report: pipeline_settings.SwitchReport, old_version: int) -> None:
    # A switch leaves the rules alone: a rules form opened before it may still save without a conflict.
    if st.session_state.get("rules_base_version") == old_version:
        st.session_state["rules_base_version"] = report.version
    flash("success", "{}", report.message)
    st.rerun()


def _refusal(provider: str, fallback: str | None, states: dict[str, ProviderChoice]) -> str:
    """Why this pair would be refused ('' when it would not): what the server checks, said before asking."""
    if fallback == provider:
        return f"The fallback must be another provider than the active one ({provider})."
    for name, role in ((provider, "active"), (fallback, "fallback")):
        if name is not None and states[name].refused:
            return states[name].why(role)
    return ""


def _switch_panel(actor: Actor, view: PipelineView, choices: list[Choice], costs: dict[Choice, CostProjection],
                  quality: dict[Choice, QualityRow], states: dict[str, ProviderChoice]) -> None:
    """Pick a model and fallback, confirm with the cost and quality of both, or undo the last switch."""

    def label(i: int) -> str:
        provider, model = choices[i]
        price = fmt.usd(costs[(provider, model)].cost_per_1000_micros)
        return f"{states[provider].label(f'{provider} / {model}')} ({price} per 1,000)"

    st.markdown("**Switch model**")
    current = choices.index((view.active_provider, view.active_model)) \
        if (view.active_provider, view.active_model) in choices else 0
    left, right = st.columns(2)
    pick = left.selectbox("Provider and model", list(range(len(choices))), index=current, key="switch_choice",
                          format_func=label)
    fallbacks = ["none", *dict.fromkeys(p for p, _ in choices)]
    fallback = right.selectbox("Fallback provider", fallbacks, key="switch_fallback",
                               index=fallbacks.index(view.fallback_provider or "none"),
                               format_func=lambda p: p if p == "none" else states[p].label(),
                               help="Serves photos while the active provider is down.")
    chosen, fb = choices[pick], None if fallback == "none" else fallback
    refused = _refusal(chosen[0], fb, states)
    warnings = [states[p].why(role) for p, role in ((chosen[0], "active"), (fb, "fallback"))
                if p is not None and states[p].warning]
    unchanged = (chosen, fb) == ((view.active_provider, view.active_model), view.fallback_provider)
    if refused and not unchanged:
        say("warning", "{}", refused, icon=":material/block:")
    for text in warnings:
        say("warning", "{}", text, icon=":material/key_off:")
    b1, b2 = st.columns(2)
    blocked = "Choose another model or fallback first." if unchanged else refused or None
    if b1.button("Switch…", key="switch_start", type="primary", width="stretch", disabled=bool(blocked),
                 help=inert(blocked) if blocked else None):
        st.session_state["switch_pending"] = (pick, fallback, view.version)
    if b2.button("Undo last switch", key="undo_switch", width="stretch", icon=":material/undo:"):
        try:
            _switched(pipeline_settings.undo_last_switch(actor), view.version)
        except AiconsoleError as exc:
            say("error", "{}", exc)
    pending = st.session_state.get("switch_pending")
    if pending:
        _confirm(actor, view, choices, costs, quality, pending)


def _confirm(actor: Actor, view: PipelineView, choices: list[Choice], costs: dict[Choice, CostProjection],
             quality: dict[Choice, QualityRow], pending: tuple[int, str, int]) -> None:
    i, fb, version = pending
    provider, model = choices[i]
    before = costs.get((view.active_provider, view.active_model))
    q = quality.get((provider, model))
    say("warning", "{}",
        f"Switch from {view.active_provider} / {view.active_model} "
        f"({fmt.usd(before.cost_per_1000_micros) if before else '—'} per 1,000 photos) to {provider} / "
        f"{model} ({fmt.usd(costs[(provider, model)].cost_per_1000_micros)} per 1,000 photos), fallback "
        f"{fb}? Recent quality of the new choice: "
        + (f"{fmt.plural(q.photos, 'photo')}, avg confidence {fmt.pct(q.avg_confidence)}, "
           f"{fmt.pct(q.needs_review_rate)} to review, {fmt.pct(q.error_rate)} errors."
           if q else "no photos in the window.")
        + " Workers use it for the next photo they claim.")
    yes, no = st.columns(2)
    if yes.button("Confirm switch", key="switch_confirm", type="primary", width="stretch"):
        st.session_state.pop("switch_pending", None)
        try:
            report = pipeline_settings.switch_model(actor, provider=provider, model=model,
                                                    fallback_provider=None if fb == "none" else fb,
                                                    expected_version=version)
            _switched(report, version)
        except AiconsoleError as exc:
            say("error", "{}", exc)
    if no.button("Cancel", key="switch_cancel", width="stretch"):
        st.session_state.pop("switch_pending", None)
        st.rerun()
