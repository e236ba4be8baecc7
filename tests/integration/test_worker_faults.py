"""Emulator faults (20% 5xx, 5% timeouts, 5% malformed): every photo completed or failed with its reason,
attempts bounded by the retry policy; and the budget guard stops spending at the budget."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, AuditLog, Photo, PipelineConfig
from aiconsole.platform.settings import Settings
from aiconsole.prompts.render import PromptSpec, prompt_values, render_prompt
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings
from aiconsole.providers.emulator import EmulatorServer
from aiconsole.providers.gemini import GeminiProvider

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    GEMINI_MODEL,
    PROMPT,
    InProcessWorker,
    all_terminal,
    enqueue,
    make_org,
    results_per_photo,
    status_counts,
    tiny_png,
    wait_until,
)

pytestmark = pytest.mark.slow
FAST_RETRY = {"retry_base_delay_s": 0.05, "retry_max_delay_s": 0.2, "breaker_error_rate": 1.0}


def test_faults_end_in_a_result_or_a_reasoned_failure_with_bounded_attempts(
        any_settings: Settings, emulator_factory: Callable[..., EmulatorServer]) -> None:
    emulator = emulator_factory(seed=7, error_rate_500=0.10, error_rate_503=0.10, timeout_rate=0.05, timeout_s=1.5,
                                malformed_rate=0.05)
    org = make_org(provider="gemini", endpoint=emulator.url, timeout_s=0.5, max_retries=3)
    ids = enqueue(org, 150, settings=any_settings)
    with InProcessWorker(concurrency=8, batch_size=16, calls=FAST_RETRY):
        wait_until(lambda: all_terminal(org, len(ids)), timeout_s=120, what="every photo completed or failed")

    assert Counter(results_per_photo(org).values()) == {1: len(ids)}
    with service_session() as s:
        photos = s.execute(select(Photo.id, Photo.status, Photo.attempts, Photo.last_error).where(
            Photo.organization_id == org)).all()
        results = {int(r.photo_id): r for r in s.execute(select(
            AiProcessingResult.photo_id, AiProcessingResult.status, AiProcessingResult.error_kind,
            AiProcessingResult.error, AiProcessingResult.retry_count, AiProcessingResult.trace).where(
            AiProcessingResult.organization_id == org)).all()}
    attempts = Counter(p.attempts for p in photos)
    assert max(attempts) <= 3 and min(attempts) >= 1
    assert attempts[1] < len(ids)  # faults happened and were retried
    failed = [p for p in photos if p.status == "failed"]
    for p in failed:
        r = results[p.id]
        assert p.attempts == 3, "a retryable fault fails only when the attempts are used up"
        assert r.error_kind in ("server_error", "timeout", "malformed")
        assert p.last_error.startswith(f"{r.error_kind}: ") and r.error
    for p in photos:
        r = results[p.id]
        assert r.retry_count == p.attempts - 1
        assert r.trace[0]["step"] == "claim" and r.trace[0]["attempt"] == p.attempts
    # 30% faults per attempt: about 0.3^3 = 2.7% of photos fail for good; far from everything.
    assert len(failed) <= 15
    assert {p.status for p in photos} <= {"completed", "needs_review", "failed"}
    # Every attempt reached the emulator exactly once (timed-out requests are logged when the emulator lets go).
    wait_until(lambda: len(emulator.request_log) == sum(p.attempts for p in photos), timeout_s=5,
               what="the emulator's log to account for every attempt")
    faults = Counter(status for _, _, status in emulator.request_log)
    assert faults[500] and faults[503] and faults[504]


def _cost_of_one_photo(emulator: EmulatorServer, i: int) -> int:
    prompt = render_prompt(PromptSpec(1, PROMPT, ("max_tags", "language")), prompt_values())
    data = tiny_png(i)
    result = GeminiProvider(ProviderSettings(endpoint=emulator.url)).analyze(
        ImageInput(data, "image/png", 8, 8, "0" * 64), AnalysisRequest(model=GEMINI_MODEL, prompt=prompt))
    return result.cost_micros


def test_budget_stops_spending_with_overshoot_at_most_the_photos_in_flight(
        any_settings: Settings, emulator: EmulatorServer) -> None:
    costs = [_cost_of_one_photo(emulator, i) for i in range(5)]
    budget = 20 * sum(costs) // len(costs)
    org = make_org(provider="gemini", endpoint=emulator.url, daily_budget_micros=budget)
    ids = enqueue(org, 100, settings=any_settings)
    concurrency, batch = 4, 4
    in_flight = max(2 * concurrency, 2 * batch)  # what a worker holds at most (Worker._capacity)
    with InProcessWorker(concurrency=concurrency, batch_size=batch) as worker:
        def paused_and_idle() -> bool:
            with service_session() as s:
                cfg = s.get(PipelineConfig, org)
                return bool(cfg and cfg.paused) and not worker.held_ids()
        wait_until(paused_and_idle, timeout_s=60, what="the budget pause")
    with service_session() as s:
        cfg = s.get(PipelineConfig, org)
        spent = int(s.scalar(select(func.sum(AiProcessingResult.api_cost_micros)).where(
            AiProcessingResult.organization_id == org)) or 0)
        most = int(s.scalar(select(func.max(AiProcessingResult.api_cost_micros)).where(
            AiProcessingResult.organization_id == org)) or 0)
        audit = s.scalars(select(AuditLog).where(AuditLog.organization_id == org,
                                                 AuditLog.action == "queue.pause")).all()
    assert cfg is not None and cfg.paused and cfg.pause_kind == "daily_budget"
    assert re.fullmatch(r"Daily budget of \$0\.\d{4} reached \(\$0\.\d{4} spent today\)\.", cfg.pause_reason or "")
    assert spent >= budget
    assert spent - budget <= in_flight * most, (spent, budget, most)
    counts = status_counts(org)
    assert counts.get("processing", 0) == 0 and counts.get("pending", 0) > 0  # the rest wait for tomorrow
    assert sum(results_per_photo(org).values()) == len(ids) - counts["pending"]
    assert [a.actor for a in audit] == ["system:worker"]
