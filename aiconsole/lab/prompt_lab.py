"""Test from the editor: run a draft or a saved prompt version on one photo, side by side with production.

A test goes through the worker's own call path (`worker_calls.Caller.call`: the org's provider settings,
its shared rate limit, the provider registry) with the organization's saved provider config, and applies
the organization's rules to the answer. Nothing is written: no photo is queued, no result or tag is
recorded and nothing is audited, because a test changes nothing.

Bad input (a photo that is not an image, another organization's photo id, a prompt that cannot be
rendered, an unknown model) is raised as an AiconsoleError before any call goes out. A provider failure
is not raised: it is the test's answer, returned as `RunError` with the provider's exact kind and message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.lab.photos import PhotoChoice, TestPhoto, resolve_photo
from aiconsole.pipeline.calls import Caller, CallOptions, shared_caller
from aiconsole.pipeline.context import OrgContext, load_org_context
from aiconsole.pipeline.routing import RouteDecision
from aiconsole.pipeline.rules import RuleSet, jaccard, load_rules
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session
from aiconsole.platform.db.models import Prompt, PromptVersion
from aiconsole.platform.errors import InfrastructureFault, NotFound, ProviderError, ValidationFailed
from aiconsole.platform.formatting import usd_small
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.prompts.render import PromptError, PromptSpec, prompt_values, render_prompt
from aiconsole.prompts.templates import check_template
from aiconsole.providers.base import ImageInput, truncate_raw
from aiconsole.providers.registry import PROVIDER_MODELS, PROVIDER_NAMES, capabilities, default_model

RAW_RESPONSE_CHARS = 20_000
MAX_VARIABLES = 30
MAX_VARIABLE_CHARS = 2_000
# An interactive test waits at most this long for a slot of the org's provider rate limit.
LAB_OPTIONS = CallOptions(rate_limit_timeout_s=10.0)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ------------------------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class TagVerdict:
    """One tag of a test run with the verdict the org's rules give it."""

    label: str
    confidence: float
    verdict: str


@dataclass(frozen=True)
class RunError:
    """Why a test call failed, exactly as the provider (or the prompt) reported it."""

    kind: str
    message: str
    hint: str | None
    retryable: bool

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" + (f" {self.hint}" if self.hint else "")


@dataclass(frozen=True)
class TestRun:
    """One call of one provider/model/prompt on one photo: tags and verdicts, usage, cost, or the error."""

    __test__ = False  # not a pytest class, despite its name
    provider: str
    model: str
    prompt_source: str
    prompt_version_id: int | None
    rendered_prompt: str | None
    prompt_sent: bool
    photo: TestPhoto
    tags: tuple[TagVerdict, ...] = ()
    photo_status: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0
    cost_micros: int = 0
    latency_ms: int = 0
    total_ms: int = 0
    raw_response: Any = None
    error: RunError | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the provider answered."""
        return self.error is None

    @property
    def billing(self) -> str:
        """What the provider's usage is counted in: 'tokens', 'units' or 'none'."""
        return capabilities(self.provider).billing

    @property
    def cost_text(self) -> str:
        """The cost as dollars to its first significant digits (a single call costs fractions of a cent)."""
        return usd_small(self.cost_micros)

    def labels(self) -> list[str]:
        """The tag labels, best first."""
        return [t.label for t in self.tags]


@dataclass(frozen=True)
class TagDiff:
    """How a test's tags differ from production's: added, removed, common and their Jaccard index."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    common: tuple[str, ...]
    jaccard: float


@dataclass(frozen=True)
class Comparison:
    """A test run and the production config's run on the same photo, with their tag differences."""

    test: TestRun
    production: TestRun
    diff: TagDiff | None


@dataclass(frozen=True)
class LabOptions:
    """What the test panel offers: providers with their models, and the org's production choice."""

    providers: dict[str, tuple[str, ...]]
    enabled: dict[str, bool]
    active_provider: str
    active_model: str
    production_version_id: int | None


# ------------------------------------------------------------------------------------------- maths


def tag_diff(test: list[str] | tuple[str, ...], production: list[str] | tuple[str, ...]) -> TagDiff:
    """Tags added and removed by the test against production; Jaccard = |common| / |union| (1.0 when both are empty)."""
    a, b = set(test), set(production)
    return TagDiff(added=tuple(sorted(a - b)), removed=tuple(sorted(b - a)), common=tuple(sorted(a & b)),
                   jaccard=jaccard(a, b))


def parse_variables(text: str) -> dict[str, str]:
    """`name=value` lines (blank lines and lines starting with # are skipped) as a variables mapping."""
    out: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        if not sep:
            raise ValidationFailed(f"Line {number} of the variable values has no '=': {stripped[:60]!r}.",
                                   hint="Write one variable per line as name=value, e.g. language=German.")
        out[name.strip()] = value.strip()
    return check_variables(out)


def check_variables(variables: Mapping[str, Any] | None) -> dict[str, str]:
    """The variable values as text, or ValidationFailed naming the bad one."""
    if not variables:
        return {}
    if len(variables) > MAX_VARIABLES:
        raise ValidationFailed(f"{len(variables)} variable values are more than the {MAX_VARIABLES} allowed.",
                               hint="A prompt needs only the variables it uses.")
    out: dict[str, str] = {}
    for name, value in variables.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValidationFailed(f"{str(name)[:60]!r} is not a variable name.",
                                   hint="Names are letters, digits and underscores, not starting with a digit.")
        if value is None:
            continue  # no value given: the variable counts as not declared
        text = str(value)
        if len(text) > MAX_VARIABLE_CHARS:
            raise ValidationFailed(f"The value of {name} is {len(text):,} characters, over {MAX_VARIABLE_CHARS:,}.",
                                   hint="Variable values are short texts such as a language or a number.")
        out[name] = text
    return out


def _check_choice(provider: str, model: str | None) -> tuple[str, str]:
    if provider not in PROVIDER_NAMES:
        raise ValidationFailed(f"There is no provider '{provider}'.",
                               hint=f"Choose one of {', '.join(PROVIDER_NAMES)}.")
    model = model or default_model(provider)
    if model not in PROVIDER_MODELS[provider]:
        raise ValidationFailed(f"{provider} has no model '{model}'.",
                               hint=f"Its models: {', '.join(PROVIDER_MODELS[provider])}.")
    return provider, model


# ------------------------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class _Prompt:
    spec: PromptSpec | None
    source: str
    is_draft: bool = False
    warnings: tuple[str, ...] = ()


def _draft_prompt(draft: str, extra_variables: Iterable[str]) -> _Prompt:
    # The editor's own checks (prompt_templates): what would stop a save also stops a test, with its line.
    check = check_template(draft, extra_variables=extra_variables)
    if not check.ok:
        raise PromptError("The draft cannot be tested: " + "; ".join(str(e) for e in check.errors) + ".",
                          hint="Fix the template; a variable you give a value under 'Variable values' counts as "
                               "declared.")
    return _Prompt(PromptSpec(0, draft, check.variables), "unsaved draft", is_draft=True,
                   warnings=tuple(str(w) for w in check.warnings))


def _version_prompt(session: Session, organization_id: int, version_id: int, what: str) -> _Prompt:
    row = session.execute(
        select(PromptVersion.id, PromptVersion.content, PromptVersion.variables, PromptVersion.version, Prompt.name)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(PromptVersion.organization_id == organization_id, PromptVersion.id == version_id)
    ).first()
    if row is None:
        raise NotFound(f"There is no prompt version #{version_id} in this organization.",
                       hint="Choose one of this organization's saved versions.")
    spec = PromptSpec(int(row.id), row.content, tuple(row.variables or ()))
    return _Prompt(spec, f"{what}{row.name} v{row.version}")


def _render(prompt: _Prompt, values: dict[str, Any]) -> str | None:
    if prompt.spec is None:
        return None
    try:
        return render_prompt(prompt.spec, values)
    except PromptError as exc:
        if not prompt.is_draft:
            raise
        # render_prompt names "version 0"; an unsaved draft is "the draft".
        raise PromptError(exc.message.replace("Prompt version 0", "The draft", 1), hint=exc.hint) from None


# ------------------------------------------------------------------------------------------- calls

def _caller(settings: Settings) -> Caller:
    return shared_caller("prompt-lab", settings=settings, options=LAB_OPTIONS)


@dataclass(frozen=True)
class _Lab:
    ctx: OrgContext
    rules: RuleSet
    image: ImageInput
    photo: TestPhoto

    def values(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        return prompt_values(max_tags=LAB_OPTIONS.max_labels, width=self.image.width, height=self.image.height,
                             content_type=self.image.content_type, overrides=overrides)


def _load(session: Session, actor: Actor, photo: PhotoChoice, settings: Settings) -> _Lab:
    org = actor.organization_id
    ctx = load_org_context(session, organization_id=org, settings=settings)
    image, info = resolve_photo(session, org, photo, settings)
    return _Lab(ctx, load_rules(session, org), image, info)


def _execute(lab: _Lab, provider: str, model: str, prompt: _Prompt, rendered: str | None,
             settings: Settings) -> TestRun:
    sent = capabilities(provider).takes_prompt  # as in the worker: the others are sent no prompt
    source = prompt.source
    if prompt.spec is None:
        builtin = capabilities(provider).builtin_prompt if sent else None
        rendered, source = (builtin.format(max_labels=LAB_OPTIONS.max_labels), f"{provider}'s built-in prompt") \
            if builtin else (None, "none")
    notes = list(prompt.warnings)
    if not lab.ctx.setup(provider).enabled:
        notes.append(f"{provider} is disabled in this organization's pipeline; the test called it anyway.")
    if not sent and prompt.spec is not None:
        notes.append(f"{provider} takes no prompt; the rendered prompt is shown but was not sent.")
    run = TestRun(provider=provider, model=model, prompt_source=source,
                  prompt_version_id=None if prompt.spec is None or prompt.is_draft else prompt.spec.version_id,
                  rendered_prompt=rendered, prompt_sent=sent and rendered is not None, photo=lab.photo,
                  notes=tuple(notes))
    trace: list[dict[str, Any]] = []
    started = time.perf_counter()
    caller = _caller(settings)
    try:
        result = caller.call(lab.ctx, RouteDecision(provider, model, "prompt lab test"), lab.image,
                             rendered if sent else None, trace)
    except ProviderError as exc:
        return replace(run, error=RunError(exc.kind, exc.message, exc.hint, exc.retryable),
                       total_ms=round((time.perf_counter() - started) * 1000))
    except InfrastructureFault as exc:  # e.g. the shared rate limiter's Redis is down: nothing was sent
        return replace(run, error=RunError("infrastructure", exc.message, exc.hint, True),
                       total_ms=round((time.perf_counter() - started) * 1000))
    finally:
        caller.drain_stats()  # tests are not worker traffic: nothing reports these stats, so none pile up
    tags = tuple(TagVerdict(t.label, t.confidence, lab.rules.verdict(t.label, t.confidence)) for t in result.tags)
    return replace(
        run, tags=tags, photo_status=lab.rules.photo_status(t.verdict for t in tags),
        input_tokens=result.input_tokens, output_tokens=result.output_tokens, units=result.units,
        cost_micros=result.cost_micros, latency_ms=result.latency_ms,
        total_ms=round((time.perf_counter() - started) * 1000),
        raw_response=truncate_raw(result.raw_response, RAW_RESPONSE_CHARS))


def _production_prompt(session: Session, ctx: OrgContext, *, provider: str | None) -> _Prompt:
    # provider None: production's prompt whoever runs it; else only if the worker would send it to `provider`.
    if ctx.prompt is None or (provider is not None and not capabilities(provider).takes_prompt):
        return _Prompt(None, "none")
    return _version_prompt(session, ctx.organization_id, ctx.prompt.version_id, "production: ")


def _test_prompt(session: Session, ctx: OrgContext, draft: str | None, version_id: int | None,
                 extra_variables: Iterable[str]) -> _Prompt:
    if draft is not None and version_id is not None:
        raise ValidationFailed("Test either the unsaved draft or a saved version, not both.",
                               hint="Choose one of them in the test panel.")
    if draft is not None:
        return _draft_prompt(draft, extra_variables)
    if version_id is not None:
        return _version_prompt(session, ctx.organization_id, int(version_id), "")
    # Neither: production's prompt, rendered (and shown) whichever provider is tested.
    return _production_prompt(session, ctx, provider=None)


# ------------------------------------------------------------------------------------------- public


def lab_options(actor: Actor, *, settings: Settings | None = None) -> LabOptions:
    """The providers and models a test can use, and the organization's production provider, model and prompt."""
    actor.require("testing.run")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        ctx = load_org_context(s, organization_id=actor.organization_id, settings=settings)
    return LabOptions(providers=dict(PROVIDER_MODELS), enabled={p: ctx.setup(p).enabled for p in PROVIDER_NAMES},
                      active_provider=ctx.active_provider, active_model=ctx.active_model,
                      production_version_id=ctx.prompt.version_id if ctx.prompt else None)


@dataclass(frozen=True)
class _Plan:
    lab: _Lab
    provider: str
    model: str
    prompt: _Prompt
    rendered: str | None
    production: _Prompt


def _plan(actor: Actor, photo: PhotoChoice, provider: str, model: str | None, draft: str | None,
          version_id: int | None, variables: Mapping[str, Any] | None, settings: Settings) -> _Plan:
    # Everything a run needs, checked before any call goes out (permission, choice, photo, prompt).
    actor.require("testing.run")
    provider, model = _check_choice(provider, model)
    overrides = check_variables(variables)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        lab = _load(s, actor, photo, settings)
        prompt = _test_prompt(s, lab.ctx, draft, version_id, overrides)
        production = _production_prompt(s, lab.ctx, provider=lab.ctx.active_provider)
    return _Plan(lab, provider, model, prompt, _render(prompt, lab.values(overrides)), production)


def run_test(actor: Actor, *, photo: PhotoChoice, provider: str, model: str | None = None,
             draft: str | None = None, version_id: int | None = None, variables: Mapping[str, Any] | None = None,
             settings: Settings | None = None) -> TestRun:
    """Run the draft, a saved version (or, with neither, production's prompt) once on `photo`; nothing is saved."""
    settings = settings or get_settings()
    p = _plan(actor, photo, provider, model, draft, version_id, variables, settings)
    return _execute(p.lab, p.provider, p.model, p.prompt, p.rendered, settings)


def compare_with_production(actor: Actor, *, photo: PhotoChoice, provider: str, model: str | None = None,
                            draft: str | None = None, version_id: int | None = None,
                            variables: Mapping[str, Any] | None = None,
                            settings: Settings | None = None) -> Comparison:
    """The test run and the production config's run (active provider, model, production prompt) on one photo."""
    settings = settings or get_settings()
    p = _plan(actor, photo, provider, model, draft, version_id, variables, settings)
    lab, ctx, production = p.lab, p.lab.ctx, p.production
    # The two calls go out together: a comparison takes as long as the slower call, not both.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="prompt-lab") as pool:
        test_future = pool.submit(_execute, lab, p.provider, p.model, p.prompt, p.rendered, settings)
        try:
            production_text = _render(production, lab.values({}))
        except PromptError as exc:
            # Production's own prompt is broken: that is a finding for its column, not a refusal of the test.
            prod_run = TestRun(provider=ctx.active_provider, model=ctx.active_model, prompt_source=production.source,
                               prompt_version_id=production.spec.version_id if production.spec else None,
                               rendered_prompt=None, prompt_sent=False, photo=lab.photo,
                               error=RunError("prompt", exc.message, exc.hint, False))
        else:
            prod_run = _execute(lab, ctx.active_provider, ctx.active_model, production, production_text, settings)
        test_run = test_future.result()
    diff = tag_diff(test_run.labels(), prod_run.labels()) if test_run.ok and prod_run.ok else None
    return Comparison(test=test_run, production=prod_run, diff=diff)
