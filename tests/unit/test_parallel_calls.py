"""Parallel calls per worker: one default and one maximum (platform.db.models) that every reader takes, the rule
for the effective figure, the slots that hold a worker to it, and the console's view of it."""

from __future__ import annotations

import inspect
import threading
import time

import pytest
from pipeline_data import as_role, make_org
from sqlalchemy import update

from aiconsole.cli import console, pipeline
from aiconsole.control import provider_admin
from aiconsole.control.parallel_calls import parallel_calls
from aiconsole.control.pipeline_settings import current_settings
from aiconsole.control.rules_config import CONCURRENCY_RANGE, RulesConfig
from aiconsole.pipeline.context import OrgContext, ProviderSetup, load_org_context
from aiconsole.pipeline.parallel import CallSlots, effective_parallel_calls, is_cap
from aiconsole.pipeline.worker import Worker
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    DEFAULT_PARALLEL_CALLS,
    MAX_PARALLEL_CALLS,
    PipelineConfig,
    ProviderConfig,
)
from aiconsole.platform.settings import Settings


def test_every_reader_takes_the_one_default() -> None:
    assert PipelineConfig.__table__.c.worker_concurrency.default.arg == DEFAULT_PARALLEL_CALLS
    assert ProviderConfig.__table__.c.max_concurrency.default.arg == MAX_PARALLEL_CALLS  # at the most: no cap
    assert RulesConfig().worker_concurrency == DEFAULT_PARALLEL_CALLS
    assert CONCURRENCY_RANGE == (1, MAX_PARALLEL_CALLS)
    assert OrgContext(organization_id=1).parallel_calls == DEFAULT_PARALLEL_CALLS
    assert ProviderSetup("gemini").parallel_cap is None
    assert provider_admin.DEFAULTS["max_concurrency"] == MAX_PARALLEL_CALLS
    # The commands do not carry a number of their own: without --concurrency, workers follow the organizations.
    assert inspect.signature(pipeline.worker).parameters["concurrency"].default is None
    assert inspect.signature(console.up).parameters["concurrency"].default is None
    assert Worker("w-default", None, 8, 30, 0.05).concurrency == DEFAULT_PARALLEL_CALLS


def test_an_organization_without_settings_shows_and_runs_the_default(settings: Settings) -> None:
    org, admin = make_org(config=False)
    assert current_settings(admin).rules.worker_concurrency == DEFAULT_PARALLEL_CALLS
    view = parallel_calls(as_role(admin, "viewer"))
    assert view.setting == DEFAULT_PARALLEL_CALLS and view.capped() == []
    with service_session() as s:
        assert load_org_context(s, organization_id=org).parallel_calls == DEFAULT_PARALLEL_CALLS
    assert Worker("w-no-config", None, 8, 30, 0.05).parallel_calls(org, "gemini") == DEFAULT_PARALLEL_CALLS


def test_the_view_and_the_worker_context_read_the_same_columns(settings: Settings) -> None:
    org, admin = make_org()
    with service_session() as s:
        s.execute(update(PipelineConfig).where(PipelineConfig.organization_id == org).values(worker_concurrency=12))
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "gemini").values(max_concurrency=3))
        s.execute(update(ProviderConfig).where(ProviderConfig.organization_id == org,
                                               ProviderConfig.provider == "google-vision")
                  .values(max_concurrency=20))
        ctx = load_org_context(s, organization_id=org)
    view = parallel_calls(admin)
    assert (view.setting, ctx.parallel_calls) == (12, 12)
    assert view.capped() == ["gemini"] and view.effective("gemini") == 3 == effective_parallel_calls(
        ctx.parallel_calls, ctx.setup("gemini").parallel_cap)
    assert view.cap_text("gemini") == "3 of 12 per worker"
    assert view.cap_text("google-vision") == "none (12 per worker; its cap of 20 is not below it)"
    assert view.cap_text("local") == "none (12 per worker)"
    assert view.summary() == ("Each worker runs up to 12 of this organization's provider calls at once; capped in "
                              "Providers: gemini at most 3.")


@pytest.mark.parametrize(("setting", "cap", "ceiling", "expected"), [
    (8, None, None, 8), (8, 2, None, 2), (8, 20, None, 8), (8, None, 4, 4), (8, 6, 4, 4), (500, None, None, 64),
    (0, None, None, 1),
])
def test_the_effective_figure_is_the_smallest_of_setting_cap_and_ceiling(setting: int, cap: int | None,
                                                                         ceiling: int | None, expected: int) -> None:
    assert effective_parallel_calls(setting, cap, ceiling) == expected
    assert is_cap(cap, setting) == (cap is not None and cap < min(setting, MAX_PARALLEL_CALLS))


def test_slots_hold_each_key_to_its_limit() -> None:
    slots, lock, running, peak = CallSlots(), threading.Lock(), [0], [0]

    def work(key: str, limit: int) -> None:
        with slots.slot(key, limit):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    threads = [threading.Thread(target=work, args=("a", 3)) for _ in range(12)]
    threads += [threading.Thread(target=work, args=("b", 1)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert (slots.peak("a"), slots.peak("b")) == (3, 1) and peak[0] <= 4
