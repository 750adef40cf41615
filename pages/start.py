"""Start here: CBAM in a few sentences, its two equations, and a map of the app."""

import streamlit as st

from cbam import i18n, plots
from cbam.i18n import t
from ui import page, sidebar

state = page.current()

st.title("CBAM Lab")
st.markdown(t("start.intro"))
left, right = st.columns(2)
with left:
    st.markdown(t("start.channel"))
    st.latex(r"\begin{aligned} M_c(F) &= \sigma\big(\mathrm{MLP}(\mathrm{AvgPool}(F)) + \mathrm{MLP}(\mathrm{MaxPool}(F))\big)"
             r" \\ &= \sigma\big(W_1\,\mathrm{ReLU}(W_0 F^c_{avg}) + W_1\,\mathrm{ReLU}(W_0 F^c_{max})\big) \end{aligned}")
with right:
    st.markdown(t("start.spatial"))
    st.latex(r"\begin{aligned} M_s(F) &= \sigma\big(f^{k\times k}([\mathrm{AvgPool}(F);\ \mathrm{MaxPool}(F)])\big)"
             r" \\ &= \sigma\big(f^{k\times k}([F^s_{avg};\ F^s_{max}])\big) \end{aligned}")
st.latex(r"F' = M_c(F) \otimes F, \qquad F'' = M_s(F') \otimes F'")
st.caption(t("start.otimes"))



@st.cache_resource(show_spinner=False)
def pipeline_png(lang: str) -> bytes:
    """The diagram never changes: drawn once per server process and language."""
    with i18n.use(lang):
        return plots.figure_to_png(plots.pipeline_diagram())


st.image(pipeline_png(i18n.language()), width="stretch", caption=t("start.pipeline"))

st.subheader(t("start.what"))
st.markdown(t("start.pages"))
st.markdown(t("start.sidebar", image=sidebar.image_label(), model=sidebar.card_title(state.card)))

st.subheader(t("start.versions"))
st.markdown(t("start.table"))
st.caption(t("start.note"))
