"""A worker's health probe renders the production prompt with every value a photo would give."""

from __future__ import annotations

import json

from aiconsole.pipeline.calls import Caller
from aiconsole.pipeline.context import ContextCache
from aiconsole.pipeline.metrics import WorkerMetrics
from aiconsole.pipeline.provider_health import HealthReporter
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import make_org  # noqa: E402

PROMPT = "Tag this {{ width }}x{{ height }} {{ content_type }} photo with up to {{ max_tags }} labels. JSON only."


def test_probe_renders_a_prompt_that_uses_the_image_size_and_type(settings: Settings,
                                                                   emulator: EmulatorServer) -> None:
    org = make_org(provider="gemini", endpoint=emulator.url, prompt=PROMPT)
    contexts = ContextCache(ttl_s=60)
    ctx = contexts.ensure([org])[org]
    caller = Caller(worker_id="probe-test", settings=settings, metrics=WorkerMetrics())
    reporter = HealthReporter(worker_id="probe-test", caller=caller, contexts=contexts, idle_probe_interval_s=900)
    ok, _ms, kind, _cost = reporter.probe(ctx, "gemini")
    assert ok, kind
    sent = json.dumps(emulator.last_request)
    assert "Tag this 32x32 image/png photo" in sent
