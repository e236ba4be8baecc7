"""A running worker uses a changed production prompt, model and thresholds for the next photo it claims."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from aiconsole.control.pipeline_settings import switch_model
from aiconsole.control.rules_config import RulesConfig, parse_rules, save_rules
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, PhotoTag, PromptLabel, PromptVersion
from aiconsole.platform.settings import Settings
from aiconsole.providers.emulator import EmulatorServer

pytest_plugins = ["emulator_fixture"]

from worker_processes import (  # noqa: E402 (tests/ is on sys.path through the root conftest)
    GEMINI_MODEL,
    InProcessWorker,
    all_terminal,
    enqueue,
    make_org,
    wait_until,
)

CONTEXT_TTL_S = 0.2


def _rules(accept: float, reject: float) -> RulesConfig:
    return parse_rules({"accept_threshold": accept, "reject_threshold": reject, "max_retries": 3,
                        "worker_concurrency": 8})


def _result(photo_id: int) -> tuple[AiProcessingResult, list[str]]:
    with service_session() as s:
        result = s.scalars(select(AiProcessingResult).where(AiProcessingResult.photo_id == photo_id)).one()
        states = list(s.scalars(select(PhotoTag.review_state).where(PhotoTag.result_id == result.id)))
        return result, states


def _step(result: AiProcessingResult, name: str) -> dict[str, object]:
    return next(t for t in result.trace if t["step"] == name)


def test_next_photo_uses_new_prompt_model_and_thresholds(any_settings: Settings, emulator: EmulatorServer) -> None:
    org = make_org(provider="gemini", endpoint=emulator.url)
    admin = Actor.system("test-admin", org)
    with service_session() as s:
        v1 = s.scalars(select(PromptVersion).where(PromptVersion.organization_id == org)).one()
        v2 = PromptVersion(organization_id=org, prompt_id=v1.prompt_id, version=2, variables=["max_tags"],
                           content="Version two: list at most {max_tags} tags as JSON.")
        s.add(v2)
        s.flush()
        v1_id, v2_id, prompt_id = v1.id, v2.id, v1.prompt_id
    # Emulator confidences lie in 0.01..0.99: accept at 1.0 and reject below 0 sends every tag to review.
    version = save_rules(admin, rules=_rules(1.0, 0.0), expected_version=1)

    with InProcessWorker(concurrency=2, context_ttl_s=CONTEXT_TTL_S):
        [first] = enqueue(org, 1, start=0, settings=any_settings)
        wait_until(lambda: all_terminal(org, 1), timeout_s=30, what="the first photo")
        before, states = _result(first)
        assert (before.model, before.prompt_version_id, before.status) == (GEMINI_MODEL, v1_id, "needs_review")
        assert states and set(states) == {"needs_review"}

        version = switch_model(admin, provider="gemini", model="gemini-2.5-flash-lite", fallback_provider=None,
                               expected_version=version).version
        save_rules(admin, rules=_rules(0.01, 0.01), expected_version=version)  # now every tag is accepted
        with service_session() as s:  # the prompt editor's "deploy": move the production label to v2
            s.execute(update(PromptLabel).where(PromptLabel.prompt_id == prompt_id, PromptLabel.label == "production")
                      .values(version_id=v2_id))
        time.sleep(CONTEXT_TTL_S * 3)  # past the worker's context TTL, so its next claim reloads the settings

        [second] = enqueue(org, 1, start=1, settings=any_settings)
        wait_until(lambda: all_terminal(org, 2), timeout_s=30, what="the second photo")
    after, states = _result(second)
    assert (after.ai_provider, after.model, after.prompt_version_id) == ("gemini", "gemini-2.5-flash-lite", v2_id)
    assert _step(after, "route")["model"] == "gemini-2.5-flash-lite"
    assert _step(after, "prompt")["version_id"] == v2_id
    assert after.status == "completed" and states and set(states) == {"accepted"}
