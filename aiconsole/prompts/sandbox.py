"""The one Jinja environment prompts are parsed and rendered in: sandboxed, and bounded in work and size.

Jinja's ImmutableSandboxedEnvironment already refuses Python internals (`''.__class__`) and in-place changes
(`list.append`), so a value can only grow through an operator, a call, a filter or a namespace. Each of those
is checked here, so no template can hang a worker or fill its memory:

- steps: every loop iteration, call, filter and macro call counts; more than `RenderLimits.steps` is refused.
  This is the deterministic guard against nested loops (`range(10000)` twice).
- sizes: `range()` has at most `range_items` items; no value a template builds (`'x' * n`, `~`, `+`, `%`,
  `str.format`, `center`, `replace`, `join`, ...) may exceed `value_chars`, and the checks that can run
  before the work (multiplication, format widths, padding) do, so `'x' * 10**9` fails without allocating.
- output: all text produced, captured in macros and `{% set %}` blocks included, is at most `produced_chars`;
  the rendered prompt (streamed, see `render_bounded`) at most `output_bytes` of UTF-8.
- depth: macros call each other at most `macro_depth` deep, far below Python's recursion limit.
- time: a wall-clock deadline (`seconds`) is checked at every step and every output. It is the backstop for a
  step that is slow but bounded; it cannot interrupt a single C-level operation, which is why sizes are
  checked before the work where they can be.

A limit is reported as a `RenderLimitError` naming it; `aiconsole.prompts.render` turns every render failure
into a PromptError. The checks rely on Jinja 3.1's code generator (`_output_child_pre/_post`,
`_output_const_repr`): tests/unit/test_prompt_render.py pins their effect.
"""

from __future__ import annotations

import functools
import inspect
import re
import string
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import StrictUndefined, Template, TemplateRuntimeError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

_TEXT = (str, bytes)
_RECURSIVE = (Macro, LoopContext)


@dataclass(frozen=True)
class RenderLimits:
    """What one render may do; the defaults are far above what a real prompt needs."""

    steps: int = 50_000
    range_items: int = 10_000
    value_chars: int = 64 * 1024
    output_bytes: int = 64 * 1024
    produced_chars: int = 1024 * 1024
    macro_depth: int = 32
    nesting: int = 20
    seconds: float = 1.0


LIMITS = RenderLimits()


class RenderLimitError(TemplateRuntimeError):
    """A template went over one of the render limits (the message names it)."""


class _Budget:
    """The work one render has done so far."""

    __slots__ = ("deadline", "depth", "limits", "produced", "steps")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.steps = self.produced = self.depth = 0
        self.deadline = time.monotonic() + limits.seconds

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise RenderLimitError(f"the template runs more than {self.limits.steps:,} loop iterations and calls "
                                   "(the step limit)")
        self.clock()

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {self.limits.seconds:g} s (the time limit)")


_BUDGET: ContextVar[_Budget | None] = ContextVar("aiconsole_render_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # every render goes through render_bounded, which sets the budget
        raise RenderLimitError("templates are rendered only through aiconsole.prompts.render")
    return budget


def _size(value: Any, limit: int, depth: int = 0) -> int:
    """An upper estimate of len(str(value)); stops counting once over `limit`."""
    if isinstance(value, _TEXT):
        return len(value)
    if value is None or isinstance(value, (bool, float)):
        return 24
    if isinstance(value, int):
        return value.bit_length() // 3 + 2  # log10(2) < 1/3
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    items: Iterable[Any]
    if isinstance(value, dict):
        items = (x for pair in value.items() for x in pair)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return 64  # a loop, macro, range or generator: its repr is short
    if depth >= _budget().limits.nesting:
        raise RenderLimitError(f"values nest more than {_budget().limits.nesting} levels deep")
    total = 2
    for item in items:
        total += _size(item, limit, depth + 1) + 2
        if total > limit:
            break
    return total


def _fits(what: str, size: int) -> None:
    limit = _budget().limits.value_chars
    if size > limit:
        raise RenderLimitError(f"{what} would be {size:,} characters, over the {limit:,}-character value limit")


def _checked(value: Any, what: str = "a value") -> Any:
    _fits(what, _size(value, _budget().limits.value_chars))
    return value


def _width(what: str, width: Any) -> None:
    if isinstance(width, int):
        _fits(what, width)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])")


def _largest(args: Any) -> int:
    limit = _budget().limits.value_chars
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    return max((_size(v, limit) for v in values), default=0)


def _percent_format(fmt: str, args: Any) -> None:
    """`fmt % args` stays within the value limit (checked before formatting)."""
    specs = [m for m in _PERCENT.finditer(fmt) if m.group(3) != "%"]
    widest = 0
    for m in specs:
        if "*" in (m.group(1), m.group(2)):
            raise RenderLimitError("'*' widths in % formatting are not allowed in prompts")
        widest = max(widest, int(m.group(1) or 0), int(m.group(2) or 0))
    _fits("the % formatting", len(fmt) + len(specs) * (widest + _largest(args)))


def _brace_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """`fmt.format(...)` stays within the value limit (checked before formatting)."""
    fields = [spec for _, name, spec, _ in string.Formatter().parse(fmt) if name is not None]
    if any("{" in (spec or "") for spec in fields):
        raise RenderLimitError("nested {} fields in str.format are not allowed in prompts")
    widest = max((int(n) for spec in fields for n in re.findall(r"\d+", spec or "")), default=0)
    _fits("the str.format result", len(fmt) + len(fields) * (widest + max(_largest(args), _largest(kwargs))))


def _replaced(text: str, old: str, new: str, count: int | None) -> int:
    hits = len(text) + 1 if old == "" else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _joined(sep: str, items: list[Any]) -> int:
    limit = _budget().limits.value_chars
    return len(sep) * max(len(items) - 1, 0) + sum(_size(i, limit) for i in items)


def _string_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Pre-checks for the str/bytes methods whose result can be far larger than their inputs."""
    text, name = obj.__self__, obj.__name__
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(f"{name}({args[0]!r})", args[0])
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        _fits("expandtabs()", len(text) + text.count("\t" if isinstance(text, str) else b"\t") * int(tab))
    elif name == "replace" and len(args) >= 2 and isinstance(text, str):
        _fits("replace()", _replaced(text, str(args[0]), str(args[1]), args[2] if len(args) > 2 else None))
    elif name == "join" and args:
        items = list(args[0])
        _fits("join()", _joined(str(text) if isinstance(text, str) else "", items))
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((_size(v, len(text) + 1) for v in args[0].values()), default=1)
        _fits("translate()", len(text) * max(longest, 1))
    return args


def _filter_checks(name: str, a: dict[str, Any]) -> None:
    """Pre-checks for the filters whose result can be far larger than their inputs."""
    if name == "center":
        _width(f"center({a['width']!r})", a["width"])
    elif name == "indent":
        width = a["width"]
        per_line = width if isinstance(width, int) else len(str(width))
        _fits("indent()", len(str(a["s"])) + per_line * (str(a["s"]).count("\n") + 1))
    elif name == "wordwrap":
        text, wrap = str(a["s"]), a["wrapstring"] or "\n"
        breaks = sum(c.isspace() or c == "-" for c in text) + len(text) // max(int(a["width"]), 1) + 1
        _fits("wordwrap()", len(text) + breaks * len(wrap))
    elif name in ("batch", "slice"):
        _width(f"{name}({a['linecount' if name == 'batch' else 'slices']!r})",
               a["linecount" if name == "batch" else "slices"])
    elif name == "join":
        a["value"] = list(a["value"])
        _fits("join()", _joined(str(a["d"]), a["value"]))
    elif name == "replace":
        _fits("replace()", _replaced(str(a["s"]), str(a["old"]), str(a["new"]), a["count"]))
    elif name == "format":
        _percent_format(str(a["value"]), a["kwargs"] or a["args"])
    elif name == "urlize":
        for key in ("target", "rel"):
            if a[key] is not None and len(str(a[key])) > 256:
                raise RenderLimitError(f"urlize's {key} is limited to 256 characters")


_PRE_CHECKED = frozenset({"center", "indent", "wordwrap", "batch", "slice", "join", "replace", "format", "urlize"})


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(inspect.unwrap(func)) if name in _PRE_CHECKED else None
    # An async-variant filter whose sync function takes no context is called with an eval context first.
    lead = int(getattr(func, "jinja_async_variant", False) and not hasattr(inspect.unwrap(func), "jinja_pass_arg"))

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        _budget().step()
        for arg in (*args, *kwargs.values()):
            _checked(arg, f"the input of |{name}")
        if signature is not None:
            bound = signature.bind(*args[lead:], **kwargs)
            bound.apply_defaults()
            _filter_checks(name, bound.arguments)
            args, kwargs = (*args[:lead], *bound.args), bound.kwargs
        return _checked(func(*args, **kwargs), f"the result of |{name}")

    return run


class BoundedNamespace(Namespace):
    """`namespace()`: an attribute set by `{% set ns.x = ... %}` is size-checked like any other value."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _checked(value, f"namespace attribute {name!r}"))


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    limit = _budget().limits.range_items
    if len(numbers) > limit:
        raise RenderLimitError(f"range() is limited to {limit:,} items; {numbers} has {len(numbers):,}")
    return numbers


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with every loop counted and every output and `~` size-checked."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("iterate"), [loop.iter], [], None, None,
                                   lineno=loop.iter.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.tilde_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.emit({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.emit(environment.checked(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the checks described in the module docstring."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        # optimized=False: the optimizer would evaluate constant expressions (and filters) at compile time,
        # outside any budget.
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, optimized=False)
        self.globals["range"] = _bounded_range
        self.globals["namespace"] = BoundedNamespace
        self.globals.pop("lipsum", None)  # random filler text with a caller-chosen length has no place here
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Every item of a `{% for %}` loop is a step."""
        budget = _budget()
        for item in iterable:
            budget.step()
            yield item

    def checked(self, value: Any) -> Any:
        """`value`, refused when printing it would exceed the value limit."""
        return _checked(value, "an output")

    def emit(self, text: str) -> str:
        """Count produced text (captured or not) against the produced-text limit."""
        budget = _budget()
        budget.produced += len(text)
        if budget.produced > budget.limits.produced_chars:
            raise RenderLimitError(f"the template produces more than {budget.limits.produced_chars:,} characters "
                                   "of text (the output limit)")
        budget.clock()
        return text

    def tilde_join(self, parts: tuple[Any, ...]) -> str:
        """`a ~ b ~ ...`, refused before joining when the result would exceed the value limit."""
        limit = _budget().limits.value_chars
        _fits("the ~ concatenation", sum(_size(p, limit) for p in parts))
        return "".join(str(p) for p in parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `%` checked before the work; `+` after (its result is at most twice its inputs)."""
        _budget().step()
        limit = _budget().limits.value_chars
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                    _fits(f"'*' by {times:,}", _size(seq, limit) * max(times, 0))
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            _fits(f"{left} ** {right}", abs(left).bit_length() * right // 3)
        elif operator == "%" and isinstance(left, str):
            _percent_format(left, right)
        return _checked(super().call_binop(context, operator, left, right), f"the result of '{operator}'")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format / format_map, with the result's size checked before formatting."""
        fmt = super().wrap_str_format(value)
        if fmt is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"

        @functools.wraps(fmt)
        def run(*args: Any, **kwargs: Any) -> str:
            _brace_format(template, () if is_map else args, args[0] if is_map and args else kwargs)
            return fmt(*args, **kwargs)

        return run

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Any call from a template: a step, its arguments and result size-checked, macros depth-limited."""
        budget = _budget()
        budget.step()
        if getattr(obj, "__func__", None) is BoundedSandbox.iterate:
            return super().call(context, obj, *args, **kwargs)  # a loop's iterable: its items are counted
        for arg in (*args, *kwargs.values()):
            _checked(arg, "an argument")
        if isinstance(getattr(obj, "__self__", None), _TEXT) and hasattr(obj, "__name__"):
            args = _string_method(obj, args, kwargs)
        if not isinstance(obj, _RECURSIVE):
            return _checked(super().call(context, obj, *args, **kwargs), "a call's result")
        if isinstance(obj, LoopContext) and args:  # `loop(children)` of a recursive loop
            args = (self.iterate(args[0]), *args[1:])
        budget.depth += 1
        try:
            if budget.depth > budget.limits.macro_depth:
                raise RenderLimitError(f"macros (or a recursive loop) call themselves more than "
                                       f"{budget.limits.macro_depth} deep (the macro depth limit)")
            return super().call(context, obj, *args, **kwargs)
        finally:
            budget.depth -= 1


SANDBOX = BoundedSandbox()


def render_bounded(template: Template, values: Mapping[str, Any], limits: RenderLimits = LIMITS) -> str:
    """Render `template` (made by SANDBOX) under `limits`, streaming and stopping once over the output size."""
    token = _BUDGET.set(_Budget(limits))
    try:
        chunks: list[str] = []
        size = 0
        stream = cast(Generator[str, None, None], template.generate(**values))
        try:
            for chunk in stream:
                size += len(chunk.encode("utf-8"))
                if size > limits.output_bytes:
                    raise RenderLimitError(f"the rendered prompt is over {limits.output_bytes:,} bytes "
                                           "(the rendered size limit)")
                chunks.append(chunk)
        finally:
            stream.close()
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
