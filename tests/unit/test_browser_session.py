"""The login cookie's single-use codes (aiconsole/ui/browser_session): one redemption each, void after a
minute, and a bounded store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiconsole.ui import browser_session


def test_a_code_is_redeemed_once() -> None:
    until = datetime(2030, 1, 1, tzinfo=UTC)
    code = browser_session.issue("token-1", until)
    assert browser_session.waiting(code)
    handoff = browser_session.redeem(code)
    assert handoff is not None and (handoff.token, handoff.expires_at) == ("token-1", until)
    assert browser_session.redeem(code) is None and not browser_session.waiting(code)
    assert browser_session.redeem("never-issued") is None


def test_a_clearing_code_carries_no_token() -> None:
    handoff = browser_session.redeem(browser_session.issue(None, None))
    assert handoff is not None and handoff.token is None


def test_a_code_is_void_after_its_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    code = browser_session.issue("token-2", datetime(2030, 1, 1, tzinfo=UTC))
    later = browser_session.time.monotonic() + browser_session.HANDOFF_SECONDS + 1
    monkeypatch.setattr(browser_session.time, "monotonic", lambda: later)
    assert not browser_session.waiting(code) and browser_session.redeem(code) is None


def test_the_store_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_session, "MAX_HANDOFFS", 5)
    codes = [browser_session.issue(f"t{i}", None) for i in range(8)]
    assert len(browser_session._handoffs) <= 5
    assert browser_session.waiting(codes[-1]) and not browser_session.waiting(codes[0])
