"""The editor's prompt analysis for an organization: its active provider and model, the production version's
text to compare with, and the model's own token counter (the gemini provider with the org's key/endpoint)."""

from __future__ import annotations

from aiconsole.pipeline.context import load_org_context
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.settings import Settings
from aiconsole.prompts.analysis import Analysis, analyze
from aiconsole.providers import gemini


def analyze_draft(actor: Actor, *, draft: str, extra_variables: tuple[str, ...] = (),
                  settings: Settings | None = None) -> Analysis:
    """Analyse `draft` against the organization's active model and production prompt (pipeline.view)."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        ctx = load_org_context(s, organization_id=actor.organization_id, settings=settings)
    production = ctx.prompt.content if ctx.prompt is not None else None
    counter: gemini.GeminiProvider | None = None
    if ctx.active_provider == gemini.NAME:
        try:
            counter = gemini.GeminiProvider(ctx.setup(gemini.NAME).settings())
        except AiconsoleError:
            counter = None  # no usable key: the estimate, labelled so
    return analyze(draft, provider=ctx.active_provider, model=ctx.active_model, counter=counter,
                   production=production, overrides=dict(ctx.setup(ctx.active_provider).price_overrides),
                   extra_variables=extra_variables)
