"""The Live Status page: Streamlit runs this file, the shell runs the preamble, and
aiconsole/ui/live/status_page.py draws the page."""

from aiconsole.ui.shell import run_page

run_page("live_status")
