"""Layer by layer: every CBAM block of the network on the image at once."""

import streamlit as st

from cbam import explore, report
from cbam.views import network as views
from cbam.views import overlay
from cbam.views.base import Scale
from ui import cache, page, show
from ui.state import lab

state = page.current()
st.title("Layer by layer: every CBAM block")
page.fit_note(state)
if not state.layers:
    st.info("This model has no CBAM blocks.")
    st.stop()

run = page.network_run(state)
st.caption(f"One forward pass of {state.card.title} on {run.device.upper()}: {run.seconds * 1000:.0f} ms, "
           f"{len(run.traces)} CBAM blocks traced.")
names = page.class_names(state.card, run.probabilities.shape[-1])  # indices when the names are unknown
top = run.probabilities[0].topk(min(5, len(names)))
st.markdown("**Prediction:** " + ", ".join(
    f"{names[i]} ({p:.1%})" for p, i in zip(top.values.tolist(), top.indices.tolist())))

masks = {name: t.spatial_mask[0, 0] for name, t in run.traces.items() if t.spatial_mask is not None}
if masks:
    st.subheader("Every block's spatial mask Ms over the image")
    alpha = page.opacity_slider()
    pictures = show.build(views.layer_masks, cache.photo(state.image_key, lab().image_bytes), masks, alpha=alpha)
    if pictures:
        columns = st.columns(4)
        for index, picture in enumerate(pictures):
            with columns[index % 4]:
                show.picture(picture)
        show.chart(overlay.colorbar(Scale.unit(), "Ms (0 = suppressed, 1 = kept)"), key="layer_masks.colorbar",
                   download=False)
        _, pixels = cache.model_input(state.model_name, state.image_key)
        show.png_download(views.layer_masks_png(pixels, masks, alpha=alpha), "layer_masks")
    st.caption(page.photo_note(state, next(iter(masks.values())).shape[-1]).split(" One feature-map pixel")[0])

show.chart(views.channel_heatmap, {name: t.channel_weights[0] for name, t in run.traces.items()}, key="channel_heatmap")

st.subheader("Per-block statistics")
rows = report.block_statistics(run)
show.chart(views.block_summary, rows, key="block_summary", download=False)
st.dataframe(rows, hide_index=True, width="stretch")
st.download_button("Download statistics (CSV)", explore.rows_to_csv(rows), file_name="cbam_blocks.csv", mime="text/csv",
                   on_click="ignore")

st.subheader("Open a block on the step-by-step pages")
chosen = st.selectbox("Block", state.layers, index=state.layers.index(state.layer), key="layers.open")
c1, c2 = st.columns(2)
for column, target, label in ((c1, "pages/channel.py", "Channel attention"), (c2, "pages/spatial.py", "Spatial attention")):
    if column.button(f"Open {chosen} on {label}", key=f"layers.open.{target}"):
        lab().layer = chosen
        st.switch_page(target)
