"""Layer by layer: every CBAM block of the network on the image at once."""

import streamlit as st

from cbam import explore, report
from cbam.i18n import catalogue, t
from cbam.views import network as views
from cbam.views import overlay
from cbam.views.base import Scale
from ui import cache, page, show, sidebar
from ui.state import lab

state = page.current()
st.title(t("play.title"))
page.fit_note(state)
if not state.layers:
    st.info(t("sidebar.no_blocks"))
    st.stop()

run = page.network_run(state)
st.caption(t("play.pass", model=sidebar.card_title(state.card), device=run.device.upper(), ms=run.seconds * 1000,
             n=len(run.traces)))
names = page.class_names(state.card, run.probabilities.shape[-1])  # indices when the names are unknown
top = run.probabilities[0].topk(min(5, len(names)))
st.markdown(t("play.prediction") + ", ".join(
    f"{names[i]} ({p:.1%})" for p, i in zip(top.values.tolist(), top.indices.tolist())))

masks = {name: t.spatial_mask[0, 0] for name, t in run.traces.items() if t.spatial_mask is not None}
if masks:
    st.subheader(t("play.masks"))
    alpha = page.opacity_slider()
    pictures = show.build(views.layer_masks, cache.photo(state.image_key, lab().image_bytes), masks, alpha=alpha)
    if pictures:
        columns = st.columns(4)
        for index, picture in enumerate(pictures):
            with columns[index % 4]:
                show.picture(picture)
        show.chart(overlay.colorbar(Scale.unit(), t("vs.colorbar")), key="layer_masks.colorbar",
                   download=False)
        _, pixels = cache.model_input(state.model_name, state.image_key)
        show.png_download(views.layer_masks_png(pixels, masks, alpha=alpha), "layer_masks")
    st.caption(page.photo_note(state))

show.chart(views.channel_heatmap, {name: t.channel_weights[0] for name, t in run.traces.items()}, key="channel_heatmap")

st.subheader(t("play.stats"))
rows = report.block_statistics(run)
show.chart(views.block_summary, rows, key="block_summary", download=False)
st.dataframe([{t(f"col.{k}") if f"col.{k}" in catalogue("en") else k: v for k, v in row.items()} for row in rows],
             hide_index=True, width="stretch")
st.download_button(t("play.csv"), explore.rows_to_csv(rows), file_name="cbam_blocks.csv", mime="text/csv",
                   on_click="ignore")

st.subheader(t("play.open"))
chosen = st.selectbox(t("play.block"), state.layers, index=state.layers.index(state.layer), key="layers.open")
c1, c2 = st.columns(2)
for column, target, label in ((c1, "pages/channel.py", t("app.page.channel")), (c2, "pages/spatial.py", t("app.page.spatial"))):
    if column.button(t("play.open_on", block=chosen, page=label), key=f"layers.open.{target}"):
        lab().layer = chosen
        st.switch_page(target)
