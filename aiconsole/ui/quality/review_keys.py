"""The review screen's keyboard: which key presses which button (one table), its legend, and the binding.

Keys are bound with streamlit-shortcuts (`add_shortcuts`), which clicks the button whose widget key it is
given. Its one document listener acts on every key press in the page, typing included (an 'a' typed into the
rename box would approve every tag), and on every page once bound; and it is made and added inside the
component's frame, so it goes dead when a rerun replaces that frame (when anything above it changes, e.g. a
flash message). So a guard, made and added once in the page's own realm, takes that listener's place on the
document and calls it (a direct call still works): presses in a text field, a select or an editor, repeats of
a held key, and presses on pages without the review screen's marker (`MARKER`) go by untouched; everything else
goes to the package's listener as before. Escape in a field leaves it, so the keys work again without reaching
for the mouse.

Each key is bound to one button key for the whole session (the package stops at the first binding of a key,
even when its button is not on the page), so the screen keeps one button per key: `NEXT` starts, submits and
checks again, whatever the state.
"""

from __future__ import annotations

import json

import streamlit as st
from streamlit_shortcuts import add_shortcuts

MARKER = "rv_keys_on"  # the container holding the legend: the guard lets keys through only where it is
NEXT, APPROVE_ALL, SKIP, REJECT, UNDO, PREVIOUS = "rv_next", "rv_approve_all", "rv_skip", "rv_reject", "rv_undo", \
    "rv_previous"
RENAME, ADD = "rv_rename", "rv_add"  # buttons that put the cursor in the selected tag's rename box | the add box
MAX_NUMBERED = 9


def toggle_key(number: int) -> str:
    """The button of tag `number` (1-based)."""
    return f"rv_toggle_{number}"


# button key -> the keys that press it
BINDINGS: dict[str, list[str]] = {
    APPROVE_ALL: ["a"],
    NEXT: ["enter", "n"],
    SKIP: ["s"],
    REJECT: ["r"],
    UNDO: ["z"],
    PREVIOUS: ["p"],
    RENAME: ["e"],
    ADD: ["t"],
    **{toggle_key(n): [str(n)] for n in range(1, MAX_NUMBERED + 1)},
}

# Runs in the page's own realm (through its Function): a listener that a frame's script makes or adds is dropped
# by the browser once a rerun replaces that frame; this one, and its registration, belong to the page.
_GUARD_JS = """(function () {
  const doc = window.document;
  if (!window.__aiconsoleShortcutsGuard) {
    window.__aiconsoleShortcutsGuard = function (e) {
      const inner = window.__aiconsoleShortcutsInner, t = e.target;
      if (!inner || !doc.querySelector('.st-key-__MARKER__')) return;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
        if (e.key === 'Escape') t.blur();  // Esc leaves a box: the next key is a shortcut again
        return;
      }
      if (!e.repeat) inner(e);
    };
    doc.addEventListener('keydown', window.__aiconsoleShortcutsGuard);
  }
  function adopt() {
    const listener = window.__streamlitShortcutsListener;
    if (!listener) return false;
    if (listener !== window.__aiconsoleShortcutsGuard) {
      window.__aiconsoleShortcutsInner = listener;  // still callable directly after its frame is gone
      doc.removeEventListener('keydown', listener);
      window.__streamlitShortcutsListener = window.__aiconsoleShortcutsGuard;  // what clear_shortcuts takes off
    }
    return true;
  }
  if (!adopt()) {
    let tries = 0;
    const timer = setInterval(function () { if (adopt() || ++tries > 400) clearInterval(timer); }, 25);
  }
})();""".replace("__MARKER__", MARKER)
_GUARD = f"<script>new window.parent.Function({json.dumps(_GUARD_JS)})();</script>"


def bind() -> None:
    """Bind every key of the table, then guard the listener (see the module). Called once per run, last, so
    the zero-height frames it adds sit below the screen."""
    add_shortcuts(**BINDINGS)
    st.iframe(_GUARD, width=1, height=1, tab_index=-1)


def focus(widget_key: str, request: int) -> None:
    """Put the cursor in the text box of widget `widget_key` once it is drawn (request `request`: a new number
    makes a new frame, so the script runs again for the same box)."""
    script = ("<script>/* request __REQUEST__ */(function () {"
              "const doc = window.parent.document; let tries = 0;"
              "const timer = setInterval(function () {"
              "const box = doc.querySelector('.st-key-__KEY__ input');"
              "if (box) { box.focus(); box.click(); clearInterval(timer); }"
              "else if (++tries > 200) clearInterval(timer); }, 25); })();</script>")
    st.iframe(script.replace("__KEY__", widget_key).replace("__REQUEST__", str(request)), width=1, height=1,
              tab_index=-1)


def release(widget_key: str, request: int) -> None:
    """Take the cursor out of widget `widget_key`'s box if it is still there (request `request`, as in focus)."""
    script = ("<script>/* request __REQUEST__ */(function () {"
              "const doc = window.parent.document, box = doc.activeElement;"
              "if (box && box.closest && box.closest('.st-key-__KEY__')) box.blur(); })();</script>")
    st.iframe(script.replace("__KEY__", widget_key).replace("__REQUEST__", str(request)), width=1, height=1,
              tab_index=-1)


def legend() -> None:
    """The keys, in a container that marks the page as the review screen for the guard."""
    with st.container(key=MARKER):
        st.caption("`a` approve the rest · `Enter` or `n` submit and next · `s` skip · `1`–`9` tag between "
                   "approve and reject (and select it) · `r` reject the selected tag (again: the next reason) · "
                   "`e` rename the selected tag · `t` add a tag (type, then Enter) · `z` undo · `p` previous · "
                   "`Esc` leaves a box")
