"""Rendering a prompt version for one photo, as the worker, the prompt lab and the editor's preview do.

Prompts are rendered by Jinja2's SandboxedEnvironment (no Python evaluation, no attribute access to
internals): `{{ name }}` anywhere, and the `{name}` placeholders of a version's declared variables (the
form the prompt editor and the demo use) are read as `{{ name }}`. A variable without a value is an error
that names it, never a silent blank.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from aiconsole.platform.errors import ValidationFailed

DEFAULT_MAX_TAGS = 15
DEFAULT_LANGUAGE = "English"
# A `{name}` single-brace placeholder (not part of a `{{ ... }}`).
PLACEHOLDER = re.compile(r"(?<!\{)\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")
# The one environment prompts are parsed and rendered in.
SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class PromptError(ValidationFailed):
    """A prompt version could not be rendered (unknown variable, template syntax)."""


@dataclass(frozen=True)
class PromptSpec:
    """An immutable prompt version: its id, text and declared variables."""

    version_id: int
    content: str
    variables: tuple[str, ...]


def to_jinja(content: str, variables: Iterable[str]) -> str:
    """`content` with the `{name}` placeholders of `variables` written as `{{ name }}` (as the worker reads it)."""
    names = set(variables)
    return PLACEHOLDER.sub(lambda m: "{{ " + m.group(1) + " }}" if m.group(1) in names else m.group(0), content)


@lru_cache(maxsize=256)
def _template(content: str, variables: tuple[str, ...]) -> Any:
    return SANDBOX.from_string(to_jinja(content, variables))


def prompt_values(*, max_tags: int = DEFAULT_MAX_TAGS, width: int | None = None, height: int | None = None,
                  content_type: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a prompt can use: max_tags, language and the image's size and type, then the overrides."""
    values: dict[str, Any] = {"max_tags": max_tags, "max_labels": max_tags, "language": DEFAULT_LANGUAGE,
                              "width": width, "height": height, "content_type": content_type}
    values.update(overrides or {})
    return values


def render_prompt(spec: PromptSpec, values: Mapping[str, Any]) -> str:
    """The prompt text with its variables filled in (sandboxed); PromptError names what is missing."""
    missing = [v for v in spec.variables if values.get(v) is None]
    if missing:
        raise PromptError(f"Prompt version {spec.version_id} uses variable(s) {', '.join(missing)} that have no "
                          "value.", hint="Give them values in the experiment variant, or remove them from the prompt.")
    try:
        return str(_template(spec.content, spec.variables).render(**values))
    except TemplateError as exc:
        raise PromptError(f"Prompt version {spec.version_id} cannot be rendered: {exc}.",
                          hint="Fix the template in the prompt editor; {{ name }} inserts a variable.") from exc
