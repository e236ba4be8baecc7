"""The Providers page through AppTest: a saved key is never in the page (any element) nor in any log record,
bad key formats are refused with their reason, Test connection shows the answer, other roles see no controls."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from aiconsole.control import provider_admin
from aiconsole.platform.settings import get_settings
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

KEY = "AIzaSyAppTest-page_key_0123456789abcdLMNO"[:39]
PAGE = "pages/providers.py"


def _texts(node: Any) -> Iterator[str]:
    """Everything an element carries: its proto (labels, values, bodies, help) and its repr, recursively."""
    proto = getattr(node, "proto", None)
    if proto is not None:
        yield str(proto)
    yield repr(node)
    value = getattr(node, "value", None)
    if value is not None:
        yield str(value)
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _texts(child)


def page_text(at: AppTest) -> str:
    """The whole rendered tree (main, sidebar, everything) as one string."""
    return "\n".join(_texts(at._tree))


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on every logger, including those that do not propagate to the root."""
    loggers = [logging.getLogger(), *(lg for lg in logging.root.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        if not lg.propagate:
            lg.addHandler(caplog.handler)
    yield caplog
    for lg, level in saved:
        lg.setLevel(level)
        if caplog.handler in lg.handlers:
            lg.removeHandler(caplog.handler)


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The admin allow-lists plain http to 127.0.0.1, where the test emulators listen (see providers.endpoints)."""
    monkeypatch.setenv("AICONSOLE_PROVIDER_HOST_ALLOWLIST", "http://127.0.0.1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("AICONSOLE_PROVIDER_HOST_ALLOWLIST")
    get_settings.cache_clear()


def _submit(at: AppTest, label: str, form: str) -> None:
    next(b for b in at.button if b.label == label and b.proto.form_id == form).click().run()
    assert not at.exception, at.exception


RIGHT_KEY = "AIza" + "x" * 35  # what the emulators of the wrong-key tests accept


def _tested_with_a_wrong_key(at: AppTest, emulator_factory: Callable[..., EmulatorServer], p: str) -> AppTest:
    """`p` pointed at an emulator that accepts only RIGHT_KEY, KEY saved, and Test connection clicked."""
    emulator = emulator_factory(api_key=RIGHT_KEY)
    at.switch_page(PAGE).run()
    at.text_input(key=f"endpoint_{p}").input(emulator.url)
    _submit(at, "Save settings", f"settings_{p}")
    at.text_input(key=f"secret_{p}").input(KEY)
    _submit(at, "Save key", f"key_form_{p}")
    at.button(key=f"test_{p}").click().run()
    return at


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)


@pytest.mark.usefixtures("allow_loopback")
def test_a_saved_key_is_only_ever_shown_masked_and_never_logged(
        app_as: Callable[[str], AppTest], emulator_factory: Callable[..., EmulatorServer],
        all_logs: pytest.LogCaptureFixture) -> None:
    emulator = emulator_factory(api_key=KEY)
    at = app_as("admin")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    at.text_input(key="endpoint_gemini").input(emulator.url)
    _submit(at, "Save settings", "settings_gemini")
    assert any("Saved the gemini settings" in shown(s.value) for s in at.success)

    for bad, reason in ((" " + KEY, "has a space at its start"), (KEY[:20] + "\n" + KEY[20:], "newline at character"),
                        ("sk-" + KEY[3:], "start with 'AIza'"), (KEY[:-2], "37 characters long")):
        at.text_input(key="secret_gemini").input(bad)
        _submit(at, "Save key", "key_form_gemini")
        errors = [shown(e.value) for e in at.error]
        assert any(reason in e and "Nothing was saved" in e for e in errors), errors
        assert at.text_input(key="secret_gemini").value == ""  # cleared, saved or not
        assert KEY[4:30] not in page_text(at)
    at.text_input(key="secret_google-vision").input('{"type": "service_account", "private_key": ')
    _submit(at, "Save key", "key_form_google-vision")
    assert any("not valid JSON" in shown(e.value) for e in at.error)

    at.text_input(key="secret_gemini").input(KEY)
    _submit(at, "Save key", "key_form_gemini")
    assert any(f"Saved the gemini key (••••{KEY[-4:]})" in shown(s.value) for s in at.success)
    at.run()  # and on a later run, with the stored key listed
    text = page_text(at)
    assert f"••••{KEY[-4:]}" in text
    for part in (KEY, KEY[:-4], KEY[4:]):
        assert part not in text
    assert KEY not in repr(at.session_state)  # the typed key left the widget state too

    at.button(key="test_gemini").click().run()
    assert not at.exception, at.exception
    assert any("Connected in" in shown(s.value) and "gemini-2.5-flash" in shown(s.value) for s in at.success), \
        [shown(e.value) for e in at.error]
    assert KEY not in page_text(at) and emulator.request_log[-1][2] == 200

    at.button(key="delete_key_gemini").click().run()
    at.button(key="delete_key_gemini_confirm").click().run()
    assert any("Deleted the gemini key" in shown(s.value) for s in at.success)
    actor = at.session_state[ACTOR_KEY]
    assert not provider_admin.get_provider(actor, provider="gemini").has_secret

    assert all_logs.records, "logging was not captured at all"
    logged = _logged(all_logs)
    for part in (KEY, KEY[4:], KEY[:-4]):
        assert part not in logged


@pytest.mark.usefixtures("allow_loopback")
def test_a_wrong_key_shows_the_exact_error(app_as: Callable[[str], AppTest],
                                           emulator_factory: Callable[..., EmulatorServer],
                                           all_logs: pytest.LogCaptureFixture) -> None:
    at = _tested_with_a_wrong_key(app_as("admin"), emulator_factory, "google-vision")
    errors = [shown(e.value) for e in at.error]
    assert any(e.startswith("Bad key after") and "API key not valid" in e for e in errors), errors
    assert KEY not in page_text(at)
    assert any("images:annotate" in r.getMessage() for r in all_logs.records)  # the HTTP stack's own logs
    assert KEY not in _logged(all_logs) and KEY[4:] not in _logged(all_logs)


@pytest.mark.parametrize("role", ["analyst", "viewer", "developer"])
def test_other_roles_see_the_settings_but_no_controls(app_as: Callable[[str], AppTest], role: str) -> None:
    at = app_as(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Only admins can change these settings" in page_text(at)
    assert not at.text_input and not at.number_input and not at.checkbox
    assert not [b for b in at.button if b.key and b.key.startswith(("test_", "delete_key_"))]
    assert not [b for b in at.button if b.label in ("Save settings", "Save key")]
    settings = at.dataframe[0].value
    assert list(settings["setting"])[:2] == ["enabled", "rate limit (requests/min)"]


def test_emulated_google_calls_are_marked_and_test_connection_reaches_the_emulator(
        app_as: Callable[[str], AppTest], emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiconsole.platform.settings import get_settings

    at = app_as("admin")
    at.switch_page(PAGE).run()
    assert "Google calls emulated" not in page_text(at)
    assert not any("local emulator" in shown(i.value) for i in at.info)
    monkeypatch.setenv("AICONSOLE_DEMO_EMULATOR_URL", emulator.url)
    get_settings.cache_clear()
    try:
        at.run()
        assert not at.exception, at.exception
        assert any(f"calls go to the local emulator at `{emulator.url}`" in shown(i.value) for i in at.info)
        assert "Google calls emulated" in page_text(at)
        assert any(f"gemini calls go to `{emulator.url}` whatever is saved here" in shown(c.value) for c in at.caption)
        at.button(key="test_gemini").click().run()
        assert any("Connected in" in shown(s.value) for s in at.success), [shown(e.value) for e in at.error]
        assert emulator.request_log and emulator.request_log[-1][2] == 200
        viewer = app_as("viewer")  # the read-only settings table names the emulator as the endpoint
        viewer.switch_page(PAGE).run()
        endpoints = {v for d in viewer.dataframe if "setting" in d.value.columns for v in d.value["value"]}
        assert f"emulator at {emulator.url} (demo)" in endpoints
    finally:
        monkeypatch.delenv("AICONSOLE_DEMO_EMULATOR_URL")
        get_settings.cache_clear()


@pytest.mark.usefixtures("allow_loopback")
def test_a_test_connection_error_goes_when_the_settings_it_tested_change(
        app_as: Callable[[str], AppTest], emulator_factory: Callable[..., EmulatorServer]) -> None:
    at = _tested_with_a_wrong_key(app_as("admin"), emulator_factory, "gemini")
    assert any(shown(e.value).startswith("Bad key after") for e in at.error), [shown(e.value) for e in at.error]

    at.run()  # an unrelated rerun keeps the result: the settings are the ones it tested
    assert any(shown(e.value).startswith("Bad key after") for e in at.error)
    at.number_input(key="rate_gemini").set_value(120)
    _submit(at, "Save settings", "settings_gemini")
    assert not any("Bad key" in shown(e.value) for e in at.error), [shown(e.value) for e in at.error]
    assert any("The last Test connection tried the previous settings" in shown(c.value) for c in at.caption)

    at.button(key="test_gemini").click().run()  # a new test is for the new settings, and shows again
    assert any(shown(e.value).startswith("Bad key after") for e in at.error)
    at.text_input(key="secret_gemini").input(RIGHT_KEY)  # the right key: the old error is outdated
    _submit(at, "Save key", "key_form_gemini")
    assert not any("Bad key" in shown(e.value) for e in at.error)
    at.button(key="test_gemini").click().run()
    assert any("Connected in" in shown(s.value) for s in at.success), [shown(e.value) for e in at.error]
