"""One panel's render(actor) as an AppTest for a demo user, and what it shows: what panel AppTests share."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from streamlit.testing.v1 import AppTest

from aiconsole.platform import auth
from aiconsole.platform.actor import Actor
from aiconsole.ui.widgets import shown

APP_TESTS = Path(__file__).resolve().parent / "app"


def _panel(actor, module):  # type: ignore[no-untyped-def]  # run as a script: no annotations
    import importlib

    importlib.import_module(module).render(actor)


def demo_actor(demo_env: dict[str, str], passwords: dict[str, str], role: str) -> Actor:
    """The demo user with `role`, logged in (the `demo_env` and `passwords` fixtures of tests/app)."""
    email = demo_env[role]
    return auth.resume(auth.login(email=email, password=passwords[email]).token)


def panel_app(module: str, actor: Actor, *, timeout: float = 120) -> AppTest:
    """`module`'s render(actor) as an AppTest, run once without an exception."""
    at = AppTest.from_function(_panel, default_timeout=timeout, kwargs={"actor": actor, "module": module})
    at.run()
    assert not at.exception, at.exception
    return at


def panel_texts(at: AppTest) -> str:
    """Every message, caption and markdown the run shows, as a reader sees it."""
    return "\n".join(shown(str(e.value)) for kind in (at.markdown, at.caption, at.info, at.error, at.success,
                                                      at.warning) for e in kind)


def app_test_module(name: str) -> ModuleType:
    """tests/app/<name>.py as a module registered under `<name>_helpers` (its tests are not collected from it)."""
    key = f"{name}_helpers"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, APP_TESTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[key]
