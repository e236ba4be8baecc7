"""Number fields of the configuration forms: a yes/no value is not a number, and money below one
micro-dollar (the smallest amount stored) is refused instead of being stored as $0."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from aiconsole.control import provider_admin
from aiconsole.control.rules_config import parse_rules
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings

MONEY = ("max_cost_per_photo_usd", "daily_budget_usd", "monthly_budget_usd")
PROVIDER = {"enabled": True, "rate_limit_per_minute": 60, "timeout_seconds": 10.0, "max_concurrency": 4,
            "endpoint": None, "region": None}


@pytest.mark.parametrize("field", MONEY)
@pytest.mark.parametrize("amount", [1e-20, "0.0000005", Decimal("0.00000099")])
def test_money_below_one_micro_dollar_is_refused(field: str, amount: Any) -> None:
    with pytest.raises(ValidationFailed, match=r"below the smallest amount \(\$0\.000001, one micro-dollar\)"):
        parse_rules({field: amount})


@pytest.mark.parametrize("field", MONEY)
def test_one_micro_dollar_is_stored_as_one_micro(field: str) -> None:
    column = field.removesuffix("_usd") + "_micros"
    assert parse_rules({field: "0.000001"}).to_columns()[column] == 1
    assert parse_rules({field: 1e-6}).to_columns()[column] == 1


def test_a_zero_budget_still_pauses_and_a_zero_cost_limit_is_still_refused() -> None:
    assert parse_rules({"daily_budget_usd": 0}).to_columns()["daily_budget_micros"] == 0
    with pytest.raises(ValidationFailed, match="0 would stop every call"):
        parse_rules({"max_cost_per_photo_usd": 0})


@pytest.mark.parametrize("field", ["accept_threshold", "reject_threshold", "max_retries", "worker_concurrency",
                                   *MONEY])
@pytest.mark.parametrize("flag", [True, False])
def test_rules_refuse_yes_no_values_as_numbers(field: str, flag: bool) -> None:
    with pytest.raises(ValidationFailed, match=rf"{field}: {flag} is a yes/no value, not a number"):
        parse_rules({field: flag})


@pytest.mark.parametrize("threshold", ["accept", "reject"])
def test_label_overrides_refuse_yes_no_values(threshold: str) -> None:
    with pytest.raises(ValidationFailed, match=r"True is a yes/no value, not a number"):
        parse_rules({"label_overrides": {"cat": {threshold: True}}})


def test_numbers_are_still_numbers() -> None:
    rules = parse_rules({"accept_threshold": 1, "reject_threshold": "0.25", "max_retries": 4.0,
                         "worker_concurrency": "2", "label_overrides": {"cat": {"accept": 1}}})
    assert (rules.accept_threshold, rules.reject_threshold, rules.max_retries, rules.worker_concurrency) == (
        1.0, 0.25, 4, 2)
    assert rules.label_overrides["cat"].accept == 1.0


@pytest.mark.parametrize(("field", "label"), [("rate_limit_per_minute", "Rate limit"), ("timeout_seconds", "Timeout"),
                                              ("max_concurrency", "Parallel calls cap")])
def test_provider_settings_refuse_yes_no_values(settings: Settings, field: str, label: str) -> None:
    with pytest.raises(ValidationFailed, match=rf"gemini: {label} True is a yes/no value, not a number"):
        provider_admin.validate_settings({**PROVIDER, field: True}, provider="gemini", settings=settings)
    checked = provider_admin.validate_settings({**PROVIDER, field: 2}, provider="gemini", settings=settings)
    assert getattr(checked, field) == 2
