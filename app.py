"""aiconsole: `streamlit run app.py` (or `aiconsole up`).

Streamlit runs this file as the script of every page view (`__name__ == "__main__"`). `streamlit run` also
finds `app` below and serves it: Streamlit's own server plus the route that sets the login cookie
(aiconsole/ui/server.py), so a login survives reloads and new tabs. The server imports this file as
a module, where only the route is imported: the pages' modules load in the script runs.
"""

import streamlit as st

if __name__ == "__main__":
    from aiconsole.ui.shell import run

    run()
else:
    from aiconsole.ui.server import lifespan, routes

    app = st.App(__file__, routes=routes(), lifespan=lifespan)
