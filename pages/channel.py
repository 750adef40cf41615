"""Channel attention, step by step: F → descriptors → shared MLP → sum → σ → Mc → F'."""

import streamlit as st

from cbam import explore, report
from ui import common

state, timed, choice = common.block_page("Channel attention: *what* matters")
t, block = timed.trace, choice.block
C, H, W = t.x.shape[1:]
hidden = block.channel_attention.hidden_channels
params = sum(p.numel() for p in block.channel_attention.parameters())
m1, m2, m3, m4 = st.columns(4)
m1.metric("Channels C", C)
m2.metric("Reduction ratio r", state.ratio)
m3.metric("Hidden width C/r", hidden, help="max(1, C // r)")
m4.metric("MLP parameters", f"{params:,}")
common.show_timings(timed)

most, least = explore.ranked_channels(common.first(t.channel_weights), 8)
shown = report.channel_plots(t, compare=[])  # the figures below; the fragments make their own

st.header("1 · The input feature maps F")
st.markdown(f"Block **{state.layer}** receives F with {C} channels of {H}×{W} positions. Below, on one colour scale, "
            f"the {len(most)} channels that channel attention weights most (top row), then the {len(least)} it weights least.")
common.show(shown["most_and_least"], key="most_and_least")

st.header("2 · Squeeze: average and max pooling over space")
st.markdown("Each channel's H×W map becomes two numbers: its mean (F^c_avg) and its maximum (F^c_max).")
common.show(shown["descriptors"], key="descriptors")

st.header("3 · The shared MLP")
st.markdown(f"Both descriptors go through the **same** two-layer MLP: C = {C} → C/r = {hidden} (ReLU) → C = {C}.")
common.show(shown["mlp"], key="mlp")
if explore.silent_mlp(t):
    st.info(f"For this image every one of the {hidden} hidden units is off (ReLU gives 0) for both descriptors, so the "
            "MLP's output does not depend on the input and every channel gets the same weight. Units that never "
            "switch on during training stop learning (“dead ReLUs”); with few hidden units a block can lose its "
            "channel attention this way. Try another layer, or a smaller r.")

st.header("4 · Sum, sigmoid: the channel weights Mc")


@st.fragment
def weights_view(t) -> None:
    sort = st.toggle("Sort channels by weight", value=True, key="channel.sort")
    common.show(report.channel_plots(t, sort=sort, compare=[])["channel_weights"], key="channel_weights")


weights_view(t)

st.header("5 · Excite: F' = Mc ⊗ F")


@st.fragment
def before_after(t) -> None:
    C = t.x.shape[1]
    default = [c for c in (most[:2] + least[:1])]
    chosen = st.multiselect("Channels to compare", list(range(C)), default=default, max_selections=6, key="channel.compare")
    if chosen:
        common.show(report.channel_plots(t, compare=chosen)["before_after"], key="before_after")


before_after(t)

st.header("6 · One channel, with its numbers")


@st.fragment
def one_channel(block, t) -> None:
    C = t.x.shape[1]
    c = st.number_input("Channel", 0, C - 1, value=most[0], key="channel.one")
    n = explore.channel_computation(block, t, int(c))
    avg_part = f"\\underbrace{{{n['mlp_avg']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{avg}})_{{{c}}}}}" if "mlp_avg" in n else ""
    max_part = f"\\underbrace{{{n['mlp_max']:.3f}}}_{{\\mathrm{{MLP}}(F^c_{{max}})_{{{c}}}}}" if "mlp_max" in n else ""
    total = " + ".join(p for p in (avg_part, max_part) if p)
    st.markdown(
        (f"F^c_avg[{c}] = **{n['avg_pool']:.4f}** (mean of channel {c}), " if "avg_pool" in n else "")
        + (f"F^c_max[{c}] = **{n['max_pool']:.4f}** (its maximum). " if "max_pool" in n else "")
        + f"Each goes through W0 ({n['hidden_width']} hidden units, ReLU) and W1; row {c} of W1 gives:"
    )
    st.latex(f"M_c[{c}] = \\sigma\\big({total}\\big) = \\sigma({n['channel_logit']:.3f}) = {n['channel_weight']:.4f}")
    st.caption(f"So every position of channel {c} is multiplied by {n['channel_weight']:.4f} to give F'.")


one_channel(block, t)


# While the student reads: the figures above at the other values of r and k, with these settings.
sort, compare = st.session_state.get("channel.sort", True), st.session_state.get("channel.compare", [])
common.prefetch_variants(state, lambda timed, block: report.channel_plots(timed.trace, sort=sort, compare=compare).values())
