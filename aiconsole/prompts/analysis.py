"""Prompt analysis while editing: variables, the output format asked for, warnings with a reason, the token
count (the model's own where a counter is given, else an estimate, labelled) and the cost per 1,000 photos.

Pure: no Streamlit, no database. The counter is any object with `count_tokens(model, text) -> int` (the gemini
provider's, which calls the model's countTokens); prices and image tokens come from `providers.pricing`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiconsole.platform.errors import AiconsoleError
from aiconsole.prompts.templates import check_template
from aiconsole.providers import pricing
from aiconsole.providers.registry import capabilities

OutputFormat = Literal["json", "comma-separated", "list", "unspecified"]
LONGER_RATIO = 2.0  # a draft this many times the production version's tokens is "much longer"
TYPICAL_IMAGE = (1024, 768)  # the photo size a projection assumes (pricing tiles it)
TYPICAL_OUTPUT_TOKENS = 150  # ~15 labels with confidences as JSON

_JSON = re.compile(r"\bjson\b", re.I)
_COMMA = re.compile(r"comma[- ]separated|separated by commas", re.I)
_LIST = re.compile(r"\b(bullet(ed)? list|one (label|tag) per line|numbered list)\b", re.I)
_LIMIT_VAR = re.compile(r"\{\{?\s*max_(tags|labels)\b")
_AT_MOST = re.compile(r"\b(?:at most|up to|no more than|maximum of|max(?:imum)?)\s+(\d+)\s+(?:tags|labels)", re.I)
_AT_LEAST = re.compile(r"\b(?:at least|no fewer than|minimum of|min(?:imum)?)\s+(\d+)\s+(?:tags|labels)", re.I)
_EXACT = re.compile(r"\b(?:exactly|return|give|list)\s+(\d+)\s+(?:tags|labels)", re.I)


class TokenCounter(Protocol):
    def count_tokens(self, model: str, text: str) -> int: ...


@dataclass(frozen=True)
class PromptWarning:
    """One thing in the draft likely to cost tags or money, and why."""

    code: str
    message: str
    reason: str


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    source: Literal["model", "estimate"]

    @property
    def label(self) -> str:
        return "model's count" if self.source == "model" else "estimate"


@dataclass(frozen=True)
class Analysis:
    variables: tuple[str, ...]
    output_format: OutputFormat
    tokens: TokenCount
    cost_per_1000_micros: int | None  # None: the provider is not billed by tokens
    warnings: tuple[PromptWarning, ...]


def estimate_tokens(text: str) -> int:
    """~4 characters per token, the rule Google documents for Gemini."""
    return math.ceil(len(text) / 4)


def count_tokens(text: str, *, model: str, counter: TokenCounter | None) -> TokenCount:
    """The model's own count when a counter is given and answers; else the estimate, labelled so."""
    if counter is not None:
        try:
            return TokenCount(counter.count_tokens(model, text), "model")
        except AiconsoleError:
            pass
    return TokenCount(estimate_tokens(text), "estimate")


def output_format(text: str) -> OutputFormat:
    """The answer format the prompt asks for (JSON first: it is what a JSON-parsed provider needs)."""
    if _JSON.search(text):
        return "json"
    if _COMMA.search(text):
        return "comma-separated"
    if _LIST.search(text):
        return "list"
    return "unspecified"


def cost_per_1000_micros(*, provider: str, model: str, prompt_tokens: int, overrides: dict[str, Any] | None = None,
                         image: tuple[int, int] = TYPICAL_IMAGE, output_tokens: int = TYPICAL_OUTPUT_TOKENS
                         ) -> int | None:
    """Projected cost of 1,000 photos: 1,000 x one call's (prompt + image tokens in, typical answer out)."""
    if capabilities(provider).billing != "tokens" or model not in pricing.GEMINI_PRICES:
        return None
    per_photo_in = prompt_tokens + pricing.gemini_image_tokens(*image)
    return pricing.gemini_cost_micros(model, input_tokens=1000 * per_photo_in, output_tokens=1000 * output_tokens,
                                      overrides=overrides)


def warnings_for(text: str, *, provider: str, tokens: int, production_tokens: int | None) -> tuple[PromptWarning, ...]:
    """Every warning the draft earns, each with its reason."""
    found: list[PromptWarning] = []
    fmt = output_format(text)
    caps = capabilities(provider)
    if caps.takes_prompt and caps.billing == "tokens" and fmt != "json":
        found.append(PromptWarning("no_json", "The prompt does not ask for JSON.",
                             f"{caps.display_name}'s answer is parsed as a JSON list of labels; without the "
                             "instruction the model may answer in prose and the photo fails as malformed."))
    most = [int(n) for n in _AT_MOST.findall(text)]
    least = [int(n) for n in _AT_LEAST.findall(text)]
    if not most and not least and not _EXACT.search(text) and not _LIMIT_VAR.search(text):
        found.append(PromptWarning("no_tag_limit", "The prompt sets no tag limit.",
                             "Without a limit (e.g. {{ max_tags }}) the model returns as many labels as it likes: "
                             "output tokens and review work grow with them."))
    if most and least and min(most) < max(least):
        found.append(PromptWarning("conflict_limits", f"At most {min(most)} and at least {max(least)} tags conflict.",
                             "The model cannot follow both; which one it drops varies from photo to photo."))
    if _JSON.search(text) and _COMMA.search(text):
        found.append(PromptWarning("conflict_format", "The prompt asks for JSON and for comma-separated text.",
                             "Two answer formats: some answers will be in the one the parser does not read."))
    if production_tokens and tokens >= LONGER_RATIO * production_tokens:
        found.append(PromptWarning("longer_than_production",
                             f"{tokens / production_tokens:.1f}x the production version's length.",
                             f"{tokens:,} tokens against {production_tokens:,}: every photo pays for the extra "
                             "input tokens."))
    return tuple(found)


def analyze(text: str, *, provider: str, model: str, counter: TokenCounter | None = None,
            production: str | None = None, overrides: dict[str, Any] | None = None,
            extra_variables: tuple[str, ...] = ()) -> Analysis:
    """The whole analysis of one draft for the active provider and model."""
    try:
        variables = check_template(text, extra_variables=extra_variables).variables
    except AiconsoleError:
        variables = ()
    tokens = count_tokens(text, model=model, counter=counter)
    production_tokens = None
    if production:
        production_tokens = count_tokens(production, model=model, counter=counter).tokens
    return Analysis(variables=variables, output_format=output_format(text), tokens=tokens,
                    cost_per_1000_micros=cost_per_1000_micros(provider=provider, model=model,
                                                              prompt_tokens=tokens.tokens, overrides=overrides),
                    warnings=warnings_for(text, provider=provider, tokens=tokens.tokens,
                                          production_tokens=production_tokens))
