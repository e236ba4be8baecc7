"""The Prompts page's label moves carry the labels the page showed: a move someone made meanwhile is refused
with a conflict naming them, on the plain Move label button and on the confirmed deploy (issue 9 item 7)."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from aiconsole.platform.actor import Actor
from aiconsole.prompts import catalog
from aiconsole.prompts import versions as prompts
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/prompts.py"


def _tagger(actor: Actor) -> tuple[catalog.PromptRow, list[catalog.VersionRow]]:
    row = next(r for r in catalog.list_prompts(actor) if r.name == "photo-tagger")
    return row, catalog.list_versions(actor, prompt_id=row.id)


def _messages(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def test_a_move_made_while_the_page_was_open_is_refused_not_overwritten(app_as: Callable[[str], AppTest]) -> None:
    at = app_as("admin")
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    admin: Actor = at.session_state[ACTOR_KEY]
    row, versions = _tagger(admin)
    numbers = [v.version for v in versions]
    by_number = {v.version: v for v in versions}
    staging = row.labels.get("staging")
    mine, theirs = [n for n in numbers if n != staging][:2]

    # The page shows staging; someone else moves it; this page's move is refused and theirs stays.
    at.selectbox(key="label_name").select("staging")
    at.selectbox(key=f"label_version_{row.id}").select(mine).run()
    prompts.move_label(admin, prompt_id=row.id, label="staging", version_id=by_number[theirs].id,
                       expected_version=staging)
    at.button(key="label_move").click().run()
    assert not at.exception, at.exception
    assert any("Not moved: admin@demo.aiconsole.dev changed staging of photo-tagger" in m
               and f"it now points at version {theirs}" in m for m in _messages(at)), _messages(at)
    assert _tagger(admin)[0].labels["staging"] == theirs
    # The page now shows their move, so moving again works.
    at.button(key="label_move").click().run()
    assert _tagger(admin)[0].labels["staging"] == mine

    # Deploy: the confirmation was shown while production was on one version; someone deploys another.
    production = _tagger(admin)[0].labels["production"]
    target, other = [n for n in numbers if n != production][:2]
    at.selectbox(key="label_name").select("production")
    at.selectbox(key=f"label_version_{row.id}").select(target).run()
    at.button(key="label_deploy").click().run()
    prompts.move_label(admin, prompt_id=row.id, label="production", version_id=by_number[other].id,
                       expected_version=production)
    at.button(key="label_deploy_confirm").click().run()
    assert not at.exception, at.exception
    assert any(f"it now points at version {other}, while your page showed it on version {production}" in m
               for m in _messages(at)), _messages(at)
    assert _tagger(admin)[0].labels["production"] == other
