"""CBAM Lab: the entry point. Navigation, the shared sidebar, then the chosen page.

Run it with ``streamlit run app.py``. Pages live in ``pages/`` and only draw; the math is in
``cbam/`` and the Streamlit plumbing in ``ui/`` (one job a module).

A note on ``pages/``: until ``st.navigation`` has run once in a server process, Streamlit treats a
folder named ``pages/`` beside the entry point as an old-style multipage app. When a fresh server's
first request is a page's own URL (a lesson link such as ``/spatial?k=3``), Streamlit runs that page
file without this one. ``ui.page.current()`` notices, switches the process out of that mode and
reruns, which then comes through here. The image and every setting live in one session-state
object (ui/state.py), so no run of either kind can lose them.
"""

import streamlit as st

from cbam.i18n import t
from ui import sidebar
from ui.state import lab

st.set_page_config(page_title="CBAM Lab", page_icon=":material/visibility:", layout="wide")

sidebar.apply_language()  # the session's language (or a lesson link's lang=zh) for this whole run
PAGES = [
    st.Page("pages/start.py", title=t("app.page.start"), icon=":material/school:", default=True),
    st.Page("pages/steps.py", title=t("app.page.steps"), icon=":material/directions_walk:"),
    st.Page("pages/channel.py", title=t("app.page.channel"), icon=":material/bar_chart:"),
    st.Page("pages/spatial.py", title=t("app.page.spatial"), icon=":material/grid_on:"),
    st.Page("pages/full.py", title=t("app.page.full"), icon=":material/hub:"),
    st.Page("pages/layers.py", title=t("app.page.layers"), icon=":material/layers:"),
    st.Page("pages/gradcam.py", title=t("app.page.gradcam"), icon=":material/local_fire_department:"),
    st.Page("pages/shapes.py", title=t("app.page.shapes"), icon=":material/category:"),
    st.Page("pages/training.py", title=t("app.page.training"), icon=":material/model_training:"),
    st.Page("pages/ablations.py", title=t("app.page.ablations"), icon=":material/science:"),
]

page = st.navigation(PAGES)
lab().fresh = sidebar.render()
page.run()
