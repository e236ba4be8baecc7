"""What counts as an internal leaking into text a person reads: shared by the AppTest scan of every page
(tests/app/test_text_hygiene.py) and the Chromium walk through every page and role (tests/browser)."""

from __future__ import annotations

import re

_PLURAL_NOUNS = ("days|hours|minutes|seconds|photos|workers|results|lines|entries|versions|attempts|calls|"
                 "errors|tags|labels|providers|users|failures|requests|items|rows|units|tokens")
PATTERNS: dict[str, re.Pattern[str]] = {
    "None": re.compile(r"\bNone\b"),
    "nan": re.compile(r"\b(?:nan|NaN|NaT|<NA>)\b"),
    "E-notation": re.compile(r"\d[eE][+-]\d"),
    "HTML entity": re.compile(r"&(?:#x?[0-9a-fA-F]+|[a-zA-Z]{2,8});"),
    "backslash escape": re.compile(r"\\[!-/:-@\[-`{-~]"),
    "(s) plural": re.compile(r"\w\(s\)"),
    "1 with a plural noun": re.compile(rf"(?<![\d.,])\b1 (?:{_PLURAL_NOUNS})\b"),
    "microseconds": re.compile(r"\d\d:\d\d[.,]\d{3,}"),
    "raw UTC offset": re.compile(r"(?<=\d)(?:[+-]\d\d:\d\d|Z)\b"),
    "ISO timestamp": re.compile(r"\d{4}-\d\d-\d\dT\d\d:"),
    # Emoji the console's fonts lack draw as empty boxes in Debian's Chromium (no colour-emoji font): use
    # :material/...: icons. Symbols such as ● · — ≤ ÷ → are in the text fonts and stay.
    "emoji glyph": re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]"),
}
# A bare number of 4+ digits, as a person reads it: not part of an identifier or a decimal fraction, not an
# id (#1234), a port or a clock (:8501), a version (v1234) or a path segment (/1234).
_BARE_NUMBER = re.compile(r"(?<![\w.,#:/])\d{4,}(?![\w,])")
_DATE = re.compile(r"\b\d{4}-\d\d(?:-\d\d)?\b")
_YEAR = range(1900, 2100)  # a lone year reads fine; a count of 2024 would slip through, a fair price


def leaks(text: str) -> list[str]:
    """The names of the leak patterns in `text` (as a person reads it)."""
    found = [name for name, pattern in PATTERNS.items() if pattern.search(text)]
    undated = _DATE.sub(" ", text)
    if any(int(m.group()) not in _YEAR for m in _BARE_NUMBER.finditer(undated)):
        found.append("no thousands separator")
    return found
