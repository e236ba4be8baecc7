"""Suggestions from the organization's own results, on seeded rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from aiconsole.admin import users
from aiconsole.lab.prompt_suggestions import MIN_RESULTS, suggestions, version_performance
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import AiProcessingResult, Photo, Prompt, PromptVersion
from aiconsole.platform.settings import Settings
from aiconsole.providers.samples import demo_photo

GOOD = "Return up to {{ max_tags }} labels as a JSON list."
POOR = "Describe what you see in the photo, naming everything."


def _seed(settings: Settings) -> tuple[Actor, int]:
    org = users.create_organization(name="Suggest", settings=settings).id
    with service_session() as s:
        prompt = Prompt(organization_id=org, name="tagger", description="")
        s.add(prompt)
        s.flush()
        good = PromptVersion(organization_id=org, prompt_id=prompt.id, version=1, content=GOOD, variables=["max_tags"])
        poor = PromptVersion(organization_id=org, prompt_id=prompt.id, version=2, content=POOR, variables=[])
        thin = PromptVersion(organization_id=org, prompt_id=prompt.id, version=3, content=POOR, variables=[])
        d = demo_photo("coffee", 0)
        photo = Photo(organization_id=org, sha256=d.sha256, storage_uri=d.uri, filename="c.jpg",
                      content_type="image/jpeg", byte_size=d.byte_size, width=d.width, height=d.height,
                      source="demo", status="completed")
        s.add_all([good, poor, thin, photo])
        s.flush()
        # v1: 2 of 20 to review; v2: 10 of 20; v3: only 5 results (too few, left out).
        for version, n, reviews in ((good, MIN_RESULTS, 2), (poor, MIN_RESULTS, 10), (thin, 5, 0)):
            s.add_all(AiProcessingResult(organization_id=org, photo_id=photo.id, ai_provider="gemini",
                                         model="gemini-2.5-flash", prompt_version_id=version.id,
                                         status="needs_review" if i < reviews else "completed",
                                         avg_confidence=0.9 if version is good else 0.6) for i in range(n))
        return Actor(user_id=None, email="dev@example.com", role="developer", organization_id=org), prompt.id


def test_best_versions_traits_are_suggested(any_settings: Settings) -> None:
    actor, prompt_id = _seed(any_settings)
    perf = version_performance(actor, prompt_id=prompt_id, settings=any_settings)
    assert [(p.version, p.results, round(p.review_rate, 2)) for p in perf] == [(1, 20, 0.1), (2, 20, 0.5)]
    found = suggestions(POOR, perf)
    assert any(s.startswith("Ask for a JSON answer: v1") for s in found), found
    assert any(s.startswith("Set a tag limit") for s in found), found
    assert suggestions(GOOD, perf) == []
    assert suggestions(POOR, perf[:1]) == []
