"""Rendering a prompt version for one photo, as the worker, the prompt lab and the editor's preview do.

Prompts are rendered in `aiconsole.prompts.sandbox.SANDBOX` (no Python evaluation, no attribute access to
internals, bounded in steps, sizes, depth and time): `{{ name }}` anywhere, and the `{name}` placeholders of a
version's declared variables (the form the prompt editor and the demo use) are read as `{{ name }}`. A
variable without a value is an error that names it, never a silent blank. `render_prompt` is the one way a
prompt is rendered (worker, health probes, lab, preview, save check), and every failure it meets, Python's
RecursionError and TypeError included, comes out as a PromptError with the template line when Jinja gives one.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from aiconsole.platform.errors import ValidationFailed
from aiconsole.prompts.sandbox import LIMITS, SANDBOX, RenderLimitError, RenderLimits, render_bounded

DEFAULT_MAX_TAGS = 15
DEFAULT_LANGUAGE = "English"
# A `{name}` single-brace placeholder (not part of a `{{ ... }}`).
PLACEHOLDER = re.compile(r"(?<!\{)\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")


class PromptError(ValidationFailed):
    """A prompt version could not be rendered (unknown variable, template syntax, a limit); `line` when known."""

    def __init__(self, message: str, *, hint: str | None = None, line: int | None = None,
                 reason: str | None = None) -> None:
        self.line = line
        self.reason = reason or message
        super().__init__(message, hint=hint)


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


def template_line(exc: BaseException) -> int | None:
    """The template line a render failure happened on, when Jinja's traceback gives one."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"]
    return lines[-1] if lines else None


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in words a prompt author can act on."""
    if isinstance(exc, RecursionError):
        return "the template calls itself too deeply (macro recursion)"
    if isinstance(exc, MemoryError):
        return "the template needs more memory than a prompt may use"
    if isinstance(exc, TemplateSyntaxError):
        return exc.message or "the template cannot be parsed"
    text = str(exc).rstrip(".") or type(exc).__name__
    return text if isinstance(exc, TemplateError | RenderLimitError) else f"{text} ({type(exc).__name__})"


def render_prompt(spec: PromptSpec, values: Mapping[str, Any], *, limits: RenderLimits = LIMITS) -> str:
    """The prompt text with its variables filled in, sandboxed and bounded by `limits`.

    Raises only PromptError: for a variable without a value, and for every way rendering can fail.
    """
    missing = [v for v in spec.variables if values.get(v) is None]
    if missing:
        one = len(missing) == 1
        raise PromptError(f"Prompt version {spec.version_id} uses {'a variable' if one else 'variables'} "
                          f"{', '.join(missing)} that {'has' if one else 'have'} no value.",
                          hint="Give each a value in the experiment variant, or remove it from the prompt.")
    try:
        return render_bounded(_template(spec.content, spec.variables), values, limits)
    except Exception as exc:  # anything a template can raise is the template's fault, never the caller's
        line, reason = template_line(exc), failure_reason(exc)
        where = "" if line is None else f"line {line}: "
        raise PromptError(f"Prompt version {spec.version_id} cannot be rendered: {where}{reason}.",
                          hint="Fix the template in the prompt editor; {{ name }} inserts a variable.",
                          line=line, reason=reason) from exc
