"""Spatial attention, step by step: F' → channel mean and max → k×k conv → σ → Ms → F''."""

import streamlit as st

from cbam import explore, report
from ui import common

state, timed, choice = common.block_page("Spatial attention: *where* it is")
t, block = timed.trace, choice.block
if block.spatial_attention is None or t.spatial_mask is None:
    st.info("This block has no spatial attention (channel attention only).")
    st.stop()
spatial = block.spatial_attention
H, W = t.spatial_mask.shape[-2:]
k = spatial.kernel_size
_, pixels = common.model_input(state.model_name, state.image_key)
stride = explore.feature_stride(pixels.shape[0], H)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Kernel k", f"{k}×{k}")
m2.metric("Conv parameters", f"{spatial.conv.weight.numel()}", help="2 input maps × k × k, no bias")
m3.metric("Feature map", f"{H}×{W}")
m4.metric("Receptive field of k", f"{k * stride:.0f} px", help=f"k feature pixels × {stride:.0f} image pixels each")
common.show_timings(timed)


shown = report.spatial_plots(block, t, pixels)  # the figures below; the overlay's fragment makes its own

st.header("1 · Squeeze across channels: mean and max at each position")
st.markdown("At every position, the C values of F' are reduced to their mean (F^s_avg) and maximum (F^s_max).")
common.show(shown["spatial_pools"], key="spatial_pools")

st.header(f"2 · The {k}×{k} convolution and its kernel")
order = "[avg; max]" if spatial.pool_order == "avg-max" else "[max; avg] (as in the authors' code)"
st.markdown(f"One convolution maps the two stacked maps {order} to one map of scores. Its kernel has "
            f"2 × {k} × {k} = {2 * k * k} weights" + (", followed by BatchNorm." if spatial.bn is not None else "."))
common.show(shown["kernel"], key="kernel")

st.header("3 · Sigmoid: the spatial mask Ms")
common.show(shown["spatial_mask"], key="spatial_mask")

st.header("4 · Ms over the image")


@st.fragment
def overlay(t, block, k, stride) -> None:
    c1, c2, c3 = st.columns(3)
    alpha = common.opacity_slider(c1)
    cmap = c2.selectbox("Colour map", ["magma", "viridis", "jet", "gray"], key="spatial.cmap")
    show_window = c3.toggle("Show the k×k window", value=True, key="spatial.window")
    common.show(report.spatial_plots(block, t, pixels, alpha=alpha, cmap=cmap, window=show_window)["mask_overlay"],
                key="mask_overlay")
    st.caption(f"Each feature-map position covers about {stride:.0f}×{stride:.0f} image pixels; the {k}×{k} "
               f"convolution sees {k * stride:.0f}×{k * stride:.0f} px around each position (square at the mask's maximum).")


overlay(t, block, k, stride)

# While the student reads: the figures above at the other values of r and k, with these settings.
settings = {"alpha": st.session_state["lab.alpha"], "cmap": st.session_state.get("spatial.cmap", "magma"),
            "window": st.session_state.get("spatial.window", True)}
common.prefetch_variants(state, lambda timed, block: report.spatial_plots(block, timed.trace, pixels, **settings).values(),
                         first="kernel")
