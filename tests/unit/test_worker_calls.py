"""One photo through Caller.process: what becomes a retry, what a final failure, what a release."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from worker_processes import enqueue, make_org

from aiconsole.pipeline import queue as q
from aiconsole.pipeline.calls import Caller, Released
from aiconsole.pipeline.context import ContextCache
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.recording import Outcome
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Photo, ProviderConfig
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ProviderError
from aiconsole.platform.settings import Settings
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderResult, Tag


class Scripted:
    """A provider that answers from a script: a ProviderResult, or raises what it is given."""

    name = "local"

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def analyze(self, image: ImageInput, request: AnalysisRequest) -> ProviderResult:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return ProviderResult("local", request.model, (Tag("cat", 0.9),), 0, 0, 1, 0, 3, {}, ({"step": "x"},))


@pytest.fixture
def setup(settings: Settings) -> tuple[int, list[q.ClaimedPhoto]]:
    org = make_org(provider="local", prompt=None, max_retries=2)
    enqueue(org, 3, settings=settings)
    return org, q.claim_batch(worker_id="w", limit=3, lease_seconds=60)


def _caller(settings: Settings, provider: Scripted) -> Caller:
    return Caller(worker_id="w", settings=settings, metrics=WorkerMetrics(), provider_factory=lambda _n, _s: provider)


def test_success_retryable_error_and_retry_budget(settings: Settings, setup: tuple[int, list[q.ClaimedPhoto]]) -> None:
    org, photos = setup
    provider = Scripted(None, ProviderError("503", kind="server_error", retryable=True),
                        RuntimeError("provider bug"))
    caller = _caller(settings, provider)
    ctx = ContextCache().ensure([org])[org]
    now = utcnow()
    ok = caller.process(photos[0], ctx, claimed_at=now)
    assert isinstance(ok, Outcome) and ok.final and ok.result is not None and ok.error is None
    assert [s["step"] for s in ok.trace] == ["claim", "route", "load_image", "rate_limit", "x"]
    retry = caller.process(photos[1], ctx, claimed_at=now)
    assert isinstance(retry, Outcome) and not retry.final and retry.retry_at is not None
    assert retry.error is not None and retry.error.kind == "server_error" and retry.trace[-1]["will_retry"]
    # A provider raising something unexpected is an internal, retryable error, not a dead thread.
    bug = caller.process(photos[2], ctx, claimed_at=now)
    assert isinstance(bug, Outcome) and bug.error is not None and bug.error.kind == "internal" and not bug.final
    # On the last attempt (max_retries 2) a retryable error is final.
    last = q.ClaimedPhoto(**{**photos[1].__dict__, "attempts": 2})
    provider.answers.append(ProviderError("503", kind="server_error", retryable=True))
    final = caller.process(last, ctx, claimed_at=now)
    assert isinstance(final, Outcome) and final.final and final.retry_count == 1


def test_a_missing_image_fails_at_once_without_calling_the_provider(
        settings: Settings, setup: tuple[int, list[q.ClaimedPhoto]]) -> None:
    org, photos = setup
    provider = Scripted()
    missing = q.ClaimedPhoto(**{**photos[0].__dict__, "storage_uri": "photos/00/" + "0" * 64 + ".png"})
    out = _caller(settings, provider).process(missing, ContextCache().ensure([org])[org], claimed_at=utcnow())
    assert isinstance(out, Outcome) and out.final and out.error is not None and out.error.kind == "image"
    assert "missing from the photo store" in out.error.message and provider.calls == 0


def test_a_disabled_provider_without_fallback_releases_the_photo(
        settings: Settings, setup: tuple[int, list[q.ClaimedPhoto]]) -> None:
    org, photos = setup
    with service_session() as s:
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org).values(enabled=False))
    out = _caller(settings, Scripted()).process(photos[0], ContextCache().ensure([org])[org], claimed_at=utcnow())
    assert isinstance(out, Released)
    assert out.reason == ("Provider disabled: local is disabled for this organization and no enabled fallback "
                          "provider is configured.")


def test_crash_outcome_retries_within_the_attempts(settings: Settings,
                                                   setup: tuple[int, list[q.ClaimedPhoto]]) -> None:
    org, photos = setup
    caller = _caller(settings, Scripted())
    ctx = ContextCache().ensure([org])[org]
    with service_session() as s:
        created = s.get(Photo, photos[0].id).created_at  # type: ignore[union-attr]
    out = caller.crash_outcome(photos[0], ctx, KeyError("boom"), created + timedelta(seconds=2))
    assert not out.final and out.error is not None and out.error.kind == "internal"
    assert out.queue_wait_ms == 2000 and "KeyError" in out.error.message


def test_a_photo_served_by_the_fallback_is_not_counted_for_its_experiment_variant(settings: Settings) -> None:
    from aiconsole.platform.db.models import Experiment

    org = make_org(provider="gemini", endpoint="http://127.0.0.1:9", fallback="local", prompt=None)
    enqueue(org, 1, settings=settings)
    with service_session() as s:
        s.add(Experiment(organization_id=org, name="arms", status="running",
                         variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]))
    [photo] = q.claim_batch(worker_id="w", limit=1, lease_seconds=60)
    provider = Scripted(None)
    caller = _caller(settings, provider)
    gemini = caller.breaker(org, "gemini")
    for _ in range(gemini.min_calls):
        gemini.record(False)
    out = caller.process(photo, ContextCache().ensure([org])[org], claimed_at=utcnow())
    assert isinstance(out, Outcome) and out.result is not None and out.provider == "local"
    assert (out.experiment_id, out.variant) == (None, None)
    assert any(step.get("dropped") == "served by the fallback local" for step in out.trace)
