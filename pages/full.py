"""Full CBAM: F → F' → F'', the three arrangements, and the paper / authors / blog variants."""

import streamlit as st

from cbam import explore, plots, report
from ui import common

state, timed, choice = common.block_page("Full CBAM: F → F' → F''")
t, block = timed.trace, choice.block


def figures(t, arrangements: dict, variants: dict) -> dict[str, plots.Plot]:
    """This page's figures for the trace ``t`` and the block's outputs in each arrangement and published
    form; also drawn ahead for other r and k (see the page's end)."""
    return {
        "step_changes": report.step_changes_plot(t),
        "arrangements": plots.plot(plots.compare_outputs, arrangements, title="Output F'' (channel mean) of each arrangement"),
        "variants": plots.plot(plots.compare_outputs, variants, title="Output F'' (channel mean) of each variant"),
    }


shown = figures(t, common.comparison("arrangements", state), common.comparison("variants", state))
common.show_timings(timed)
st.download_button("Download this block's trace (NPZ)", explore.trace_npz(t), file_name=f"cbam_trace_{state.layer}.npz",
                   mime="application/octet-stream", help="Every intermediate of the forward pass, named as in cbam.trace")

c1, c2, c3 = st.columns(3)
c1.metric("‖F' − F‖ / ‖F‖", f"{explore.relative_change(t.x, t.x_channel):.1%}", help="what channel attention changed")
c2.metric("‖F'' − F'‖ / ‖F'‖", f"{explore.relative_change(t.x_channel, t.out):.1%}", help="what spatial attention changed")
c3.metric("‖F'' − F‖ / ‖F‖", f"{explore.relative_change(t.x, t.out):.1%}", help="what the whole block changed")
common.show(shown["step_changes"], key="step_changes")

st.header("Three arrangements, same weights")
st.markdown("The paper compares channel-then-spatial (its choice, best in Table 3), spatial-then-channel, and both "
            "in parallel (both maps computed from F, then multiplied in). Here the three share this block's weights, "
            "so only the arrangement differs.")


common.show(shown["arrangements"], key="arrangements")

st.header("Paper, authors' code and blog version, same weights")
st.markdown("The same MLP weights and kernel in the three published forms. What differs is structure only: the MLP "
            "bias (authors: learned bias; here the block's own, or zero), the order of the pooled maps (the kernel's "
            "two input planes are swapped to match), and the authors' BatchNorm after the convolution.")


common.show(shown["variants"], key="variants")


def figures_of(timed, block):
    """The figures above for another r or k: that block's outputs are computed here, not cached."""
    x = timed.trace.x
    arrangements, variants = (common.comparison_outputs(kind, block, x) for kind in ("arrangements", "variants"))
    return figures(timed.trace, arrangements, variants).values()


# While the student reads: the figures above at the other values of r and k.
common.prefetch_variants(state, figures_of)
