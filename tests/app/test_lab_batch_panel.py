"""The Batch tests tab per role on the demo organization: a developer starts a batch test (the local provider)
and it finishes in the background; a viewer sees the runs and cannot start one."""

from __future__ import annotations

import time

from panel_apps import demo_actor, panel_app

from aiconsole.lab import batch_runs

PANEL = "aiconsole.ui.lab.batch_panel"


def test_a_developer_starts_a_batch_test_and_a_viewer_sees_it_but_cannot_start(
        demo_env: dict[str, str], passwords: dict[str, str]) -> None:
    dev = demo_actor(demo_env, passwords, "developer")
    at = panel_app(PANEL, dev)
    at.selectbox(key="lab_batch_provider").select("local")
    at.number_input(key="lab_batch_n").set_value(3)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.success, "no confirmation"
    run = batch_runs.list_runs(dev)[0]
    deadline = time.monotonic() + 60
    while batch_runs.get_run(dev, run_id=run.id).status == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert batch_runs.get_run(dev, run_id=run.id).processed == 3
    viewer = demo_actor(demo_env, passwords, "viewer")
    vt = panel_app(PANEL, viewer)
    assert vt.button[0].disabled
    assert len(vt.dataframe) == 1 and f"#{run.id}" in str(vt.dataframe[0].value)
