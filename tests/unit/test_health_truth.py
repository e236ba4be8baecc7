"""Provider health tells the truth (issue 10 item 2): a provider's status follows its recent traffic and its
last check, whichever is worse; disabled and not configured providers say so, with a reason people can read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aiconsole.control.queue_actions import run_health_check
from aiconsole.pipeline import health_report as hr
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    AiProviderHealth,
    AuditLog,
    Organization,
    Photo,
    PipelineConfig,
    ProviderConfig,
)
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

NOW = datetime(2026, 11, 26, 2, 10, tzinfo=UTC)
KEY_ERROR = "gemini answered HTTP 400: API key not valid. Please pass a valid API key."


def _org(*, active: str = "gemini", fallback: str | None = "local") -> int:
    with service_session() as s:
        org = Organization(name=f"Health {uuid.uuid4().hex[:6]}", slug=uuid.uuid4().hex[:12], timezone="UTC")
        s.add(org)
        s.flush()
        model = {"gemini": "gemini-2.5-flash", "google-vision": "builtin/stable", "local": "local-analyzer-v1"}
        s.add(PipelineConfig(organization_id=org.id, active_provider=active, active_model=model[active],
                             fallback_provider=fallback))
        return int(org.id)


def _provider(org: int, provider: str, *, enabled: bool = True, key: bool = False,
              endpoint: str | None = None) -> None:
    with service_session() as s:
        # The report only asks whether a key is stored; it never decrypts one.
        s.add(ProviderConfig(organization_id=org, provider=provider, enabled=enabled, endpoint=endpoint,
                             encrypted_secret="stored" if key else None, secret_last4="abcd" if key else None))


def _results(org: int, provider: str, outcomes: list[tuple[str, str | None, str | None]],
             at: datetime = NOW - timedelta(minutes=3)) -> None:
    with service_session() as s:
        photo = Photo(organization_id=org, sha256=uuid.uuid4().hex * 2, storage_uri="x", filename="x.png",
                      content_type="image/png", byte_size=1, width=1, height=1, status="completed",
                      created_at=NOW - timedelta(hours=1))
        s.add(photo)
        s.flush()
        for i, (status, kind, error) in enumerate(outcomes):
            s.add(AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider=provider, model="m",
                                     status=status, error_kind=kind, error=error, provider_response_time_ms=100,
                                     created_at=at + timedelta(seconds=i)))


def _check(org: int | None, provider: str, status: str, *, at: datetime, source: str | None = None,
           **details: object) -> None:
    with service_session() as s:
        s.add(AiProviderHealth(organization_id=org, provider_name=provider, status=status, last_check=at,
                               error_details={"source": source, **details} if source else None))


def _by_provider(org: int) -> dict[str, hr.ProviderHealth]:
    return {p.provider: p for p in hr.provider_health(organization_id=org, now=NOW).providers}


# ------------------------------------------------------------------- the report, on SQLite and PostgreSQL


def test_failing_traffic_beats_a_healthy_check_and_config_states_show(any_settings: Settings) -> None:
    org = _org()
    _provider(org, "gemini", key=True)
    _provider(org, "local", enabled=False)
    _provider(org, "google-vision")  # enabled, no key, Google's own endpoint
    _results(org, "gemini", [("failed", "auth", KEY_ERROR)] * 2)
    # A circuit that closed 5 minutes ago wrote 'healthy'; it must not hide 2 of 2 calls failing.
    _check(org, "gemini", "healthy", at=NOW - timedelta(minutes=5), source="breaker", circuit="closed")
    _check(org, "google-vision", "healthy", at=NOW - timedelta(minutes=2), source="health check")
    _check(org, "local", "healthy", at=NOW - timedelta(minutes=2), source="probe")
    by = _by_provider(org)
    gm = by["gemini"]
    assert (gm.status, gm.status_source) == ("down", "traffic")
    assert gm.status_reason.startswith(f"2 of 2 calls failed in 15 min: {KEY_ERROR}")
    assert gm.status_reason.endswith("; last check 5 min ago: healthy (circuit closed)")
    assert (by["local"].status, by["local"].status_source, by["local"].status_reason) == (
        "disabled", "config", "disabled in Providers")
    gv = by["google-vision"]
    assert (gv.status, gv.status_source, gv.status_reason) == ("not_configured", "config",
                                                               "no API key saved in Providers")


def test_a_keyless_provider_that_answers_is_not_called_unconfigured(any_settings: Settings) -> None:
    # No stored key, but a worker's calls succeeded (its environment has GEMINI_API_KEY): the traffic decides.
    org = _org(fallback=None)
    _results(org, "gemini", [("completed", None, None)] * 9 + [("failed", "timeout", "gemini did not answer")])
    gm = _by_provider(org)["gemini"]
    assert (gm.status, gm.status_source) == ("degraded", "traffic")
    assert gm.status_reason == "1 of 10 calls failed in 15 min: gemini did not answer"
    # An endpoint of its own (a proxy, an emulator) may need no key either.
    org2 = _org(fallback=None)
    _provider(org2, "gemini", endpoint="http://127.0.0.1:9")
    assert _by_provider(org2)["gemini"].status == "unknown"


def test_the_worker_check_of_a_provider_whose_photos_went_to_the_fallback(any_settings: Settings) -> None:
    # Photos served by the fallback leave no gemini result; the workers' own rows carry its failures.
    org = _org()
    _provider(org, "gemini", key=True)
    _results(org, "local", [("completed", None, None)] * 5)
    _check(org, "gemini", "down", at=NOW - timedelta(seconds=40), source="worker", worker="w1", calls=12,
           failures=12, kinds={"auth": 12}, last_error=KEY_ERROR)
    by = _by_provider(org)
    assert (by["gemini"].status, by["gemini"].status_source) == ("down", "check")
    assert by["gemini"].status_reason == f"last check 40 s ago (worker w1): 12 of 12 calls failed: {KEY_ERROR}"
    assert (by["local"].status, by["local"].status_reason) == ("healthy", "5 calls in 15 min, none failed")


# ----------------------------------------------------------------------------- the known-answer table

T = hr.Traffic
C = hr.Check
FRESH = NOW - timedelta(minutes=5)
STALE = NOW - timedelta(minutes=45)
CASES = [
    # traffic only
    ("traffic healthy", dict(traffic=T(40, 0, 0)), ("healthy", "traffic", "40 calls in 15 min, none failed")),
    ("traffic degraded", dict(traffic=T(20, 3, 3, "HTTP 503")),
     ("degraded", "traffic", "3 of 20 calls failed in 15 min: HTTP 503")),
    ("traffic down", dict(traffic=T(3, 3, 3, KEY_ERROR)), ("down", "traffic", f"3 of 3 calls failed in 15 min: "
                                                                             f"{KEY_ERROR}")),
    ("bad photos are not the provider's fault", dict(traffic=T(4, 4, 0, "could not decode")),
     ("healthy", "traffic", "4 calls in 15 min; 4 failed for the photo's own sake, none for the provider's")),
    # check only
    ("check only", dict(check=C("down", FRESH, "probe", "timeout")),
     ("down", "check", "last check 5 min ago (probe): down (timeout)")),
    ("stale check", dict(check=C("down", STALE)),
     ("unknown", "none", "no calls in the last 15 min and no check in the last 30 min")),
    # both, disagreeing: the worse one decides, the other is still said
    ("traffic worse", dict(traffic=T(2, 2, 2, KEY_ERROR), check=C("healthy", FRESH)),
     ("down", "traffic", f"2 of 2 calls failed in 15 min: {KEY_ERROR}; last check 5 min ago: healthy")),
    ("check worse", dict(traffic=T(40, 0, 0), check=C("down", FRESH, "probe", "timeout")),
     ("down", "check", "last check 5 min ago (probe): down (timeout); 40 calls in 15 min, none failed")),
    ("both agree", dict(traffic=T(1, 1, 1, "HTTP 500"), check=C("down", FRESH)),
     ("down", "check", "last check 5 min ago: down; 1 of 1 call failed in 15 min: HTTP 500")),
    ("stale check ignored", dict(traffic=T(40, 0, 0), check=C("down", STALE)),
     ("healthy", "traffic", "40 calls in 15 min, none failed")),
    # configuration first
    ("disabled", dict(disabled=True, traffic=T(3, 3, 3, KEY_ERROR), check=C("healthy", FRESH)),
     ("disabled", "config", "disabled in Providers")),
    ("not configured", dict(missing="no API key saved in Providers", check=C("healthy", FRESH, "health check")),
     ("not_configured", "config", "no API key saved in Providers")),
    ("not configured, but its calls answer", dict(missing="no API key saved in Providers",
                                                  check=C("healthy", FRESH, "worker", from_calls=True)),
     ("healthy", "check", "last check 5 min ago (worker): healthy")),
    ("nothing known", dict(), ("unknown", "none", "no calls in the last 15 min and no check in the last 30 min")),
]


@pytest.mark.parametrize(("case", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_status_known_answers(case: str, given: dict[str, object], expected: tuple[str, str, str]) -> None:
    verdict = hr.provider_status(now=NOW, **given)  # type: ignore[arg-type]
    assert (verdict.status, verdict.source, verdict.reason) == expected


def test_statuses_are_the_contract() -> None:
    assert hr.STATUSES == ("healthy", "degraded", "down", "disabled", "not_configured", "unknown")


# -------------------------------------------------------------------------------------- the health check


def test_health_check_records_disabled_and_unconfigured_providers_without_calling_them(
        settings: Settings, emulator: EmulatorServer) -> None:
    org = _org(active="gemini", fallback="google-vision")
    _provider(org, "gemini", enabled=False, key=True, endpoint=emulator.url)
    _provider(org, "google-vision")
    # Both had said healthy before: a stale picture the check must not carry on.
    for provider in ("gemini", "google-vision"):
        _check(org, provider, "healthy", at=NOW - timedelta(minutes=1), source="health check")
    actor = Actor(user_id=None, email="admin@example.com", role="admin", organization_id=org)
    report = run_health_check(actor, now=NOW)
    assert "gemini disabled" in report.message and "google-vision not configured" in report.message
    with service_session() as s:
        rows = s.execute(select(AiProviderHealth.provider_name, AiProviderHealth.status)
                         .where(AiProviderHealth.organization_id == org, AiProviderHealth.last_check == NOW)).all()
        after = s.scalar(select(AuditLog.after).where(AuditLog.organization_id == org,
                                                      AuditLog.action == "health.check"))
    assert sorted(rows) == [("gemini", "unknown"), ("google-vision", "unknown")]
    assert after is not None and (after["gemini"], after["google-vision"]) == ("disabled", "not_configured")
    assert emulator.request_log == []  # neither was called
    # The pipeline's own record of a check keeps the state and the reason beside the status column.
    with service_session() as s:
        written = hr.record_check(s, organization_id=org, report=hr.provider_health(organization_id=org, now=NOW),
                                  now=NOW + timedelta(seconds=1))
    states = {r.provider_name: (r.status, (r.error_details or {}).get("state"), (r.error_details or {}).get("reason"))
              for r in written}
    assert states == {"gemini": ("unknown", "disabled", "disabled in Providers"),
                      "google-vision": ("unknown", "not_configured", "no API key saved in Providers")}
    # And what it recorded is no check: the states still come from the configuration.
    by = {p.provider: p.status for p in hr.provider_health(organization_id=org, now=NOW + timedelta(seconds=2))
          .providers}
    assert by == {"gemini": "disabled", "google-vision": "not_configured"}
