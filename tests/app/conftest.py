"""AppTest fixtures: one small seeded demo database for the module, and logged-in app runs per role."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from aiconsole.platform import auth
from aiconsole.platform.db import dispose_engines
from aiconsole.platform.migrate import upgrade
from aiconsole.platform.settings import get_settings
from aiconsole.ui.session import TOKEN_KEY

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def _reset() -> None:
    get_settings.cache_clear()
    dispose_engines()
    from aiconsole.platform import cache

    cache.reset_cache()


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated SQLite database with a 2-day demo organization; yields {role: email}."""
    from aiconsole.demo.seed import DEMO_LOGINS, seed_demo

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("AICONSOLE_") and not key.startswith("AICONSOLE_TEST_"):
                mp.delenv(key)
        mp.setenv("AICONSOLE_DATA_DIR", str(tmp_path_factory.mktemp("app-data")))
        _reset()
        upgrade()
        seed_demo(days=2)
        yield {role: email for email, _password, role in DEMO_LOGINS}
        _reset()


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    from aiconsole.demo.seed import DEMO_LOGINS

    return {email: password for email, password, _role in DEMO_LOGINS}


@pytest.fixture
def app_as(demo_env: dict[str, str], passwords: dict[str, str]) -> Callable[[str], AppTest]:
    """`app_as(role)`: an AppTest of app.py, logged in as the demo user with that role, already run once."""

    def make(role: str) -> AppTest:
        email = demo_env[role]
        result = auth.login(email=email, password=passwords[email])
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state[TOKEN_KEY] = result.token
        at.run()
        assert not at.exception, at.exception
        return at

    return make
