"""Pipeline: the active provider/model and fallback (switch with confirmation, undo) and the processing rules
(validated, previewed on recent tags, saved with an audit entry)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.charts.control import confidence_histogram_chart
from aiconsole.control import pipeline_settings, rules_config
from aiconsole.control.pipeline_settings import CostProjection, PipelineView, QualityRow
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.ui.widgets import flash, say

RULE_KEYS = ("rules_accept", "rules_reject", "rules_max_cost", "rules_daily", "rules_monthly", "rules_retries",
             "rules_concurrency", "rules_overrides", "rules_base_version")
Choice = tuple[str, str]  # (provider, model)


def render(actor: Actor) -> None:
    """The current settings card, the models table and switch panel, and the processing rules."""
    can_configure = allowed(actor.role, "pipeline.configure")
    view = pipeline_settings.current_settings(actor)
    choices = pipeline_settings.model_choices()
    with st.container(border=True):
        _current(view)

    st.subheader("Models")
    days = st.selectbox("Usage window", [1, 7, 30], index=1, key="pipe_days",
                        format_func=lambda d: f"last {d} days",
                        help="Projected costs use the organization's average tokens/units per photo in this window.")
    try:
        costs = {(c.provider, c.model): c for c in pipeline_settings.projected_cost_per_1000(actor, days=days)}
        quality = {(q.provider, q.model): q for q in pipeline_settings.recent_quality(actor, days=days)}
    except AiconsoleError as exc:
        say("error", "{}", exc)
        return
    _models_table(view, choices, costs, quality, days)
    if can_configure:
        with st.container(border=True):
            _switch_panel(actor, view, choices, costs, quality)

    st.subheader("Processing rules")
    if not can_configure:
        _rules_table(view.rules)
        st.caption("Only an admin can change the pipeline.")
        return
    _rules_form(actor, view)


def _current(view: PipelineView) -> None:
    if view.paused:
        st.warning("Processing is paused (see Live Status to resume).", icon=":material/pause_circle:")
    prompt = "none" if view.prompt_name is None else f"{view.prompt_name} v{view.production_version or '?'}"
    card = (("Provider", view.active_provider), ("Model", view.active_model),
            ("Fallback", view.fallback_provider or "none"), ("Production prompt", prompt))
    # Not st.metric: it cuts model and prompt names short.
    for col, (label, value) in zip(st.columns(4), card, strict=True):
        say("caption", "{}", label, where=col)
        say("markdown", "**{}**", value, where=col)
    if view.version:
        changed = f" at {view.updated_at:%Y-%m-%d %H:%M} UTC" if view.updated_at else ""
        say("caption", "Settings version {}, last changed by {}{}. Workers pick up a change within seconds.",
            view.version, view.updated_by or "the system", changed)
    else:
        st.caption("This organization has default settings; the first change saves them.")


def _models_table(view: PipelineView, choices: list[Choice], costs: dict[Choice, CostProjection],
                  quality: dict[Choice, QualityRow], days: int) -> None:
    table = []
    for provider, model in choices:
        c, q = costs[(provider, model)], quality.get((provider, model))
        table.append({
            "active": "●" if (provider, model) == (view.active_provider, view.active_model) else "",
            "provider": provider, "model": model, "cost per 1,000 photos": fmt.usd(c.cost_per_1000_micros),
            "photos": q.photos if q else 0, "avg confidence": fmt.pct(q.avg_confidence) if q else "—",
            "needs review": fmt.pct(q.needs_review_rate) if q else "—",
            "errors": fmt.pct(q.error_rate) if q else "—",
            "p95 latency": fmt.ms(q.p95_latency_ms) if q else "—", "cost basis": c.basis,
        })
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    if not quality:
        say("caption", "No photos were processed in the last {} days, so there is no quality to compare yet; "
            "costs are estimates.", days)


def _switched(report: pipeline_settings.SwitchReport, old_version: int) -> None:
    # A switch leaves the rules alone: a rules form opened before it may still save without a conflict.
    if st.session_state.get("rules_base_version") == old_version:
        st.session_state["rules_base_version"] = report.version
    flash("success", "{}", report.message)
    st.rerun()


def _switch_panel(actor: Actor, view: PipelineView, choices: list[Choice], costs: dict[Choice, CostProjection],
                  quality: dict[Choice, QualityRow]) -> None:
    """Pick a model and fallback, confirm with the cost and quality of both, or undo the last switch."""

    def label(i: int) -> str:
        provider, model = choices[i]
        return f"{provider} / {model} — {fmt.usd(costs[(provider, model)].cost_per_1000_micros)} per 1,000"

    st.markdown("**Switch model**")
    current = choices.index((view.active_provider, view.active_model)) \
        if (view.active_provider, view.active_model) in choices else 0
    left, right = st.columns(2)
    pick = left.selectbox("Provider and model", list(range(len(choices))), index=current, key="switch_choice",
                          format_func=label)
    fallbacks = ["none", *dict.fromkeys(p for p, _ in choices)]
    fallback = right.selectbox("Fallback provider", fallbacks, key="switch_fallback",
                               index=fallbacks.index(view.fallback_provider or "none"),
                               help="Serves photos while the active provider is down.")
    b1, b2 = st.columns(2)
    unchanged = (choices[pick], None if fallback == "none" else fallback) == (
        (view.active_provider, view.active_model), view.fallback_provider)
    if b1.button("Switch…", key="switch_start", type="primary", width="stretch", disabled=unchanged,
                 help="Choose another model or fallback first." if unchanged else None):
        st.session_state["switch_pending"] = (pick, fallback, view.version)
    if b2.button("Undo last switch", key="undo_switch", width="stretch", icon=":material/undo:"):
        try:
            _switched(pipeline_settings.undo_last_switch(actor), view.version)
        except AiconsoleError as exc:
            say("error", "{}", exc)
    pending = st.session_state.get("switch_pending")
    if not pending:
        return
    i, fb, version = pending
    provider, model = choices[i]
    before = costs.get((view.active_provider, view.active_model))
    q = quality.get((provider, model))
    say("warning", "{}",
        f"Switch from {view.active_provider} / {view.active_model} "
        f"({fmt.usd(before.cost_per_1000_micros) if before else '—'} per 1,000 photos) to {provider} / "
        f"{model} ({fmt.usd(costs[(provider, model)].cost_per_1000_micros)} per 1,000 photos), fallback "
        f"{fb}? Recent quality of the new choice: "
        + (f"{q.photos:,} photos, avg confidence {fmt.pct(q.avg_confidence)}, "
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


def _rules_table(rules: rules_config.RulesConfig) -> None:
    """The saved rules, read-only (for roles that cannot configure the pipeline)."""
    st.dataframe(pd.DataFrame([
        {"rule": "Accept threshold", "value": f"{rules.accept_threshold:g}"},
        {"rule": "Reject threshold", "value": f"{rules.reject_threshold:g}"},
        {"rule": "Review band", "value": f"{rules.reject_threshold:g} ≤ confidence < {rules.accept_threshold:g}"},
        {"rule": "Max cost per photo", "value": "none" if rules.max_cost_per_photo_usd is None
         else f"${rules.max_cost_per_photo_usd}"},
        {"rule": "Daily budget", "value": "none" if rules.daily_budget_usd is None else f"${rules.daily_budget_usd}"},
        {"rule": "Monthly budget", "value": "none" if rules.monthly_budget_usd is None
         else f"${rules.monthly_budget_usd}"},
        {"rule": "Max attempts per photo", "value": str(rules.max_retries)},
        {"rule": "Worker concurrency", "value": str(rules.worker_concurrency)},
    ]), hide_index=True, width="stretch")
    if rules.label_overrides:
        st.dataframe(pd.DataFrame([{"label": k, "accept": o.accept, "reject": o.reject}
                                   for k, o in rules.label_overrides.items()]), hide_index=True, width="stretch")


def _rules_form(actor: Actor, view: PipelineView) -> None:
    """The rules form: Preview impact, Save (refused when stale) and Reset to saved."""
    rules = view.rules
    # The form starts from the saved rules and remembers the version it started from (a stale save is refused).
    if "rules_base_version" not in st.session_state:
        st.session_state.update({
            "rules_base_version": view.version, "rules_accept": rules.accept_threshold,
            "rules_reject": rules.reject_threshold,
            "rules_max_cost": None if rules.max_cost_per_photo_usd is None else float(rules.max_cost_per_photo_usd),
            "rules_daily": None if rules.daily_budget_usd is None else float(rules.daily_budget_usd),
            "rules_monthly": None if rules.monthly_budget_usd is None else float(rules.monthly_budget_usd),
            "rules_retries": rules.max_retries, "rules_concurrency": rules.worker_concurrency})
    c1, c2, c3 = st.columns(3)
    accept = c1.number_input("Accept threshold", step=0.01, format="%.2f", key="rules_accept",
                             help="A tag at or above this confidence is accepted.")
    reject = c2.number_input("Reject threshold", step=0.01, format="%.2f", key="rules_reject",
                             help="A tag below this confidence is rejected; between the two it goes to review.")
    say("markdown", "**Review band**  \n{} ≤ confidence < {}", f"{reject:g}", f"{accept:g}", where=c3)
    m1, m2, m3 = st.columns(3)
    max_cost = m1.number_input("Max cost per photo ($)", value=None, step=0.001, format="%.4f",
                               key="rules_max_cost", help="Empty: no limit.")
    daily = m2.number_input("Daily budget ($)", value=None, step=1.0, format="%.2f", key="rules_daily",
                            help="Empty: no budget.")
    monthly = m3.number_input("Monthly budget ($)", value=None, step=10.0, format="%.2f", key="rules_monthly",
                              help="Empty: no budget.")
    r1, r2, r3 = st.columns(3)
    retries = r1.number_input("Max attempts per photo", step=1, key="rules_retries", help="1 = no retry.")
    concurrency = r2.number_input("Worker concurrency", step=1, key="rules_concurrency")
    preview_days = r3.selectbox("Preview on the last", [1, 7, 30], index=1, key="rules_preview_days",
                                format_func=lambda d: f"{d} days")
    st.markdown("Per-label overrides (a blank threshold uses the global one)")
    edited = st.data_editor(
        pd.DataFrame([{"label": k, "accept": o.accept, "reject": o.reject} for k, o in rules.label_overrides.items()],
                     columns=["label", "accept", "reject"]).astype({"label": "string", "accept": "float",
                                                                     "reject": "float"}),
        num_rows="dynamic", hide_index=True, key="rules_overrides", width="stretch",
        column_config={"accept": st.column_config.NumberColumn(format="%.2f"),
                       "reject": st.column_config.NumberColumn(format="%.2f")})

    def parsed() -> rules_config.RulesConfig:
        def money(value: float | None) -> str | None:
            return None if value is None else str(value)

        rows = [{str(column): value for column, value in row.items()} for row in edited.to_dict("records")]
        return rules_config.parse_rules({
            "accept_threshold": accept, "reject_threshold": reject,
            "label_overrides": rules_config.overrides_from_rows(rows),
            "max_cost_per_photo_usd": money(max_cost), "daily_budget_usd": money(daily),
            "monthly_budget_usd": money(monthly), "max_retries": int(retries),
            "worker_concurrency": int(concurrency)})

    p1, p2, p3 = st.columns(3)
    do_preview = p1.button("Preview impact", key="rules_preview", icon=":material/query_stats:", width="stretch")
    do_save = p2.button("Save rules", key="rules_save", type="primary", width="stretch")
    if p3.button("Reset to saved", key="rules_reset", width="stretch"):
        for key in RULE_KEYS:
            st.session_state.pop(key, None)
        st.rerun()

    if do_save:
        try:
            version = rules_config.save_rules(actor, rules=parsed(),
                                              expected_version=int(st.session_state["rules_base_version"]))
            for key in RULE_KEYS:
                st.session_state.pop(key, None)
            flash("success", "Rules saved (settings version {}). Workers use them for the next photo.", version)
            st.rerun()
        except AiconsoleError as exc:
            say("error", "{}", exc)

    if do_preview:
        try:
            with st.spinner("Classifying recent tags under both rule sets…"):
                new_rules = parsed()
                preview = rules_config.impact_preview(actor, rules=new_rules, days=preview_days)
        except AiconsoleError as exc:
            say("error", "{}", exc)
        else:
            _impact(preview, rules, new_rules, preview_days)


def _impact(preview: rules_config.ImpactPreview, rules: rules_config.RulesConfig,
            new_rules: rules_config.RulesConfig, days: int) -> None:
    """The preview: verdict counts under the saved and the new rules, and the confidence histogram."""
    if preview.photos == 0:
        say("info", "No photos were processed in the last {} days: there is nothing to preview on. "
            "Pick a longer window.", days)
    cur, new = preview.current, preview.proposed
    impact = [("Tags accepted", cur.tags_accepted, new.tags_accepted),
              ("Tags to review", cur.tags_review, new.tags_review),
              ("Tags rejected", cur.tags_rejected, new.tags_rejected),
              ("Photos completed", cur.photos_completed, new.photos_completed),
              ("Photos to review", cur.photos_review, new.photos_review)]
    st.dataframe(pd.DataFrame([{"": name, "current rules": a, "new rules": b, "change": f"{b - a:+,}"}
                               for name, a, b in impact]), hide_index=True, width="stretch")
    say("caption", "{} photos and {} AI tags of the last {} days.", f"{preview.photos:,}", f"{preview.tags:,}", days)
    st.plotly_chart(confidence_histogram_chart(
        preview.histogram, current=(rules.accept_threshold, rules.reject_threshold),
        proposed=(new_rules.accept_threshold, new_rules.reject_threshold)), width="stretch", key="rules_hist")
