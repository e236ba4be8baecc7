"""Prompt template checks: known answers for variables, lines of syntax errors and undefined names, limits, and
the render check that refuses templates which can never render."""

from __future__ import annotations

import re

import pytest

from aiconsole.demo.timeline import PROMPTS
from aiconsole.platform.errors import ValidationFailed
from aiconsole.prompts.render import PromptError, PromptSpec, prompt_values, render_prompt
from aiconsole.prompts.templates import (
    MAX_PROMPT_BYTES,
    TemplateIssue,
    check_template,
    preview,
    validate_template,
)


def test_demo_prompts_are_valid_and_their_variables_found() -> None:
    found = [validate_template(v[3]) for spec in PROMPTS.values() for v in spec["versions"]]
    assert found == [("max_tags",), ("language", "max_tags"), ("language", "max_tags"), ("language", "max_tags"),
                     (), ("language", "max_tags")]


def test_variables_in_both_forms_ordered_by_first_line() -> None:
    text = "Size {width}x{{ height }}\n{% if language %}In {{ language|upper }}{% endif %}\n{max_labels} labels"
    assert check_template(text).variables == ("height", "width", "language", "max_labels")
    assert check_template(text).ok
    assert check_template("Loop {% for t in ['a'] %}{{ t }}{% endfor %}").variables == ()


def test_undefined_variables_are_refused_with_their_lines() -> None:
    result = check_template("Tag the photo.\nFor {{ audience }}\n\n{{ tone }} and {{ audience }}")
    assert [(e.line, e.message.split(" (")[0]) for e in result.errors] == [
        (2, "'audience' is not a known variable"), (4, "'tone' is not a known variable")]
    with pytest.raises(ValidationFailed, match=r"Line 2: 'audience' is not a known variable"):
        validate_template("Tag the photo.\nFor {{ audience }}")
    # A declared extra variable (an experiment variant gives it a value) is accepted, in both forms.
    assert validate_template("For {{ audience }} in {tone}", extra_variables=["audience", "tone"]) == (
        "audience", "tone")


def test_unknown_single_brace_words_are_only_warned_about() -> None:
    result = check_template('JSON: {"tags": []}\nKeep {this} literal')
    assert result.ok and result.variables == ()
    assert [w.line for w in result.warnings] == [2] and "'{this}'" in result.warnings[0].message


@pytest.mark.parametrize(("text", "line", "words"), [
    ("Intro\n{% if max_tags %}\nMany tags\n", 2, "'{% if %}' is never closed: add '{% endif %}'"),
    ("a\nb\n{% for x in [1] %}{% if x %}{% endif %}\nc", 3, "'{% for %}' is never closed"),
    ("Count {{ max_tags \nmore", 2, "expected token 'end of print statement'"),
    ("one\n{% endif %}", 2, "Encountered unknown tag 'endif'"),
    ("{{ 1 + }}", 1, "unexpected 'end of print statement'"),
])
def test_syntax_errors_name_the_line_and_reason(text: str, line: int, words: str) -> None:
    [issue] = check_template(text).errors
    assert issue.line == line and words in issue.message
    with pytest.raises(ValidationFailed, match=f"Line {line}: "):
        validate_template(text)


def test_empty_and_oversized_prompts_are_refused() -> None:
    for blank in ("", "  \n\t"):
        assert check_template(blank).errors == (
            TemplateIssue(None, "The prompt is empty: write the instructions for the model."),)
    with pytest.raises(ValidationFailed, match=r"1,048,576 bytes; the limit is 65,536 bytes \(64 KB\)"):
        validate_template("x" * 1024 * 1024)
    assert validate_template("x" * MAX_PROMPT_BYTES) == ()
    # The limit counts UTF-8 bytes: 32,769 two-byte characters are over it.
    assert not check_template("é" * (MAX_PROMPT_BYTES // 2 + 1)).ok


def test_extra_variable_names_are_validated() -> None:
    with pytest.raises(ValidationFailed, match="'a-b' is not a valid variable name"):
        validate_template("x", extra_variables=["a-b"])


def test_preview_renders_as_the_worker_does() -> None:
    text = "Up to {max_tags} tags in {{ language }} for a {width}x{height} {{ content_type }}; for {aud}."
    shown = preview(text, extra_variables=["aud"], values={"aud": "kids"})
    assert shown == "Up to 15 tags in English for a 1024x768 image/jpeg; for kids."
    spec = PromptSpec(1, text, ("aud", *validate_template(text, extra_variables=["aud"])))
    assert render_prompt(spec, prompt_values(max_tags=15, width=1024, height=768, content_type="image/jpeg",
                                             overrides={"aud": "kids"})) == shown


@pytest.mark.parametrize(("text", "reason"), [
    ('{{ max_tags + "x" }}', "unsupported operand"),
    ("{{ 1 / 0 }}", "division by zero"),
    ("{{ max_tags.__class__ }}", "unsafe"),
])
def test_preview_reports_runtime_failures_and_sandbox_refusals(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=f"The preview failed: .*{reason}"):
        preview(text)


# ------------------------------------------------------------- templates that can never render (issue 9 item 6)

HOSTILE = [
    ("Tag it.\n{{ ''.__class__ }}", 2, "access to attribute '__class__' of 'str' object is unsafe"),
    ("Tag it.\n\n{{ max_tags + 'x' }}", 3, r"unsupported operand type\(s\) for \+: 'int' and 'str'"),
    ("Tag.\n{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}", 2,
     r"range\(\) is limited to 10,000 items"),
    ("{% macro m(n) %}\n{{ m(n + 1) }}\n{% endmacro %}{{ m(1) }}", 2, "more than 32 deep"),
    ("{{ 'x' * 10**9 }}", 1, "over the 65,536-character value limit"),
    ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}", 1, "the step limit"),
    ("{{ language.upper.__self__ }}", 1, "unsafe"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("text", "line", "words"), HOSTILE)
def test_templates_that_cannot_render_are_refused_with_their_line(text: str, line: int, words: str) -> None:
    [issue] = check_template(text).errors
    assert issue.line == line and "rendered with sample values it fails: " in issue.message
    assert re.search(words, issue.message), issue.message
    with pytest.raises(ValidationFailed, match=f"The prompt was not saved: Line {line}: rendered with sample values"):
        validate_template(text)


def test_the_render_check_uses_the_declared_extras_sample_values() -> None:
    # An extra's sample value is '<name>': comparing or printing it renders, so the template may be saved.
    assert validate_template("{% if tone == 'dry' %}Be dry.{% endif %} For {{ audience|upper }}.",
                             extra_variables=["tone", "audience"]) == ("audience", "tone")
    assert check_template("{{ max_tags * 2 }} tags, {{ width // 2 }} px").ok


@pytest.mark.timeout(30)
def test_a_template_nested_too_deeply_to_parse_is_an_issue_not_a_crash() -> None:
    [issue] = check_template("{{ " + "(" * 30_000 + "1" + ")" * 30_000 + " }}").errors
    assert "nests brackets or tags too deeply" in issue.message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", [h[0] for h in HOSTILE] + ["{{ " + "(" * 30_000 + "1" + ")" * 30_000 + " }}",
                                                           "Hi {{ nobody }}", "{% if x %}", ""])
def test_the_preview_raises_only_prompt_errors(text: str) -> None:
    with pytest.raises(PromptError) as caught:
        preview(text)
    assert caught.value.message.startswith("The preview failed: ")
    with pytest.raises(PromptError, match="'a-b' is not a valid variable name"):
        preview("x", extra_variables=["a-b"])
