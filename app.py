"""CBAM Lab: the entry point. Navigation, the shared sidebar, then the chosen page.

Run it with ``streamlit run app.py``. Pages live in ``pages/`` and only draw; the math is in
``cbam/`` and the shared Streamlit plumbing in ``ui/common.py``.

A note on ``pages/``: until ``st.navigation`` has run once in a server process, Streamlit treats a
folder named ``pages/`` beside the entry point as an old-style multipage app, and the first page
switch of a fresh server can run a page without this file. That is why the image and every
setting are kept in plain session-state keys (see ui/common.py), and why each page starts with
``common.current()``, which draws the sidebar itself when this file did not run.
"""

import streamlit as st

from ui import common

st.set_page_config(page_title="CBAM Lab", page_icon=":material/visibility:", layout="wide")

PAGES = [
    st.Page("pages/start.py", title="Start here", icon=":material/school:", default=True),
    st.Page("pages/channel.py", title="Channel attention", icon=":material/bar_chart:"),
    st.Page("pages/spatial.py", title="Spatial attention", icon=":material/grid_on:"),
    st.Page("pages/full.py", title="Full CBAM", icon=":material/hub:"),
    st.Page("pages/layers.py", title="Layer by layer", icon=":material/layers:"),
]

page = st.navigation(PAGES)
st.session_state["lab.fresh"] = common.render_sidebar()
page.run()
