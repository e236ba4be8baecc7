"""Pipeline: the active provider/model and fallback (switch with confirmation, undo) and the processing rules
(validated, previewed on recent tags, saved with an audit entry)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.charts.control import confidence_histogram_chart
from aiconsole.control import pipeline_settings, rules_config, rules_preview
from aiconsole.control.parallel_calls import CAP, CEILING_NOTE, SETTING, ParallelCalls, parallel_calls
from aiconsole.control.pipeline_settings import PipelineView
from aiconsole.control.rules_config import CONCURRENCY_RANGE
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.ui.control import models_panel
from aiconsole.ui.widgets import flash, md, say

RULE_KEYS = ("rules_accept", "rules_reject", "rules_max_cost", "rules_daily", "rules_monthly", "rules_retries",
             "rules_concurrency", "rules_overrides", "rules_base_version")


def render(actor: Actor) -> None:
    """The current settings card, the models table and switch panel, and the processing rules."""
    can_configure = allowed(actor.role, "pipeline.configure")
    view = pipeline_settings.current_settings(actor)
    with st.container(border=True):
        _current(view, parallel_calls(actor))

    models_panel.render(actor, view, can_configure=can_configure)

    st.subheader("Processing rules")
    if not can_configure:
        _rules_table(view.rules)
        st.caption("Only an admin can change the pipeline.")
        return
    _rules_form(actor, view)


def _current(view: PipelineView, parallel: ParallelCalls) -> None:
    if view.paused:
        st.warning("Processing is paused (see Live Status to resume).", icon=":material/pause_circle:")
    prompt = "none" if view.prompt_name is None else f"{view.prompt_name} v{view.production_version or '?'}"
    card = (("Provider", view.active_provider), ("Model", view.active_model),
            ("Fallback", view.fallback_provider or "none"), ("Production prompt", prompt),
            (SETTING, str(parallel.setting)))
    # Not st.metric: it cuts model and prompt names short.
    for col, (label, value) in zip(st.columns([1, 1.3, 0.8, 1.1, 1]), card, strict=True):
        say("caption", "{}", label, where=col)
        say("markdown", "**{}**", value, where=col)
    say("caption", "{} {}", parallel.summary(), CEILING_NOTE)
    if view.version:
        changed = f" at {view.updated_at:%Y-%m-%d %H:%M} UTC" if view.updated_at else ""
        say("caption", "Settings version {}, last changed by {}{}. Workers pick up a change within seconds.",
            view.version, view.updated_by or "the system", changed)
    else:
        st.caption("This organization has default settings; the first change saves them.")


def _rules_table(rules: rules_config.RulesConfig) -> None:
    """The saved rules, read-only (for roles that cannot configure the pipeline)."""
    st.dataframe(pd.DataFrame([
        {"rule": "Accept threshold", "value": f"{rules.accept_threshold:g}"},
        {"rule": "Reject threshold", "value": f"{rules.reject_threshold:g}"},
        {"rule": "Review band", "value": f"{rules.reject_threshold:g} ≤ confidence < {rules.accept_threshold:g}"},
        {"rule": "Max cost per photo", "value": "none" if rules.max_cost_per_photo_usd is None
         else fmt.dollars(rules.max_cost_per_photo_usd, places=4)},
        {"rule": "Daily budget", "value": "none" if rules.daily_budget_usd is None
         else fmt.dollars(rules.daily_budget_usd)},
        {"rule": "Monthly budget", "value": "none" if rules.monthly_budget_usd is None
         else fmt.dollars(rules.monthly_budget_usd)},
        {"rule": "Max attempts per photo", "value": str(rules.max_retries)},
        {"rule": SETTING, "value": str(rules.worker_concurrency)},
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
    concurrency = r2.number_input(SETTING, step=1, key="rules_concurrency",
                                  help=md("How many of this organization's provider calls each worker runs at "
                                          "once, {} to {}. A provider's {} (Providers page) lowers it for that "
                                          "provider. {}", CONCURRENCY_RANGE[0], CONCURRENCY_RANGE[1], CAP.lower(),
                                          CEILING_NOTE))
    preview_days = r3.selectbox("Preview on the last", [1, 7, 30], index=1, key="rules_preview_days",
                                format_func=lambda d: fmt.plural(d, "day"))
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
                preview = rules_preview.impact_preview(actor, rules=new_rules, days=preview_days)
        except AiconsoleError as exc:
            say("error", "{}", exc)
        else:
            _impact(preview, rules, new_rules, preview_days)


def _impact(preview: rules_preview.ImpactPreview, rules: rules_config.RulesConfig,
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
