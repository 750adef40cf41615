"""Full CBAM: F → F' → F'', the three arrangements, and the paper / authors / blog variants."""

import streamlit as st

from cbam import explore
from cbam.views import network as views
from ui import page, show

state, timed, choice = page.block_page("Full CBAM: F → F' → F''")
tr = timed.trace
page.show_timings(timed)
st.download_button("Download this block's trace (NPZ)", lambda: explore.trace_npz(tr), file_name=f"cbam_trace_{state.layer}.npz",
                   mime="application/octet-stream", on_click="ignore",
                   help="Every intermediate of the forward pass, named as in cbam.trace")

c1, c2, c3 = st.columns(3)
c1.metric("‖F' − F‖ / ‖F‖", f"{explore.relative_change(tr.x, tr.x_channel):.1%}", help="what channel attention changed")
c2.metric("‖F'' − F'‖ / ‖F'‖", f"{explore.relative_change(tr.x_channel, tr.out):.1%}", help="what spatial attention changed")
c3.metric("‖F'' − F‖ / ‖F‖", f"{explore.relative_change(tr.x, tr.out):.1%}", help="what the whole block changed")
left, right = st.columns([1, 2])
with left:
    show.chart(views.step_changes, tr, key="step_changes")
with right:
    show.chart(views.channel_energy, tr, key="channel_energy", download=False)

st.header("Three arrangements, same weights")
st.markdown("The paper compares channel-then-spatial (its choice, best in Table 3), spatial-then-channel, and both "
            "in parallel (both maps computed from F, then multiplied in). Here the three share this block's weights, "
            "so only the arrangement differs.")
arrangements = page.comparison("arrangements", state)
show.chart(views.compare_outputs, arrangements, title="Output F'' (channel mean) of each arrangement", key="arrangements")
st.caption("max |difference| between the full outputs (all C×H×W values):")
st.dataframe(views.output_differences(arrangements), hide_index=True)

st.header("Paper, authors' code and blog version, same weights")
st.markdown("The same MLP weights and kernel in the three published forms. What differs is structure only: the MLP "
            "bias (authors: learned bias; here the block's own, or zero), the order of the pooled maps (the kernel's "
            "two input planes are swapped to match), and the authors' BatchNorm after the convolution.")
variants = page.comparison("variants", state)
show.chart(views.compare_outputs, variants, title="Output F'' (channel mean) of each variant", key="variants")
st.dataframe(views.output_differences(variants), hide_index=True)
