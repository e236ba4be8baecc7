"""Browser tests: a real `streamlit run app.py` on a free port, driven by Playwright in Debian's chromium.

The browser is never downloaded: AICONSOLE_TEST_CHROMIUM (or /usr/bin/chromium) is passed as
Playwright's executable_path. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiconsole.platform.settings import Settings
from aiconsole.ui.browser_session import COOKIE

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def _chromium() -> str:
    path = os.environ.get("AICONSOLE_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path or not Path(path).exists():
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Console:
    """The console under test: where it is served and the data directory (its SQLite database) behind it."""

    url: str
    data_dir: Path

    def settings(self) -> Settings:
        """Settings for this test process that reach the console's database."""
        return Settings(data_dir=self.data_dir, database_url=None, service_database_url=None)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A console on the embedded default with a small demo organization, served by `streamlit run`."""
    _chromium()
    data_dir = tmp_path_factory.mktemp("browser-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AICONSOLE_")}
    env["AICONSOLE_DATA_DIR"] = str(data_dir)
    subprocess.run([sys.executable, "-m", "aiconsole", "migrate"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "-m", "aiconsole", "demo", "--days", "3"], cwd=ROOT, env=env, check=True)
    port = _free_port()
    log = (data_dir / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError(f"streamlit did not start; see {data_dir / 'streamlit.log'}")
    try:
        yield Console(url=url, data_dir=data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def console_url(console: Console) -> str:
    """The console's address (http://127.0.0.1:PORT)."""
    return console.url


def _log_in(page, url: str, email: str, password: str, landing: str = "Live Status") -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name=re.compile(landing)).wait_for(timeout=30_000)
    # The page then has the console's route set the login cookie; a goto() before that lands on the login form.
    deadline = time.monotonic() + 20
    while not any(c["name"] == COOKIE for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the login cookie was never set"
        time.sleep(0.1)


@pytest.fixture
def log_in() -> Callable[..., None]:
    """`log_in(page, url, email, password, landing="Live Status")`: the login form, then wait for `landing`."""
    return _log_in


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless chromium for the session."""
    from playwright.sync_api import sync_playwright

    path = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh browser context and page (1400x1000)."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (kept by CI as test artifacts)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
