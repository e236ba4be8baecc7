"""The Prompts page with a hostile latest version seeded straight into the table (as one saved before the render
check could have been): the page still renders, promptly, and shows why the version cannot render (issue 9)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import Prompt, PromptVersion
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.session import ACTOR_KEY
from aiconsole.ui.widgets import shown

PAGE = "pages/prompts.py"


HOSTILE = [
    ("{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
     r"range() is limited to 10,000 items"),
    ("Tag it.\n{{ 'x' * 10**9 }}", "over the 65,536-character value limit"),
    ("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(1) }}", "more than 32 deep"),
    ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}", "the step limit"),
    ("Tag {{ max_tags + 'x' }} photos.", "unsupported operand"),
    ("{{ ''.__class__ }}", "unsafe"),
]


def _seed_latest(actor: Actor, content: str) -> int:
    """Add `content` as the newest version of the demo's photo-tagger, bypassing every check."""
    with service_session() as s:
        prompt = s.scalar(select(Prompt).where(Prompt.organization_id == actor.organization_id,
                                               Prompt.name == "photo-tagger"))
        assert prompt is not None
        number = s.scalar(select(func.max(PromptVersion.version)).where(PromptVersion.prompt_id == prompt.id)) or 0
        s.add(PromptVersion(organization_id=actor.organization_id, prompt_id=prompt.id, version=number + 1,
                            content=content, variables=[], message="hostile", author_id=actor.user_id,
                            created_at=utcnow()))
        return number + 1


@pytest.mark.timeout(600)
def test_the_prompts_page_renders_with_a_hostile_latest_version(app_as: Callable[[str], AppTest]) -> None:
    for content, words in HOSTILE:
        at = app_as("admin")
        number = _seed_latest(at.session_state[ACTOR_KEY], content)
        started = time.perf_counter()
        at.switch_page(PAGE).run(timeout=60)
        elapsed = time.perf_counter() - started
        assert not at.exception, at.exception
        assert at.selectbox(key=next(k for k in at.session_state if k.startswith("prompt_base_"))).value == number
        errors = [shown(e.value) for e in at.error]
        assert any("rendered with sample values it fails" in e and words in e for e in errors), errors
        assert elapsed < 30, f"{content!r}: the page took {elapsed:.1f} s"
