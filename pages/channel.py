"""Channel attention, step by step: F → descriptors → shared MLP → sum → σ → Mc → F'."""

import streamlit as st

from cbam import explore
from cbam.views import channel as views
from ui import page, show
from ui.state import lab, mirrored

state, timed, choice = page.block_page("Channel attention: *what* matters")
t, block = timed.trace, choice.block
C, H, W = t.x.shape[1:]
hidden = block.channel_attention.hidden_channels
m1, m2, m3, m4 = st.columns(4)
m1.metric("Channels C", C)
m2.metric("Reduction ratio r", state.ratio)
m3.metric("Hidden width C/r", hidden, help="max(1, C // r)")
m4.metric("MLP parameters", f"{sum(p.numel() for p in block.channel_attention.parameters()):,}")
page.show_timings(timed)
most, least = explore.ranked_channels(t.channel_weights[0], 8)

st.header("1 · The input feature maps F")
st.markdown(f"Block **{state.layer}** receives F with {C} channels of {H}×{W} positions. Below, on one colour scale, "
            "the channels that channel attention weights most (top row), then those it weights least. "
            "Hover a cell for its position and value.")
show.chart(views.feature_grid, t, key="most_and_least")

st.header("2 · Squeeze: average and max pooling over space")
st.markdown("Each channel's H×W map becomes two numbers: its mean (F^c_avg) and its maximum (F^c_max).")
show.chart(views.descriptors, t, key="descriptors")

st.header("3 · The shared MLP")
st.markdown(f"Both descriptors go through the **same** two-layer MLP: C = {C} → C/r = {hidden} (ReLU) → C = {C}.")
left, right = st.columns([1, 2])
with left:
    show.chart(views.mlp_hidden, t, key="mlp_hidden", download=False)
with right:
    show.chart(views.mlp_outputs, t, key="mlp")
if explore.silent_mlp(t):
    st.info(f"For this image every one of the {hidden} hidden units is off (ReLU gives 0) for both descriptors, so the "
            "MLP's output does not depend on the input and every channel gets the same weight. Units that never "
            "switch on during training stop learning (“dead ReLUs”); with few hidden units a block can lose its "
            "channel attention this way. Try another layer, or a smaller r.")

st.header("4 · Sum, sigmoid: the channel weights Mc")
st.toggle("Sort channels by weight", **mirrored("sort"))


def picked() -> None:
    """A click on a bar of Mc: that channel becomes the one below, and joins F vs F'."""
    points = show.selection("channel_weights", "channel")
    if points:
        lab().pick_channel(int(points[0]["label"]), default_compare)


default_compare = most[:2] + least[:1]
st.caption("Hover a bar for its channel, Mc and logit; click one to follow it in steps 5 and 6.")
show.chart(views.channel_weights, t, sort=lab().sort, key="channel_weights", on_select=picked)

st.header("5 · Excite: F' = Mc ⊗ F")
if lab().compare is None or any(c >= C for c in lab().compare):
    lab().compare = default_compare
chosen = st.multiselect("Channels to compare", list(range(C)), max_selections=6, **mirrored("compare"))
if chosen:
    show.chart(views.before_after, t, chosen, key="before_after")

st.header("6 · One channel, with its numbers")
if lab().channel is None or not 0 <= lab().channel < C:
    lab().channel = most[0]
c = int(st.number_input("Channel", 0, C - 1, **mirrored("channel")))
n = explore.channel_computation(block, t, c)
avg_part = f"\\underbrace{{{n['mlp_avg']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{avg}})_{{{c}}}}}" if "mlp_avg" in n else ""
max_part = f"\\underbrace{{{n['mlp_max']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{max}})_{{{c}}}}}" if "mlp_max" in n else ""
st.markdown(
    (f"F^c_avg[{c}] = **{n['avg_pool']:.4f}** (mean of channel {c}), " if "avg_pool" in n else "")
    + (f"F^c_max[{c}] = **{n['max_pool']:.4f}** (its maximum). " if "max_pool" in n else "")
    + f"Each goes through W0 ({n['hidden_width']} hidden units, ReLU) and W1; row {c} of W1 gives:"
)
st.latex(f"M_c[{c}] = \\sigma\\big({' + '.join(p for p in (avg_part, max_part) if p)}\\big) = "
         f"\\sigma({n['channel_logit']:.3f}) = {n['channel_weight']:.4f}")
st.caption(f"So every position of channel {c} is multiplied by {n['channel_weight']:.4f} to give F'.")
