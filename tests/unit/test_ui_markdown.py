"""User text never reaches Streamlit's markdown unescaped (issue 9 item 11).

`inert` itself: every markdown, HTML, math, directive and shortcode construct comes out as its literal text.
The source scan: every call under aiconsole/ui/ that Streamlit renders as markdown (st.error, st.success,
st.warning, st.info, st.toast, st.markdown, st.caption, on st or on a column/container, and every `help=`
tooltip) gets a literal, or text built by the widgets helpers (inert, md, code, md_join); the templates of
say/flash/md are literals. So a new `st.error(f"... {user_text}")` or `st.caption(message)` fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from aiconsole.ui.widgets import Markdown, code, inert, md, md_join, shown

UI = Path(__file__).resolve().parents[2] / "aiconsole" / "ui"
SINKS = {"error", "success", "warning", "info", "toast", "markdown", "caption"}
SAFE_CALLS = {"inert", "md", "code", "md_join", "why_not"}  # widgets.py's, checked there
TEMPLATE_ARG = {"say": 1, "flash": 1, "md": 0}  # which positional argument is the template
ATTACKS = [
    "![t](http://127.0.0.1:9/track.png)",
    "[a](javascript:alert(1))",
    "<img src=http://127.0.0.1:9/x.png>",
    "back\\slash \\*not bold\\*",
    "$x^2$ and $$\\int$$",
    ":material/home: :material_home: :streamlit: :smile:",
    ":red[red] :blue-background[x] :small[y]",
    "**bold** _it_ `code` ~~gone~~ # heading\n- item\n1. one\n> quote\n| a | b |",
    "http://127.0.0.1:9/link www.example.com &#x27; &amp; admin@demo.aiconsole.dev",
]


@pytest.mark.parametrize("text", ATTACKS)
def test_inert_text_reads_as_itself_with_no_construct_left(text: str) -> None:
    out = inert(text)
    assert shown(out) == text
    # Every ASCII punctuation character is escaped: none can open a construct.
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", out)
    assert not re.search(r"[!-/:-@\[-`{-~]", unescaped), unescaped
    # Shortcodes and bare URLs that Streamlit matches on the unescaped text are broken by a word joiner.
    resolved = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", out)
    assert not re.search(r":[\w+-]+:", resolved)
    assert not re.search(r"https?://|www\.", resolved)
    assert not re.search(r"[\w.+-]@[\w-]", resolved)  # no mailto: autolink


def test_markdown_helpers_fill_a_trusted_template_with_inert_values() -> None:
    assert md("**{}** is now {}.", "a*b@x.io", "admin") == "**a\\*b\\@\u2060x\\.io** is now admin."
    assert inert(md("{}", "_x_")) == md("{}", "_x_")  # already safe: passes unchanged, never escaped twice
    assert code("rules.update") == "`rules.update`" and code("a`b") == "``a`b``" and code("`x") == "`` `x ``"
    assert md_join([code("a"), "b_c"]) == "`a`, b\\_c"
    assert isinstance(md("x"), Markdown) and md("{{ {} }}", 1) == "{ 1 }"


def _safe(node: ast.expr, makers: set[str]) -> bool:
    """A literal, or text built by the helpers (or by this module's functions that return Markdown)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) or node.value is None
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in SAFE_CALLS | makers
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) or (v.conversion == -1 and v.format_spec is None
                                                    and isinstance(v.value, ast.Call) and _safe(v.value, makers))
                   for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _safe(node.left, makers) and _safe(node.right, makers)
    if isinstance(node, ast.IfExp | ast.BoolOp):
        return all(_safe(v, makers) for v in ((node.body, node.orelse) if isinstance(node, ast.IfExp)
                                              else node.values))
    return False


def _markdown_makers(tree: ast.Module) -> set[str]:
    """Functions annotated `-> Markdown` (or `Markdown | None`): their results count as safe text."""
    return {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.returns is not None
            and ast.unparse(f.returns) in ("Markdown", "Markdown | None")}


def _name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def unsafe_calls(source: str, filename: str) -> list[str]:
    """Where `source` hands Streamlit markdown that is not a literal or built by the helpers.

    widgets.py implements the helpers: its forwarding of a template or a help text its caller was checked
    for is not a finding there.
    """
    tree = ast.parse(source)
    makers, helpers = _markdown_makers(tree), filename.endswith("widgets.py")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in makers:
            found += [f"{filename}:{r.lineno} {node.name} returns {ast.unparse(r.value)[:60]}"
                      for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None
                      and not _safe(r.value, makers) and not helpers]
        if not isinstance(node, ast.Call):
            continue
        name, where = _name(node.func), f"{filename}:{node.lineno}"
        if isinstance(node.func, ast.Attribute) and name in SINKS:
            body = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "body"), None)
            if body is not None and not _safe(body, makers):
                found.append(f"{where} {name}({ast.unparse(body)[:60]})")
        if name in TEMPLATE_ARG and len(node.args) > TEMPLATE_ARG[name] and not helpers:
            template = node.args[TEMPLATE_ARG[name]]
            if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
                found.append(f"{where} {name} template {ast.unparse(template)[:60]} is not a literal")
        if name == "Markdown" and not helpers and not (
                len(node.args) == 1 and isinstance(node.args[0], ast.Constant)):
            found.append(f"{where} Markdown() of a non-literal")
        for keyword in node.keywords:
            if keyword.arg == "help" and not helpers and not _safe(keyword.value, makers):
                found.append(f"{where} help={ast.unparse(keyword.value)[:60]}")
    return found


def test_the_scan_finds_unescaped_text() -> None:
    bad = '''
st.error(str(exc))
st.success(f"Added {user.email}")
col.caption(message)
st.warning("Saved " + name)
say("info", f"{x}")
flash("success", report.message)
st.button("Go", help=row.note)
x = Markdown(user_text)
def why(name: str) -> Markdown:
    return f"{name}"
'''
    good = '''
st.error("Fixed text.")
st.caption(f"**{inert(name)}** · {md('{}', role)}")
st.info("a" + ("b" if c else "c"))
say("error", "{}", exc)
flash("success", "{} is now {}.", email, role)
st.button("Go", help=md("Total {}", ms))
def why_not(p: str) -> Markdown | None:
    return None if ok(p) else md("Your role ({}) cannot do this.", role)
st.button("Go", help=why_not("x") or "Go on.")
'''
    assert len(unsafe_calls(bad, "bad.py")) == 9, unsafe_calls(bad, "bad.py")
    assert unsafe_calls(good, "good.py") == []


def test_every_ui_module_renders_user_text_inert() -> None:
    found = [hit for path in sorted(UI.rglob("*.py"))
             for hit in unsafe_calls(path.read_text(), str(path.relative_to(UI)))]
    assert found == [], "\n".join(found)
