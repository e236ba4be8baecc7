"""The Testing Lab page: Streamlit runs this file, the shell runs the preamble, and
aiconsole/ui/lab/lab_page.py draws the page."""

from aiconsole.ui.shell import run_page

run_page("testing_lab")
