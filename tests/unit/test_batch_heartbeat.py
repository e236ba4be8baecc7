"""A batch whose process died (issue 11 section 2): on SQLite and PostgreSQL a real process runs a batch and
dies mid-way (os._exit: no except, no finally). Its batch stays 'running' while its heartbeat is fresh and
cannot be undone; once the heartbeat is older than STALE_AFTER, reads mark it interrupted (once, audited, with
why), and its undo restores exactly what it changed. A batch marked interrupted while its process still runs
stops at its next chunk without changing anything more or finishing itself."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from unit_helpers import load_unit_module

from aiconsole.platform.audit import list_entries
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import CorrectionBatch
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError
from aiconsole.platform.settings import Settings
from aiconsole.quality import batch_heartbeat, batch_undo, batches
from aiconsole.quality.batch_select import BatchFilter

h = load_unit_module("test_review_queue")
cb = load_unit_module("test_correction_batches")
LATE = batch_heartbeat.STALE_AFTER + timedelta(minutes=1)

# The batch process: one tag a chunk, and after the second chunk it dies as a killed server would.
DYING = """
import os, sys
from aiconsole.platform.actor import Actor
from aiconsole.quality import batches
from aiconsole.quality.batch_select import BatchFilter
org, user, email = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
admin = Actor(user_id=user, email=email, role="admin", organization_id=org)
def die(p):
    if p.processed == 2:
        os._exit(3)
batches.run_batch(admin, filters=BatchFilter(), template="rename", params={"from_label": "cat", "to_label": "kitten"},
                  chunk_size=1, progress=die)
"""


@pytest.fixture
def team(any_settings: Settings) -> Any:
    return h.make_team("Heartbeat Org")


def _photos(org: int) -> None:
    for minute in range(5):
        h.add_photo(org, [("cat", 0.55, "needs_review"), ("grass", 0.9, "accepted")], minute=minute)


def test_a_batch_whose_process_died_reads_interrupted_once_stale_and_undoes_exactly(team: Any) -> None:
    _photos(team.org)
    before = cb._snapshot(team.org)
    done = subprocess.run([sys.executable, "-c", DYING, str(team.org), str(team.admin.user_id), team.admin.email],
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    alive = batches.list_batches(team.viewer)[0]
    assert (alive.status, alive.processed, alive.changed, alive.matched) == ("running", 2, 2, 5)
    with pytest.raises(ConflictError, match="still running"):
        batch_undo.undo_batch(team.admin, batch_id=alive.id)

    late = utcnow() + LATE
    stale = batches.list_batches(team.viewer, now=late)[0]
    assert (stale.status, stale.processed, stale.changed, stale.undoable) == ("interrupted", 2, 2, True)
    assert stale.message.startswith(f"Batch #{stale.id} (rename 'cat' to 'kitten') was interrupted: 2 tags "
                                    "changed, 0 failed; stopped after 2 of 5 tags. It made no progress for over "
                                    "10 minutes: the process running it stopped")
    assert stale.finished_at is not None and stale.finished_at < late
    assert batches.get_batch(team.viewer, batch_id=stale.id, now=late).status == "interrupted"
    entries = list_entries(team.admin, action="quality.batch.interrupted")
    assert [(e.entity_id, e.actor, e.summary) for e in entries] == [(
        str(stale.id), "system:batch-watch",
        f"Batch #{stale.id} (rename 'cat' to 'kitten') was interrupted after 2 of 5 rows (2 changed): no progress "
        "for over 10 minutes")]

    undone = batch_undo.undo_batch(team.admin, batch_id=stale.id)
    assert (undone.batch.status, undone.kept) == ("undone", 0) and undone.restored >= 2
    assert cb._snapshot(team.org) == before


def test_a_batch_marked_interrupted_while_it_runs_stops_at_its_next_chunk(team: Any) -> None:
    _photos(team.org)

    def stall(p: batches.BatchProgress) -> None:  # as if this process had hung past STALE_AFTER
        if p.processed == 1:
            with service_session() as s:
                s.execute(update(CorrectionBatch).where(CorrectionBatch.id == p.batch_id)
                          .values(heartbeat_at=utcnow() - LATE))
            assert batch_heartbeat.expire_stale(team.org) == [p.batch_id]

    b = batches.run_batch(team.admin, filters=BatchFilter(), template="accept", params={"at_least": 0.5},
                          chunk_size=1, progress=stall)
    assert (b.status, b.processed, b.changed) == ("interrupted", 1, 1)
    assert [e.action for e in list_entries(team.admin, entity_type="correction_batch")] == [
        "quality.batch.interrupted", "quality.batch.start"]  # no finish: it did not finish itself
    assert batch_undo.undo_batch(team.admin, batch_id=b.id).restored >= 1
