"""Spatial attention, step by step: F' → channel mean and max → k×k conv → σ → Ms → F''."""

import streamlit as st

from cbam import explore
from cbam.i18n import t
from cbam.views import spatial as views
from ui import cache, page, show
from ui.state import lab, mirrored

state, timed, choice = page.block_page("psp.title")
tr, block = timed.trace, choice.block
if block.spatial_attention is None or tr.spatial_mask is None:
    st.info(t("psp.none"))
    st.stop()
spatial = block.spatial_attention
H, W = tr.spatial_mask.shape[-2:]
k = spatial.kernel_size
stride = explore.feature_stride(state.card.input_size, H)
m1, m2, m3, m4 = st.columns(4)
m1.metric(t("psp.kernel"), f"{k}×{k}")
m2.metric(t("psp.params"), f"{spatial.conv.weight.numel()}", help=t("psp.params_help"))
m3.metric(t("psp.fmap"), f"{H}×{W}")
m4.metric(t("psp.rf"), f"{k * stride:.0f} px", help=t("psp.rf_help", stride=stride))
page.show_timings(timed)

st.header(t("psp.h1"))
st.markdown(t("psp.t1"))
show.chart(views.pools, tr, key="spatial_pools")

st.header(t("psp.h2", k=k))
order = "[avg; max]" if spatial.pool_order == "avg-max" else t("psp.order_authors")
st.markdown(t("psp.t2", order=order, k=k, n=2 * k * k) + (t("psp.t2_bn") if spatial.bn is not None else t("psp.end")))
show.chart(views.kernel, block, key="kernel")

st.header(t("psp.h3"))
if lab().position is not None and not (lab().position[0] < H and lab().position[1] < W):
    lab().position = None


def picked() -> None:
    """A click on Ms: that position's convolution is shown below, and the window moves there."""
    points = show.selection("spatial_mask", "position")
    if points:
        lab().position = (int(points[0]["y"]), int(points[0]["x"]))


left, right = show.columns("mask", 2)
with left:
    show.chart(views.conv_output, tr, key="spatial_logits", download=False)
with right:
    show.chart(views.mask, tr, key="spatial_mask", on_select=picked)

peak = show.build(views.mask_peak, tr)
if peak is None:  # Ms is not finite: nothing below can be shown (the error says why)
    st.stop()
row, col = lab().position or peak
st.header(t("psp.h4", col=col, row=row))
st.markdown((t("psp.click") if lab().position is None else t("psp.this"))
            + (t("psp.largest") if lab().position is None else t("psp.clicked"))
            + t("psp.window", k=k)
            + (t("psp.zeros") if spatial.padding == "zeros" else t("psp.edge")) + t("psp.end"))
n = explore.spatial_computation(block, tr, row, col)
show.chart(views.position_inputs, n, key="position_inputs", download=False)
show.chart(views.position_products, n, key="position_products", download=False)
bn = "" if n["batch_norm"] is None else f" \\xrightarrow{{\\mathrm{{BN}}}} {n['batch_norm']:.4f}"
st.latex(f"\\sum_{{2\\times{k}\\times{k}}} \\text{{input}} \\times \\text{{weight}} = {n['conv']:.4f}{bn}"
         f"\\;\\Rightarrow\\; M_s(x{{=}}{col}, y{{=}}{row}) = \\sigma({n['logit']:.4f}) = {n['mask']:.4f}")
st.caption(t("psp.check", check=n["check"]))

st.header(t("psp.h5"))
c1, c2, c3 = st.columns(3)
alpha = page.opacity_slider(c1)
c2.selectbox(t("psp.cmap"), ["magma", "viridis", "jet", "gray"], **mirrored("cmap"))
c3.toggle(t("psp.show_window"), **mirrored("window"))
photo = cache.photo(state.image_key, lab().image_bytes)
show.picture(show.build(views.mask_on_photo, photo, tr, block, alpha=alpha, cmap=lab().cmap, position=(row, col),
                        window=lab().window), key="mask_overlay", width=min(720, max(384, photo.shape[1])))
st.caption(page.photo_note(state, H) + t("psp.sees", k=k, px=k * stride))
