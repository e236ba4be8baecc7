"""Sandboxed prompt rendering: placeholders, Jinja syntax, missing values, the sandbox and its limits."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

import aiconsole
from aiconsole.prompts.render import PromptError, PromptSpec, prompt_values, render_prompt, to_jinja
from aiconsole.prompts.sandbox import SANDBOX, RenderLimitError, RenderLimits

DEMO_V2 = ("You tag photos for a searchable library. List up to {max_tags} tags covering objects, the scene and the "
           'photographic style, in {language}. Answer only with JSON: {"tags": [{"label": str, "confidence": '
           "number}]}.")


def test_declared_single_brace_variables_render_and_json_braces_stay() -> None:
    text = render_prompt(PromptSpec(1, DEMO_V2, ("max_tags", "language")), prompt_values(max_tags=12))
    assert text == ("You tag photos for a searchable library. List up to 12 tags covering objects, the scene and the "
                    'photographic style, in English. Answer only with JSON: {"tags": [{"label": str, "confidence": '
                    "number}]}.")


def test_jinja_syntax_and_overrides() -> None:
    spec = PromptSpec(2, "Tag {{ width }}x{{ height }} {{ content_type }} photos in {{ language|upper }}.", ())
    assert render_prompt(spec, prompt_values(width=640, height=480, content_type="image/png",
                                             overrides={"language": "German"})) == (
        "Tag 640x480 image/png photos in GERMAN.")


def test_undeclared_braces_are_left_alone() -> None:
    assert render_prompt(PromptSpec(3, "Keep {this} as it is, {max_tags} too.", ()), prompt_values()) == (
        "Keep {this} as it is, {max_tags} too.")


def test_a_variable_without_a_value_is_named() -> None:
    with pytest.raises(PromptError, match=r"Prompt version 4 uses a variable audience that has no value"):
        render_prompt(PromptSpec(4, "For {audience}.", ("audience",)), prompt_values())
    with pytest.raises(PromptError, match="cannot be rendered"):
        render_prompt(PromptSpec(5, "Hello {{ nobody }}", ()), prompt_values())


def test_the_sandbox_refuses_python_internals() -> None:
    spec = PromptSpec(6, "{{ ''.__class__.__mro__[1].__subclasses__() }}", ())
    with pytest.raises(PromptError, match="cannot be rendered"):
        render_prompt(spec, prompt_values())


def test_declared_placeholders_become_jinja_and_the_rest_stays() -> None:
    assert to_jinja("{max_tags} {other} {{ language }}", ["max_tags"]) == "{{ max_tags }} {other} {{ language }}"
    assert to_jinja("{a}{b} { a } {{a}} {a}}", ["a", "b"]) == "{{ a }}{{ b }} {{ a }} {{a}} {a}}"
    assert to_jinja("{not-a-name} {x}", ["not-a-name"]) == "{not-a-name} {x}"


def test_every_value_a_prompt_can_use_and_overrides_win() -> None:
    assert prompt_values() == {"max_tags": 15, "max_labels": 15, "language": "English", "width": None,
                               "height": None, "content_type": None}
    assert prompt_values(max_tags=4, overrides={"language": "German", "tone": "dry"})["language"] == "German"
    assert render_prompt(PromptSpec(7, "{max_labels} {tone}", ("max_labels", "tone")),
                         prompt_values(max_tags=4, overrides={"tone": "dry"})) == "4 dry"


# ---------------------------------------------------------------------------------------- limits (issue 9 item 5)

def _render(text: str, **limits: float) -> str:
    return render_prompt(PromptSpec(9, text, ("max_tags",)), prompt_values(),
                         limits=RenderLimits(**limits))  # type: ignore[arg-type]


def _fails_fast(text: str, words: str, **limits: float) -> PromptError:
    started = time.perf_counter()
    with pytest.raises(PromptError, match=words) as caught:
        _render(text, **limits)
    assert time.perf_counter() - started < 1.0
    return caught.value


@pytest.mark.timeout(20)
def test_the_issue_s_hostile_templates_fail_fast_naming_the_limit() -> None:
    err = _fails_fast("{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
                      r"line 1: range\(\) is limited to 10,000 items; range\(0, 100000\) has 100,000")
    assert err.line == 1
    _fails_fast("Tag it.\n{{ 'x' * 10**9 }}",
                r"line 2: '\*' by 1,000,000,000 would be 1,000,000,000 characters, over the 65,536-character")


@pytest.mark.timeout(20)
def test_loop_iterations_and_calls_are_counted() -> None:
    _fails_fast("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
                "more than 50,000 loop iterations and calls \\(the step limit\\)")
    _fails_fast("{% for a in range(200) %}{% if 'a'.upper() and 'b'.lower() %}{% endif %}{% endfor %}",
                "more than 500 loop iterations", steps=500)
    # range() and the loop are one step each, then one per item.
    assert _render("{% for a in range(200) %}{% endfor %}ok", steps=202) == "ok"
    _fails_fast("{% for a in range(200) %}{% endfor %}ok", "more than 201 loop", steps=201)
    # A recursive loop's `loop(...)` items count too, and its depth is bounded like a macro's.
    _fails_fast("{% for x in range(3) recursive %}{{ loop(range(10000)) }}{% endfor %}", "deep")


@pytest.mark.timeout(20)
def test_the_rendered_prompt_is_capped_while_streaming() -> None:
    assert len(_render("{{ 'x' * 65536 }}")) == 65536
    _fails_fast("{{ 'x' * 65536 }}é", r"rendered prompt is over 65,536 bytes \(the rendered size limit\)")
    _fails_fast("{% for i in range(5000) %}{{ 'y' * 60000 }}{% endfor %}", "rendered size limit")
    # Text captured in a macro or a set block never reaches the stream but is counted all the same.
    _fails_fast("{% macro m() %}{% for i in range(5000) %}{{ 'y' * 60000 }}{% endfor %}{% endmacro %}"
                "{% set x = m() %}ok", r"produces more than 1,048,576 characters of text")


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("text", "words"), [
    ("{% set s = 'x' * 60000 %}{{ s.replace('', s)|length }}", r"replace\(\) would be 3,600,120,000"),
    ("{% set s = 'x' * 60000 %}{{ s|replace('', s)|length }}", r"replace\(\) would be 3,600,120,000"),
    ("{{ '%0999999999d' % 1 }}", "the % formatting would be 1,000,000,013"),
    ("{{ '%0999999999d'|format(1) }}", "the % formatting would be"),
    ("{{ '%*d' % (10**9, 1) }}", "'\\*' widths"),
    ("{{ '{:>999999999}'.format(1) }}", "the str.format result would be"),
    ("{{ '{0}' * 30000 }}", "would be 90,000"),
    ("{{ ('{0}' * 20000).format('x' * 60000) }}", "the str.format result would be"),
    ("{{ 'x'.ljust(10**9) }}", r"ljust\(1000000000\)"),
    ("{{ 'x'|center(10**9) }}", r"center\(1000000000\)"),
    ("{{ 'a\nb'|indent(10**9) }}", r"indent\(\) would be"),
    ("{{ [1]|batch(10**9, 'x')|list|length }}", r"batch\(1000000000\)"),
    ("{{ [1, 2]|slice(10**9)|list|length }}", r"slice\(1000000000\)"),
    ("{{ 10 ** (10 ** 10) }}", "10 \\*\\* 10000000000 would be"),
    ("{{ [1] * 10**9 }}", "'\\*' by 1,000,000,000"),
    ("{% set s = 'x' * 60000 %}{{ s ~ s }}", "the ~ concatenation would be 120,000"),
    ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
     "the ~ concatenation would be 131,072"),
    ("{% set s = 'x' * 60000 %}{{ [s, s, s] }}", "an output would be 180,012"),
    ("{% set s = 'x' * 60000 %}{{ [s, s, s]|join }}", "the input of \\|join would be"),
    ("{% set s = 'x' * 30000 %}{{ s.join(s) }}", r"join\(\) would be"),
    ("{% set s = 'ab ' * 20000 %}{{ s|wordwrap(1, wrapstring='ZZ') }}", r"wordwrap\(\) would be"),
])
def test_amplifying_operations_are_refused_before_the_work(text: str, words: str) -> None:
    _fails_fast(text, words)


@pytest.mark.timeout(20)
def test_macro_recursion_is_depth_limited_even_in_a_small_worker_thread() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            _render("{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}\n{{ m(1) }}")
        except BaseException as exc:  # the test reports whatever escaped
            errors.append(exc)

    old = threading.stack_size(512 * 1024)
    try:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join(10)
    finally:
        threading.stack_size(old)
    [err] = errors
    assert isinstance(err, PromptError) and "more than 32 deep (the macro depth limit)" in err.message


@pytest.mark.timeout(20)
def test_the_wall_clock_guard_stops_a_slow_render() -> None:
    _fails_fast("{% for a in range(3) %}{{ a }}{% endfor %}", r"took longer than 0 s \(the time limit\)", seconds=0.0)
    assert _render("{% for a in range(3) %}{{ a }}{% endfor %}") == "012"


@pytest.mark.parametrize(("text", "words"), [
    ("{{ max_tags + 'x' }}", r"unsupported operand type\(s\) for \+: 'int' and 'str' \(TypeError\)"),
    ("{{ 1 // 0 }}", r"division or modulo by zero \(ZeroDivisionError\)"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "cannot be rendered"),
    ("{{ ''.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
    ("{% set l = [] %}{{ l.append(1) }}", "access to attribute 'append' of 'list' object is unsafe"),
    ("{{ lipsum(10**9) }}", "'lipsum' is undefined"),
    ("{% include 'x' %}", "cannot be rendered"),
])
def test_every_render_failure_comes_out_as_a_prompt_error(text: str, words: str) -> None:
    with pytest.raises(PromptError, match=words):
        _render(text)


def test_rendering_goes_through_render_prompt_only() -> None:
    with pytest.raises(RenderLimitError, match=r"rendered only through aiconsole\.prompts\.render"):
        SANDBOX.from_string("{% for x in [1] %}{{ x }}{% endfor %}").render()
    root = Path(aiconsole.__file__).parent
    renders = re.compile(r"\.(from_string|render|generate)\(|jinja2\.Template\(|Environment\(")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.parent.name != "ui" and "jinja" in p.read_text() and renders.search(p.read_text())
                 and p.name not in ("render.py", "sandbox.py")]
    assert offenders == []
