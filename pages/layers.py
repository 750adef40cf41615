"""Layer by layer: every CBAM block of the network on the image at once."""

import streamlit as st

from cbam import explore, plots, report
from ui import common

state = common.current()
st.title("Layer by layer: every CBAM block")
if not state.layers:
    st.info("This model has no CBAM blocks.")
    st.stop()

run = common.safe_run(state.model_name, state.image_key, state.device)
_, pixels = common.model_input(state.model_name, state.image_key)
st.caption(f"One forward pass of {state.card.title} on {run.device.upper()}: {run.seconds * 1000:.0f} ms, "
           f"{len(run.traces)} CBAM blocks traced.")
if state.card.class_names:
    top = run.probabilities[0].topk(min(5, len(state.card.class_names)))
    st.markdown("**Prediction:** " + ", ".join(
        f"{state.card.class_names[i]} ({p:.1%})" for p, i in zip(top.values.tolist(), top.indices.tolist())))

masks = {name: t.spatial_mask[0, 0] for name, t in run.traces.items() if t.spatial_mask is not None}
weights = {name: t.channel_weights[0] for name, t in run.traces.items()}


@st.fragment
def mask_grid(pixels, masks) -> None:
    alpha = common.opacity_slider()
    common.show(plots.layer_masks_grid, pixels, masks, alpha=alpha, key="layer_masks")


if masks:
    mask_grid(pixels, masks)
common.show(plots.channel_weights_heatmap, weights, key="channel_heatmap")

st.subheader("Per-block statistics")
rows = report.block_statistics(run)
st.dataframe(rows, hide_index=True, width="stretch")
st.download_button("Download statistics (CSV)", explore.rows_to_csv(rows), file_name="cbam_blocks.csv", mime="text/csv")

st.subheader("Open a block on the step-by-step pages")
chosen = st.selectbox("Block", state.layers, index=state.layers.index(state.layer), key="layers.open")
c1, c2 = st.columns(2)
for column, page, label in ((c1, "pages/channel.py", "Channel attention"), (c2, "pages/spatial.py", "Spatial attention")):
    if column.button(f"Open {chosen} on {label}", key=f"layers.open.{page}"):
        st.session_state["lab.layer"] = chosen
        st.switch_page(page)
