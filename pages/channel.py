"""Channel attention, step by step: F → descriptors → shared MLP → sum → σ → Mc → F'."""

import streamlit as st

from cbam import explore
from cbam.i18n import t
from cbam.views import channel as views
from ui import page, show
from ui.state import lab, mirrored

state, timed, choice = page.block_page("pch.title")
tr, block = timed.trace, choice.block
C, H, W = tr.x.shape[1:]
hidden = block.channel_attention.hidden_channels
m1, m2, m3, m4 = st.columns(4)
m1.metric(t("pch.channels"), C)
m2.metric(t("pch.ratio"), state.ratio)
m3.metric(t("pch.hidden"), hidden, help="max(1, C // r)")
m4.metric(t("pch.params"), f"{sum(p.numel() for p in block.channel_attention.parameters()):,}")
page.show_timings(timed)
most, least = explore.ranked_channels(tr.channel_weights[0], 8)

st.header(t("pch.h1"))
st.markdown(t("pch.t1", layer=state.layer, C=C, H=H, W=W))
show.chart(views.feature_grid, tr, key="most_and_least")

st.header(t("pch.h2"))
st.markdown(t("pch.t2"))
show.chart(views.descriptors, tr, key="descriptors")

st.header(t("pch.h3"))
st.markdown(t("pch.t3", C=C, hidden=hidden))
left, right = show.columns("mlp", [1, 2])
with left:
    show.chart(views.mlp_hidden, tr, key="mlp_hidden", download=False)
with right:
    show.chart(views.mlp_outputs, tr, key="mlp")
with show.slot("silent"):
    if explore.silent_mlp(tr):
        st.info(t("pch.silent", hidden=hidden))

st.header(t("pch.h4"))
st.toggle(t("pch.sort"), **mirrored("sort"))


def picked() -> None:
    """A click on a bar of Mc: that channel becomes the one below, and joins F vs F'."""
    points = show.selection("channel_weights", "channel")
    if points:
        lab().pick_channel(int(points[0]["label"]), default_compare)


default_compare = most[:2] + least[:1]
st.caption(t("pch.hover"))
show.chart(views.channel_weights, tr, sort=lab().sort, key="channel_weights", on_select=picked)

st.header(t("pch.h5"))
if lab().compare is None or any(c >= C for c in lab().compare):
    lab().compare = default_compare
chosen = st.multiselect(t("pch.compare"), list(range(C)), max_selections=6, **mirrored("compare"))
with show.slot("before_after"):
    if chosen:
        show.chart(views.before_after, tr, chosen, key="before_after")

st.header(t("pch.h6"))
if lab().channel is None or not 0 <= lab().channel < C:
    lab().channel = most[0]
c = int(st.number_input(t("pch.channel"), 0, C - 1, **mirrored("channel")))
n = explore.channel_computation(block, tr, c)
avg_part = f"\\underbrace{{{n['mlp_avg']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{avg}})_{{{c}}}}}" if "mlp_avg" in n else ""
max_part = f"\\underbrace{{{n['mlp_max']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{max}})_{{{c}}}}}" if "mlp_max" in n else ""
st.markdown(
    (t("pch.avg", c=c, v=n["avg_pool"]) if "avg_pool" in n else "")
    + (t("pch.max", c=c, v=n["max_pool"]) if "max_pool" in n else "")
    + t("pch.through", hidden=n["hidden_width"], c=c)
)
st.latex(f"M_c[{c}] = \\sigma\\big({' + '.join(p for p in (avg_part, max_part) if p)}\\big) = "
         f"\\sigma({n['channel_logit']:.3f}) = {n['channel_weight']:.4f}")
st.caption(t("pch.so", c=c, w=n["channel_weight"]))
