"""aiconsole: `streamlit run app.py` (or `aiconsole up`)."""

from aiconsole.ui import shell

shell.run()
