"""Ground truth: download it and every review decision (CSV or JSONL), import a file with a dry-run preview and
its problems by line, and the golden sets below (ui/quality/golden_sets_panel.py).

A download is built in memory when clicked, up to `MAX_DOWNLOAD_LINES` lines; larger exports are the CLI's
(`aiconsole quality export-truth`, streamed to a file, any size).
"""

from __future__ import annotations

import functools
import hashlib

import pandas as pd
import streamlit as st

from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import ground_truth as gt
from aiconsole.quality import ground_truth_import as gti
from aiconsole.ui.quality import golden_sets_panel
from aiconsole.ui.widgets import Markdown, code, flash, md, say, why_not

MAX_DOWNLOAD_LINES = 100_000
PREVIEW_KEY = "truth_preview"
SHOWN_ROWS = 50


def render(actor: Actor) -> None:
    """Export, import, golden sets."""
    st.subheader("Export")
    _export(actor)
    st.subheader("Import ground truth")
    _import(actor)
    st.subheader("Golden sets")
    golden_sets_panel.render(actor)


def _why_no_download(actor: Actor, lines: int | None) -> Markdown | None:
    if lines is None:
        return why_not(actor, "quality.export_decisions")
    if lines > MAX_DOWNLOAD_LINES:
        return md("{} over the console's {}: use the command line.", fmt.plural(lines, "line"),
                  fmt.count(MAX_DOWNLOAD_LINES))
    return None


def _download(actor: Actor, *, label: str, decisions: bool, fmt_name: str, lines: int | None) -> None:
    """A download built when clicked (in memory, up to MAX_DOWNLOAD_LINES); `lines` None: not allowed."""
    disabled = lines is None or lines > MAX_DOWNLOAD_LINES
    build = functools.partial(gt.export_bytes, actor, fmt=fmt_name, decisions=decisions,
                              max_lines=MAX_DOWNLOAD_LINES)
    st.download_button(label, data=build, file_name=f"{'decisions' if decisions else 'ground-truth'}.{fmt_name}",
                       mime=gt.MIME_TYPES[fmt_name], disabled=disabled, help=_why_no_download(actor, lines),
                       key=f"truth_download_{int(decisions)}", icon=":material/download:", on_click="ignore")


def _export(actor: Actor) -> None:
    fmt_name = st.radio("Format", list(gt.FORMATS), horizontal=True, key="truth_export_fmt",
                        format_func=lambda f: f.upper())
    photos = gt.export_size(actor)
    decisions = gt.export_size(actor, decisions=True) if actor.allowed("quality.export_decisions") else None
    left, right = st.columns(2)
    with left:
        _download(actor, label=f"Ground truth ({fmt.plural(photos, 'photo')})", decisions=False,
                  fmt_name=fmt_name, lines=photos)
    with right:
        _download(actor, label="Decisions" if decisions is None else f"Decisions ({fmt.plural(decisions, 'decision')})",
                  decisions=True, fmt_name=fmt_name, lines=decisions)
    say("caption", "One photo a line: id, filename, sha256, labels, who set them and when. Decisions: every "
        "review decision as decided. Exports over {} lines: {}.", fmt.count(MAX_DOWNLOAD_LINES),
        code("aiconsole quality export-truth --format csv --out FILE"))


def _import(actor: Actor) -> None:
    if not actor.allowed("quality.ground_truth"):
        say("caption", "Importing ground truth is for admins: {}", why_not(actor, "quality.ground_truth"))
        return
    upload = st.file_uploader("A CSV or JSONL file of photo -> labels", type=["csv", "jsonl", "ndjson", "txt"],
                              key="truth_upload")
    say("caption", "Each line names a photo by {} or {} and gives {} (a list, or one text separated by {}). The "
        "labels replace the photo's ground truth; an empty list clears it. A file with any problem imports "
        "nothing.", code("photo_id"), code("sha256"), code("labels"), code(";"))
    if upload is None:
        st.session_state.pop(PREVIEW_KEY, None)
        return
    _checked_file(actor, upload.name, upload.getvalue())


def _checked_file(actor: Actor, name: str, data: bytes) -> None:
    """An uploaded file: Check (dry run), then its preview and Import, or its problems by line."""
    digest = hashlib.sha256(data).hexdigest()
    if st.button("Check (dry run)", key="truth_check", icon=":material/fact_check:"):
        st.session_state[PREVIEW_KEY] = (digest, _run(actor, data, name, dry_run=True))
    stored = st.session_state.get(PREVIEW_KEY)
    if stored is None or stored[0] != digest:
        return
    outcome = stored[1]
    if isinstance(outcome, gti.TruthImport):
        _preview(outcome)
        if outcome.changed and st.button("Import", key="truth_import", type="primary", icon=":material/upload:"):
            done = _run(actor, data, name, dry_run=False)
            if isinstance(done, gti.TruthImport):
                st.session_state.pop(PREVIEW_KEY, None)
                flash("success", "{}", done.message)
                st.rerun()
            st.session_state[PREVIEW_KEY] = (digest, done)
            st.rerun()
    elif isinstance(outcome, gti.TruthImportRefused):
        _problems(outcome)
    else:
        say("error", "{}", outcome)


def _run(actor: Actor, data: bytes, name: str,
         *, dry_run: bool) -> gti.TruthImport | gti.TruthImportRefused | AiconsoleError:
    try:
        return gti.import_truth(actor, data=data, filename=name, dry_run=dry_run)
    except AiconsoleError as exc:  # TruthImportRefused too: its lines are shown as a table
        return exc


def _preview(report: gti.TruthImport) -> None:
    say("info" if report.changed else "success", "{}", report.message)
    if not report.changes:
        return
    st.dataframe(pd.DataFrame([{"line": fmt.count(c.line), "photo": f"#{c.photo_id}", "filename": c.filename,
                                "now": "; ".join(c.before) or "(none)", "after import": "; ".join(c.after) or "(none)"}
                               for c in report.changes[:SHOWN_ROWS]]), hide_index=True, width="stretch")
    if report.changed > SHOWN_ROWS:
        say("caption", "The first {} of {}.", fmt.count(SHOWN_ROWS), fmt.plural(report.changed, "change"))


def _problems(refused: gti.TruthImportRefused) -> None:
    say("error", "{} in the file; nothing was imported.", fmt.plural(len(refused.errors) + refused.more, "problem"))
    st.dataframe(pd.DataFrame([{"line": "file" if e.line is None else fmt.count(e.line), "problem": e.message}
                               for e in refused.errors]), hide_index=True, width="stretch")
    if refused.more:
        say("caption", "{} not listed: fix these and check again.", fmt.plural(refused.more, "more problem"))
