"""aiconsole: `streamlit run app.py` (or `aiconsole up`)."""

from aiconsole.ui.shell import run

run()
