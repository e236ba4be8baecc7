"""One concurrency number: the parallel calls per worker the Pipeline page shows (and an admin sets there), with a
provider's cap from the Providers page, is what a real Worker reading the same configuration runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest
from worker_processes import InProcessWorker

from aiconsole.pipeline.intake import enqueue_files
from aiconsole.pipeline.worker import Worker
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Experiment, Photo, PipelineConfig
from aiconsole.providers.samples import sample_photo
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PIPELINE, PROVIDERS = "pages/pipeline.py", "pages/providers.py"
PHOTOS = 24


def _card(at: AppTest, label: str) -> str:
    """The value under `label` in the Pipeline page's settings card."""
    column = next(c for c in at.columns if label in [shown(t.value) for t in c.caption])
    return shown(column.markdown[0].value).strip("*")


def test_the_parallel_calls_on_the_page_are_what_a_worker_runs(app_as: Callable[[str], AppTest]) -> None:
    at = app_as("admin")
    actor = at.session_state[ACTOR_KEY]
    org = actor.organization_id
    at.switch_page(PROVIDERS).run()
    at.number_input(key="conc_local").set_value(2)
    next(b for b in at.button if b.label == "Save settings" and b.proto.form_id == "settings_local").click().run()
    assert any("Saved the local settings" in shown(s.value) for s in at.success)
    at.number_input(key="conc_gemini").set_value(None)  # no cap
    next(b for b in at.button if b.label == "Save settings" and b.proto.form_id == "settings_gemini").click().run()

    at.switch_page(PIPELINE).run()
    at.number_input(key="rules_concurrency").set_value(6)
    at.button(key="rules_save").click().run()
    assert any("Rules saved" in shown(s.value) for s in at.success)
    assert _card(at, "Parallel calls per worker") == "6"
    summary = " ".join(shown(c.value) for c in at.caption)
    assert ("Each worker runs up to 6 of this organization's provider calls at once; capped in Providers: local at "
            "most 2.") in summary

    viewer = app_as("viewer")  # the read-only views say the same
    viewer.switch_page(PROVIDERS).run()
    caps = {v for d in viewer.dataframe if "setting" in d.value.columns for v in d.value["value"]}
    assert {"2 of 6 per worker", "none (6 per worker)"} <= caps, "|".join(sorted(caps))

    # A real Worker reads the same configuration: started without --concurrency it runs the page's number,
    # and the cap for local's calls; started with --concurrency 4 it runs at most 4.
    following = Worker("parallel-follow", None, 8, 30, 0.05)
    assert following.parallel_calls(org) == 6
    assert (following.parallel_calls(org, "local"), following.parallel_calls(org, "gemini")) == (2, 6)
    assert Worker("parallel-ceiling", 4, 8, 30, 0.05).parallel_calls(org) == 4

    # And running, it holds to them: its call threads grow to the setting, local never has more than 2 calls.
    with service_session() as s:
        s.execute(update(PipelineConfig).where(PipelineConfig.organization_id == org)
                  .values(paused=False, pause_reason=None, pause_kind=None, active_provider="local",
                          active_model="local-analyzer-v1", fallback_provider=None))
        s.execute(update(Experiment).where(Experiment.organization_id == org).values(status="completed"))
    report = enqueue_files(actor, [(f"p{i}.jpg", sample_photo("coffee", 900_000 + i)) for i in range(PHOTOS)],
                           priority=100)  # ahead of the demo's own queue
    ids = [v.photo_id for v in report.verdicts if v.photo_id is not None]
    assert len(ids) == PHOTOS
    with InProcessWorker(concurrency=None, batch_size=PHOTOS) as worker:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _open(ids):
            time.sleep(0.2)
        assert not _open(ids), "the worker did not process the photos"
        assert worker.concurrency >= 6
        assert worker.caller.slots.peak((org, "local")) == 2
        assert 2 <= worker.caller.slots.peak((org, None)) <= 6


def _open(ids: list[int]) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(Photo)
                            .where(Photo.id.in_(ids), Photo.status.in_(("pending", "processing")))) or 0)
