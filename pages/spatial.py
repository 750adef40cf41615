"""Spatial attention, step by step: F' → channel mean and max → k×k conv → σ → Ms → F''."""

import streamlit as st

from cbam import explore
from cbam.views import spatial as views
from ui import cache, page, show
from ui.state import lab, mirrored

state, timed, choice = page.block_page("Spatial attention: *where* it is")
t, block = timed.trace, choice.block
if block.spatial_attention is None or t.spatial_mask is None:
    st.info("This block has no spatial attention (channel attention only).")
    st.stop()
spatial = block.spatial_attention
H, W = t.spatial_mask.shape[-2:]
k = spatial.kernel_size
stride = explore.feature_stride(state.card.input_size, H)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Kernel k", f"{k}×{k}")
m2.metric("Conv parameters", f"{spatial.conv.weight.numel()}", help="2 input maps × k × k, no bias")
m3.metric("Feature map", f"{H}×{W}")
m4.metric("Receptive field of k", f"{k * stride:.0f} px", help=f"k feature pixels × {stride:.0f} model-input pixels each")
page.show_timings(timed)

st.header("1 · Squeeze across channels: mean and max at each position")
st.markdown("At every position, the C values of F' are reduced to their mean (F^s_avg) and maximum (F^s_max).")
show.chart(views.pools, t, key="spatial_pools")

st.header(f"2 · The {k}×{k} convolution and its kernel")
order = "[avg; max]" if spatial.pool_order == "avg-max" else "[max; avg] (as in the authors' code)"
st.markdown(f"One convolution maps the two stacked maps {order} to one map of scores. Its kernel has "
            f"2 × {k} × {k} = {2 * k * k} weights" + (", followed by BatchNorm." if spatial.bn is not None else "."))
show.chart(views.kernel, block, key="kernel")

st.header("3 · Sigmoid: the spatial mask Ms")
if lab().position is not None and not (lab().position[0] < H and lab().position[1] < W):
    lab().position = None


def picked() -> None:
    """A click on Ms: that position's convolution is shown below, and the window moves there."""
    points = show.selection("spatial_mask", "position")
    if points:
        lab().position = (int(points[0]["y"]), int(points[0]["x"]))


left, right = st.columns(2)
with left:
    show.chart(views.conv_output, t, key="spatial_logits", download=False)
with right:
    show.chart(views.mask, t, key="spatial_mask", on_select=picked)

peak = show.build(views.mask_peak, t)
if peak is None:  # Ms is not finite: nothing below can be shown (the error says why)
    st.stop()
row, col = lab().position or peak
st.header(f"4 · The convolution at one position: x = {col}, y = {row}")
st.markdown(("Click a position of Ms above to see its numbers; this is " if lab().position is None else "This is ")
            + ("Ms's largest value. " if lab().position is None else "the position you clicked. ")
            + f"The {k}×{k} window of both pooled maps is multiplied by the kernel, cell by cell, and summed"
            + (" (beyond the border the maps are padded with zeros)" if spatial.padding == "zeros" else
               " (beyond the border the maps' edge values are repeated)") + ".")
n = explore.spatial_computation(block, t, row, col)
show.chart(views.position_inputs, n, key="position_inputs", download=False)
show.chart(views.position_products, n, key="position_products", download=False)
bn = "" if n["batch_norm"] is None else f" \\xrightarrow{{\\mathrm{{BN}}}} {n['batch_norm']:.4f}"
st.latex(f"\\sum_{{2\\times{k}\\times{k}}} \\text{{input}} \\times \\text{{weight}} = {n['conv']:.4f}{bn}"
         f"\\;\\Rightarrow\\; M_s(x{{=}}{col}, y{{=}}{row}) = \\sigma({n['logit']:.4f}) = {n['mask']:.4f}")
st.caption(f"The sum above equals the network's own value at this position to {n['check']:.1e} "
           "(the convolution adds the same numbers in another order).")

st.header("5 · Ms over the image")
c1, c2, c3 = st.columns(3)
alpha = page.opacity_slider(c1)
c2.selectbox("Colour map", ["magma", "viridis", "jet", "gray"], **mirrored("cmap"))
c3.toggle("Show the k×k window", **mirrored("window"))
photo = cache.photo(state.image_key, lab().image_bytes)
show.picture(show.build(views.mask_on_photo, photo, t, block, alpha=alpha, cmap=lab().cmap, position=(row, col),
                        window=lab().window), key="mask_overlay", width=min(720, max(384, photo.shape[1])))
st.caption(page.photo_note(state, H) + f" The {k}×{k} convolution sees {k * stride:.0f}×{k * stride:.0f} model-input "
           "pixels around each position.")
