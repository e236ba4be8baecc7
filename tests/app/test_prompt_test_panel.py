"""The test panel through AppTest on the demo organization: local and emulated Gemini runs, errors, roles, deploy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from aiconsole.platform import auth
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import ProviderConfig
from aiconsole.prompts import versions as prompts
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.ui.widgets import shown


def _panel(actor, draft, prompt_id, version_id):  # type: ignore[no-untyped-def]  # run as a script: no annotations
    from aiconsole.ui.control.prompt_test_panel import render_test_panel

    render_test_panel(actor, draft=draft, prompt_id=prompt_id, version_id=version_id)


def _actor(demo_env: dict[str, str], passwords: dict[str, str], role: str) -> Actor:
    email = demo_env[role]
    return auth.resume(auth.login(email=email, password=passwords[email]).token)


def _app(actor: Actor, *, draft: str | None = None, prompt_id: int | None = None,
         version_id: int | None = None) -> AppTest:
    at = AppTest.from_function(_panel, default_timeout=60, kwargs={"actor": actor, "draft": draft,
                                                                   "prompt_id": prompt_id, "version_id": version_id})
    at.run()
    assert not at.exception, at.exception
    return at


def _tagger(actor: Actor) -> tuple[int, int, int]:
    """(prompt id, production version id, an older version id) of the demo's photo-tagger prompt."""
    row = next(p for p in prompts.list_prompts(actor) if p.name == "photo-tagger")
    versions = prompts.list_versions(actor, prompt_id=row.id)
    production = next(v for v in versions if "production" in v.labels)
    older = next(v for v in versions if "production" not in v.labels and v.version < production.version)
    return row.id, production.id, older.id


def _texts(at: AppTest) -> str:
    # Markdown elements hold escaped source; what the page shows is that source unescaped.
    return "\n".join(shown(str(e.value)) if kind is not at.code else str(e.value)
                     for kind in (at.markdown, at.caption, at.code, at.info, at.error, at.success) for e in kind)


@pytest.fixture
def gemini_on_emulator(demo_env: dict[str, str], emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The demo organization's gemini provider config pointed at the emulator and disabled (a test runs on a
    disabled provider anyway), restored afterwards; the seed's own choice of enabled providers may change."""
    with service_session() as s:
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini"))
        assert pc is not None
        before = pc.endpoint, pc.enabled
        pc.endpoint, pc.enabled = emulator.url, False
    yield emulator
    with service_session() as s:
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini"))
        assert pc is not None
        pc.endpoint, pc.enabled = before


def test_developer_runs_a_draft_on_a_sample_with_the_local_provider(demo_env: dict[str, str],
                                                                    passwords: dict[str, str]) -> None:
    dev = _actor(demo_env, passwords, "developer")
    prompt_id, _, _ = _tagger(dev)
    at = _app(dev, draft="Tag it in {{ language }}.", prompt_id=prompt_id)
    assert at.selectbox(key="lab_provider").value == "local"  # the org's active provider first
    at.selectbox(key="lab_sample").select("chelsea")
    at.button(key="lab_run").click().run()
    assert not at.exception and not at.error, [shown(e.value) for e in at.error]
    assert len(at.dataframe) == 2  # this test and production, side by side
    tags = at.dataframe[0].value
    assert list(tags.columns) == ["tag", "confidence", "verdict"]
    assert "landscape orientation" in set(tags["tag"]) and tags["confidence"].between(0, 1).all()
    assert set(tags["verdict"]) <= {"accepted", "needs review", "rejected"}
    assert [m.label for m in at.metric][:3] == ["Cost", "Units", "Latency"]
    assert next(m for m in at.metric if m.label == "Jaccard").value == "1.00"
    assert any(c.value == "Tag it in English." for c in at.code)
    assert not any(b.label.startswith("Deploy") for b in at.button)  # a draft is not deployable


def test_gemini_version_on_the_emulator_then_admin_deploys(demo_env: dict[str, str], passwords: dict[str, str],
                                                           gemini_on_emulator: EmulatorServer) -> None:
    admin = _actor(demo_env, passwords, "admin")
    prompt_id, production_id, older_id = _tagger(admin)
    at = _app(admin, draft="Only {{ max_tags }} tags.", prompt_id=prompt_id, version_id=older_id)
    at.radio(key="lab_what").set_value("Selected saved version").run()
    at.selectbox(key="lab_provider").select("gemini").run()
    at.selectbox(key="lab_model_gemini").select("gemini-2.5-flash-lite")
    at.toggle(key="lab_compare").set_value(False)
    at.button(key="lab_run").click().run()
    assert not at.exception and not at.error, [shown(e.value) for e in at.error]
    sent = gemini_on_emulator.last_request
    assert sent is not None
    rendered = sent["contents"][0]["parts"][1]["text"]
    assert any(c.value == rendered for c in at.code)  # the panel shows exactly what was sent
    assert "gemini is disabled in this organization" in _texts(at)  # the demo's gemini is off; tested anyway
    assert next(m for m in at.metric if m.label == "Tokens").value.endswith(" out")
    assert next(m for m in at.metric if m.label == "Cost").value.startswith("$0.000")
    assert len(at.dataframe) == 1

    at.button(key="lab_deploy").click().run()
    at.button(key="lab_deploy_confirm").click().run()
    assert not at.exception
    assert any("production of photo-tagger now points at version" in shown(s.value) for s in at.success)
    versions = prompts.list_versions(admin, prompt_id=prompt_id)
    assert "production" in next(v for v in versions if v.id == older_id).labels
    prompts.move_label(admin, prompt_id=prompt_id, label="production", version_id=production_id,  # restore
                       expected_version=next(v for v in versions if v.id == older_id).version)


def test_provider_error_is_shown_exactly(demo_env: dict[str, str], passwords: dict[str, str],
                                         gemini_on_emulator: EmulatorServer) -> None:
    gemini_on_emulator.configure(error_rate_500=1.0)
    at = _app(_actor(demo_env, passwords, "developer"), draft="Label it.")
    at.selectbox(key="lab_provider").select("gemini").run()
    at.button(key="lab_run").click().run()
    assert not at.exception
    errors = [shown(e.value) for e in at.error]
    assert any(e.startswith("server_error: gemini answered HTTP 500: Internal error encountered.") for e in errors)
    assert any("one of the two calls failed" in shown(i.value) for i in at.info)


def test_other_photo_ids_are_refused_and_developers_do_not_deploy(demo_env: dict[str, str],
                                                                   passwords: dict[str, str]) -> None:
    dev = _actor(demo_env, passwords, "developer")
    prompt_id, _, older_id = _tagger(dev)
    at = _app(dev, prompt_id=prompt_id, version_id=older_id)
    at.radio(key="lab_photo_source").set_value("Photo id").run()
    at.number_input(key="lab_photo_id").set_value(987654321).run()
    assert any("no photo #987654321 in this organization" in shown(e.value) for e in at.error)
    assert at.button(key="lab_run").disabled
    at.radio(key="lab_photo_source").set_value("Sample gallery").run()
    at.toggle(key="lab_compare").set_value(False)
    at.button(key="lab_run").click().run()
    assert not at.error and len(at.dataframe) == 1
    assert "An admin deploys a tested version to production." in _texts(at)
    assert not any(b.label.startswith("Deploy") for b in at.button)


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_read_only_roles_get_no_run_button(demo_env: dict[str, str], passwords: dict[str, str], role: str) -> None:
    at = _app(_actor(demo_env, passwords, role), draft="x")
    assert not at.button and "can read prompts only" in at.info[0].value


def test_the_prompts_page_runs_the_panel(app_as) -> None:  # type: ignore[no-untyped-def]
    at = app_as("developer")
    at.switch_page("pages/prompts.py").run()
    assert not at.exception, at.exception
    at.radio(key="lab_what").set_value("Selected saved version").run()
    at.toggle(key="lab_compare").set_value(True)
    at.button(key="lab_run").click().run()
    assert not at.exception, at.exception
    assert not [shown(e.value) for e in at.error]
    assert next(m for m in at.metric if m.label == "Jaccard").value == "1.00"  # the base version on local = production
