"""The Pipeline page through AppTest: switch with confirmation and undo, rules refused or saved, read-only roles."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from aiconsole.control.pipeline_settings import model_choices
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AuditLog, PipelineConfig, ProviderConfig
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/pipeline.py"


def _config(org: int) -> PipelineConfig:
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        assert cfg is not None
        return cfg


def _actions(org: int, action: str) -> list[AuditLog]:
    with service_session() as s:
        return list(s.scalars(select(AuditLog).where(AuditLog.organization_id == org, AuditLog.action == action)
                              .order_by(AuditLog.id)))


def _providers(org: int, *names: str, **values: object) -> None:
    """Set provider_configs columns of `names` (default: the Google providers) for the organization."""
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider.in_(names or ("gemini", "google-vision")))
                  .values(**values))


def _texts(at) -> str:  # type: ignore[no-untyped-def]
    return " ".join(shown(str(e.value)) for kind in (at.error, at.success, at.warning, at.info) for e in kind)


def test_admin_switches_with_confirmation_and_undoes(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = at.session_state[ACTOR_KEY].organization_id
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "gemini").values(enabled=True))
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == len(model_choices()) and {"cost", "basis"} <= set(table.columns)
    before = _config(org)
    assert at.button(key="switch_start").disabled  # the current choice: nothing to switch to

    at.selectbox(key="switch_choice").select(model_choices().index(("gemini", "gemini-2.5-flash")))
    at.selectbox(key="switch_fallback").select("local").run()
    at.button(key="switch_start").click().run()
    confirm = " ".join(shown(w.value) for w in at.warning)
    assert "Switch from local / local-analyzer-v1 ($0.00 per 1,000 photos) to gemini / gemini-2.5-flash ($" in confirm
    assert _config(org).active_provider == "local"  # nothing happens before the confirmation

    at.button(key="switch_confirm").click().run()
    assert not at.exception, at.exception
    assert any("gemini/gemini-2.5-flash" in shown(s.value) for s in at.success), _texts(at)
    cfg = _config(org)
    assert (cfg.active_provider, cfg.active_model, cfg.fallback_provider) == ("gemini", "gemini-2.5-flash", "local")
    assert cfg.version == before.version + 1
    assert _actions(org, "model.switch")[-1].actor == at.session_state[ACTOR_KEY].email

    at.button(key="undo_switch").click().run()
    assert any("Undid the switch" in shown(s.value) for s in at.success), _texts(at)
    cfg = _config(org)
    assert (cfg.active_provider, cfg.active_model, cfg.fallback_provider) == ("local", "local-analyzer-v1", None)
    assert _actions(org, "model.switch")[-1].reverted_by_id == _actions(org, "revert")[-1].id

    at.button(key="undo_switch").click().run()
    assert any("no model switch to undo" in shown(e.value) for e in at.error)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("rules_accept", 0.3, "accept threshold 0.3 is below the reject threshold"),
    ("rules_accept", 1.5, "The accept threshold 1.5 is outside 0..1"),
    ("rules_daily", -5.0, "The daily budget $-5.0 is negative"),
    ("rules_retries", 0, "Max retries 0 is outside 1..10"),
])
def test_bad_rules_are_refused_and_nothing_saved(app_as, key: str, value: object,  # type: ignore[no-untyped-def]
                                                  expected: str) -> None:
    at = app_as("admin")
    org = at.session_state[ACTOR_KEY].organization_id
    at.switch_page(PAGE).run()
    saved_before = len(_actions(org, "rules.update"))
    version = _config(org).version
    at.number_input(key=key).set_value(value)
    at.button(key="rules_save").click().run()
    assert not at.exception, at.exception
    assert any(expected in shown(e.value) for e in at.error), _texts(at)
    assert not at.success
    assert _config(org).version == version and len(_actions(org, "rules.update")) == saved_before


def test_valid_rules_are_previewed_saved_and_audited(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = at.session_state[ACTOR_KEY].organization_id
    at.switch_page(PAGE).run()
    old = _config(org)
    at.number_input(key="rules_accept").set_value(0.9)
    at.number_input(key="rules_retries").set_value(5)
    at.button(key="rules_preview").click().run()
    assert not at.exception, at.exception
    impact = at.dataframe[-1].value
    assert list(impact.columns) == ["", "current rules", "new rules", "change"]
    accepted = impact.set_index("").loc["Tags accepted"]
    assert accepted["new rules"] <= accepted["current rules"]  # a higher accept threshold accepts fewer tags
    assert at.get("plotly_chart")
    assert _config(org).accept_threshold == old.accept_threshold  # a preview saves nothing

    at.button(key="rules_save").click().run()
    assert any("Rules saved" in shown(s.value) for s in at.success), _texts(at)
    cfg = _config(org)
    assert (cfg.accept_threshold, cfg.max_retries) == (0.9, 5)
    entry = _actions(org, "rules.update")[-1]
    assert entry.before == {"accept_threshold": old.accept_threshold, "max_retries": old.max_retries}
    assert entry.after == {"accept_threshold": 0.9, "max_retries": 5} and entry.reversible
    assert at.number_input(key="rules_accept").value == 0.9  # the form reloads from what was saved


@pytest.mark.parametrize("role", ["developer", "analyst", "reviewer", "viewer"])
def test_read_only_roles_see_values_without_controls(app_as, role: str) -> None:  # type: ignore[no-untyped-def]
    at = app_as(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert {shown(c.value) for c in at.caption} >= {"Provider", "Model", "Fallback", "Production prompt"}
    assert any("local-analyzer-v1" in shown(m.value) for m in at.markdown)
    keys = {b.key for b in at.button}
    assert not keys & {"switch_start", "undo_switch", "rules_save", "rules_preview"}
    assert not at.number_input
    rules = at.dataframe[1].value
    assert "Accept threshold" in set(rules["rule"])
    assert any("Only an admin" in shown(c.value) for c in at.caption)


def test_clearing_a_budget_removes_it(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("admin")
    org = at.session_state[ACTOR_KEY].organization_id
    at.switch_page(PAGE).run()
    assert _config(org).daily_budget_micros is not None
    at.number_input(key="rules_daily").set_value(None)
    at.button(key="rules_save").click().run()
    assert any("Rules saved" in shown(s.value) for s in at.success), _texts(at)
    assert _config(org).daily_budget_micros is None
    assert at.number_input(key="rules_daily").value is None  # the reloaded form shows "no budget"
    at.button(key="rules_save").click().run()  # an unchanged form saves nothing new
    assert not at.exception and _actions(org, "rules.update")[-1].after == {"daily_budget_micros": None}


def test_providers_that_cannot_be_switched_to_are_marked_and_say_why_before_any_confirmation(  # type: ignore[no-untyped-def]
        app_as) -> None:
    at = app_as("admin")
    org = at.session_state[ACTOR_KEY].organization_id
    _providers(org, enabled=False, encrypted_secret=None, endpoint=None)
    at.switch_page(PAGE).run()
    choice, fallback = at.selectbox(key="switch_choice"), at.selectbox(key="switch_fallback")
    gemini = model_choices().index(("gemini", "gemini-2.5-flash"))
    # gemini and google-vision are disabled in Providers: the lists say so.
    assert choice.options[gemini].startswith("gemini / gemini-2.5-flash — disabled in Providers ($")
    assert choice.options[0].startswith("local / local-analyzer-v1 ($")
    assert {"gemini — disabled in Providers", "google-vision — disabled in Providers", "local"} <= set(fallback.options)

    choice.select(gemini).run()
    why = " ".join(shown(w.value) for w in at.warning)
    assert "gemini is disabled in Providers, so it can't be the active provider: enable it there first." in why
    assert at.button(key="switch_start").disabled  # no switch is offered that would be refused
    assert "switch_pending" not in at.session_state

    choice.select(0)
    fallback.select("google-vision — disabled in Providers").run()  # format_func labels select by their text
    assert "google-vision is disabled in Providers, so it can't be the fallback provider" in " ".join(
        shown(w.value) for w in at.warning)
    assert at.button(key="switch_start").disabled
    fallback.select("local").run()
    assert "another provider than the active one (local)" in " ".join(shown(w.value) for w in at.warning)
    assert at.button(key="switch_start").disabled

    # Enabled without a key: allowed (the workers may hold GEMINI_API_KEY), marked, and the warning is shown
    # before the confirmation is asked for.
    _providers(org, "gemini", enabled=True)
    fallback.select("none")
    at.run()
    assert at.selectbox(key="switch_choice").options[gemini].startswith("gemini / gemini-2.5-flash — no key ($")
    at.selectbox(key="switch_choice").select(gemini).run()
    assert not at.button(key="switch_start").disabled
    assert any("gemini has no key saved in Providers: workers call it with GEMINI_API_KEY" in shown(w.value)
               for w in at.warning)
    assert "switch_pending" not in at.session_state


def test_the_models_table_keeps_its_columns_short_with_their_meaning_in_help(app_as) -> None:  # type: ignore[no-untyped-def]
    import json

    at = app_as("viewer")
    at.switch_page(PAGE).run()
    table = at.dataframe[0]
    config = json.loads(table.proto.columns)
    widths = {name: c["width"] for name, c in config.items() if not c.get("hidden")}
    # In view on a 1,280 px window: the main area beside the sidebar is about 820 px wide.
    assert sum(widths.values()) <= 820 and set(widths) >= {"cost", "basis", "p95"}
    assert config["cost"]["label"] == "$ / 1,000" and "1,000 photos" in config["cost"]["help"]
    assert all(len(str(v)) <= 30 for v in table.value["basis"])
    notes = [shown(c.value) for c in at.caption if shown(c.value).startswith("Cost basis — ")]
    assert notes and "local: runs on the worker: no API cost" in notes[0] and "gemini: " in notes[0]
