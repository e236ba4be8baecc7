"""Checking a prompt template before it is saved, and previewing it with sample values.

The rules are those of `aiconsole.prompts.render`, which the worker renders with: the bounded sandbox of
`aiconsole.prompts.sandbox` with StrictUndefined, `{{ name }}` anywhere, and a `{name}` single-brace
placeholder read as `{{ name }}` when `name` is a declared variable. So here a `{name}` of a known variable
counts as a use of it; any other `{word}` is sent to the model literally and only earns a warning.

A template that parses is then rendered once with sample values under the same limits as the worker's: one
that can never render (a blocked attribute, `max_tags + 'x'`, an oversized range, a recursive macro) is
refused with its line, so it can be neither saved, imported nor deployed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from aiconsole.platform.errors import AiconsoleError, ValidationFailed
from aiconsole.prompts.render import (
    PLACEHOLDER,
    PromptError,
    PromptSpec,
    prompt_values,
    render_prompt,
    to_jinja,
)
from aiconsole.prompts.sandbox import SANDBOX

MAX_PROMPT_BYTES = 64 * 1024
SAMPLE_VALUES: dict[str, Any] = prompt_values(max_tags=15, width=1024, height=768, content_type="image/jpeg")
# What prompt_values gives every prompt.
KNOWN_VARIABLES: tuple[str, ...] = tuple(SAMPLE_VALUES)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "with", "block", "autoescape", "trans", "raw"})


@dataclass(frozen=True)
class TemplateIssue:
    """One problem found in a template: the line (1-based, None for the whole prompt) and the reason."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"Line {self.line}: {self.message}"


@dataclass(frozen=True)
class TemplateCheck:
    """The result of checking a template: variables it uses, errors (refuse) and warnings (allow)."""

    variables: tuple[str, ...]
    errors: tuple[TemplateIssue, ...]
    warnings: tuple[TemplateIssue, ...]

    @property
    def ok(self) -> bool:
        """Whether the template may be saved."""
        return not self.errors


def _line_of(content: str, index: int) -> int:
    return content.count("\n", 0, index) + 1


def _extras(extra_variables: Iterable[str]) -> tuple[str, ...]:
    out = []
    for name in extra_variables:
        name = name.strip()
        if not name:
            continue
        if not _IDENT.fullmatch(name):
            raise ValidationFailed(f"'{name}' is not a valid variable name.",
                                   hint="Use letters, digits and underscores, starting with a letter.")
        out.append(name)
    return tuple(dict.fromkeys(out))


def _unclosed_block(source: str) -> tuple[str, int] | None:
    # Jinja reports an unclosed block at the end of the template; the user needs the line that opened it.
    stack: list[tuple[str, int]] = []
    expect_name = False
    try:
        for lineno, kind, value in SANDBOX.lex(source):
            if kind == "whitespace":
                continue
            if kind == "block_begin":
                expect_name = True
            elif expect_name and kind == "name":
                expect_name = False
                if value in _BLOCKS:
                    stack.append((value, lineno))
                elif value.startswith("end") and stack and stack[-1][0] == value[3:]:
                    stack.pop()
            else:
                expect_name = False
    except TemplateSyntaxError:
        return None
    return stack[-1] if stack else None


def _syntax_issue(source: str, exc: TemplateSyntaxError) -> TemplateIssue:
    reason = exc.message or "the template cannot be parsed"
    if "Unexpected end of template" in reason or "unexpected end of template" in reason:
        opened = _unclosed_block(source)
        if opened is not None:
            return TemplateIssue(opened[1], f"'{{% {opened[0]} %}}' is never closed: add '{{% end{opened[0]} %}}' "
                                            f"after the text it covers ({reason}).")
        return TemplateIssue(exc.lineno, f"a tag or '{{{{' is not closed ({reason}).")
    return TemplateIssue(exc.lineno, reason)


def check_template(content: str, *, extra_variables: Iterable[str] = ()) -> TemplateCheck:
    """Check a template without raising: size, emptiness, syntax (with its line) and undefined variables."""
    extras = _extras(extra_variables)
    known = set(KNOWN_VARIABLES) | set(extras)
    size = len(content.encode("utf-8"))
    if size > MAX_PROMPT_BYTES:
        return TemplateCheck((), (TemplateIssue(None, f"The prompt is {size:,} bytes; the limit is "
                                                      f"{MAX_PROMPT_BYTES:,} bytes (64 KB). Prompts are sent with "
                                                      "every photo, so a long prompt costs tokens on every call."),
                                  ), ())
    if not content.strip():
        return TemplateCheck((), (TemplateIssue(None, "The prompt is empty: write the instructions for the model."),
                                  ), ())
    single = [(m.group(1), _line_of(content, m.start())) for m in PLACEHOLDER.finditer(content)]
    source = to_jinja(content, known)
    try:
        tree = SANDBOX.parse(source)
        undeclared = meta.find_undeclared_variables(tree)
    except TemplateSyntaxError as exc:
        return TemplateCheck((), (_syntax_issue(source, exc),), ())
    except RecursionError:  # the parser recurses once per nesting level
        return TemplateCheck((), (TemplateIssue(None, "the template nests brackets or tags too deeply to be read"),
                                  ), ())
    errors: list[TemplateIssue] = []
    lines: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared:
            lines.setdefault(node.name, node.lineno)
    for name in sorted(undeclared - known, key=lambda n: (lines.get(n, 0), n)):
        errors.append(TemplateIssue(lines.get(name), f"'{name}' is not a known variable (known: "
                                                     f"{', '.join(sorted(known))})"))
    warnings = [TemplateIssue(line, f"'{{{name}}}' is not a known variable, so it is sent to the model as "
                                    f"written; use {{{{ {name} }}}} with a declared variable to fill it in.")
                for name, line in single if name not in known]
    used = tuple(sorted(undeclared & known, key=lambda n: (lines.get(n, 0), n)))
    if not errors:
        try:
            render_prompt(PromptSpec(0, content, used), sample_values(extras))
        except PromptError as exc:
            errors.append(TemplateIssue(exc.line, f"rendered with sample values it fails: {exc.reason}"))
    return TemplateCheck(used, tuple(errors), tuple(warnings))


def sample_values(extras: Iterable[str], values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a check or preview renders with: SAMPLE_VALUES, '<name>' for each extra, then `values`."""
    return {**SAMPLE_VALUES, **{name: f"<{name}>" for name in extras}, **(values or {})}


def validate_template(content: str, *, extra_variables: Iterable[str] = ()) -> tuple[str, ...]:
    """The variables a valid template uses; ValidationFailed listing every problem (with lines) otherwise."""
    result = check_template(content, extra_variables=extra_variables)
    if result.errors:
        raise ValidationFailed("The prompt was not saved: " + "; ".join(str(e) for e in result.errors) + ".",
                               hint="Fix the template and save again; nothing was changed. A variable that an "
                                    "experiment variant fills in must be declared as an extra variable.")
    return result.variables


def preview(content: str, *, extra_variables: Iterable[str] = (),
            values: Mapping[str, Any] | None = None) -> str:
    """The prompt rendered as the worker would, with sample values (and `values` for the extras).

    Raises only PromptError, whatever is wrong, so a page can always show the reason.
    """
    try:
        check = check_template(content, extra_variables=extra_variables)
        if check.ok:
            return render_prompt(PromptSpec(0, content, check.variables),
                                 sample_values(_extras(extra_variables), values))
        reason = "; ".join(str(e) for e in check.errors)
    except PromptError as exc:
        reason = exc.reason
    except AiconsoleError as exc:  # e.g. an invalid extra variable name
        reason = exc.message
    except Exception as exc:  # anything else would escape the page's message
        reason = f"{exc} ({type(exc).__name__})"
    raise PromptError(f"The preview failed: {reason.rstrip('.')}.",
                      hint="Fix the template; the worker would fail the same way.")
