"""Sandboxed prompt rendering: placeholders, Jinja syntax, missing values and the sandbox."""

from __future__ import annotations

import pytest

from aiconsole.prompts.render import PromptError, PromptSpec, prompt_values, render_prompt, to_jinja

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
    with pytest.raises(PromptError, match=r"Prompt version 4 uses variable\(s\) audience that have no value"):
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
