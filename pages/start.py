"""Start here: CBAM in a few sentences, its two equations, and a map of the app."""

import streamlit as st

from cbam import plots
from ui import page

state = page.current()

st.title("CBAM Lab")
st.markdown(
    "**CBAM** (Convolutional Block Attention Module; Woo, Park, Lee and Kweon, ECCV 2018, "
    "[arXiv 1807.06521](https://arxiv.org/abs/1807.06521)) is a small module that sits inside a "
    "convolutional network and re-weights its feature maps. Given a feature map **F** with C channels "
    "of size H×W, it asks two questions in turn:"
)
left, right = st.columns(2)
with left:
    st.markdown("**1 · Channel attention — *what* matters?** Each channel is squeezed to two numbers "
                "(its average and its maximum over all positions); one small shared MLP turns both "
                "descriptors into a score per channel; their sum through a sigmoid gives the channel "
                "weights **Mc** in (0, 1).")
    st.latex(r"\begin{aligned} M_c(F) &= \sigma\big(\mathrm{MLP}(\mathrm{AvgPool}(F)) + \mathrm{MLP}(\mathrm{MaxPool}(F))\big)"
             r" \\ &= \sigma\big(W_1\,\mathrm{ReLU}(W_0 F^c_{avg}) + W_1\,\mathrm{ReLU}(W_0 F^c_{max})\big) \end{aligned}")
with right:
    st.markdown("**2 · Spatial attention — *where* is it?** The channel-weighted map is squeezed across "
                "channels to two H×W maps (mean and max at each position); a k×k convolution and a "
                "sigmoid turn them into a mask **Ms** in (0, 1), one value per position.")
    st.latex(r"\begin{aligned} M_s(F) &= \sigma\big(f^{k\times k}([\mathrm{AvgPool}(F);\ \mathrm{MaxPool}(F)])\big)"
             r" \\ &= \sigma\big(f^{k\times k}([F^s_{avg};\ F^s_{max}])\big) \end{aligned}")
st.latex(r"F' = M_c(F) \otimes F, \qquad F'' = M_s(F') \otimes F'")
st.caption("⊗ is element-wise multiplication: Mc is repeated over all positions, Ms over all channels. "
           "W0 ∈ ℝ^{C/r × C} and W1 ∈ ℝ^{C × C/r} are shared by both descriptors; r is the reduction ratio.")



@st.cache_resource(show_spinner=False)
def pipeline_png() -> bytes:
    """The diagram never changes: drawn once per server process."""
    return plots.figure_to_png(plots.pipeline_diagram())


st.image(pipeline_png(), width="stretch", caption="The CBAM pipeline: channel attention (top) turns F into F'; spatial attention (bottom) turns F' into F''. Each half reads left to right.")

st.subheader("What each page shows")
st.markdown(
    "- **Step by step** — a guided walk through the ten steps, one at a time, with each step's equation and "
    "its live numbers for your image (← / → to move).\n"
    "- **Channel attention** — the feature maps F of the chosen block, the two pooled descriptors, the shared "
    "MLP's hidden layer and outputs, the weights Mc (sorted and unsorted), F' beside F, and one channel's "
    "computation with its live numbers. Move **r** to change the MLP's width.\n"
    "- **Spatial attention** — the channel-mean and channel-max maps, the k×k kernel, the convolution output, "
    "the mask Ms and Ms over your image. Move **k** to change the kernel.\n"
    "- **Full CBAM** — F → F' → F'' and how much each step changes the features; the three arrangements and the "
    "paper / authors / blog variants side by side.\n"
    "- **Layer by layer** — every CBAM block of the network at once: masks over the image, channel weights as a "
    "heatmap, statistics per block."
)
st.markdown(
    f"The sidebar holds what every page shares: the image (now: *{state.image_label}*), the model "
    f"(*{state.card.title}*), the layer, **r**, **k** and the device."
)

st.subheader("Paper, authors' code, and the popular blog version")
st.markdown(
    "| | Paper (Eq. 2, 3) | Authors' code (Jongchan/attention-module) | Blog version |\n"
    "|---|---|---|---|\n"
    "| Shared MLP | W1 ReLU(W0 ·), no bias written | `nn.Linear` layers **with bias** | 1×1 convolutions, no bias |\n"
    "| Hidden width | C/r | C // r | C // r — **0** when C < r: a convolution with no output channels, which current PyTorch refuses to run |\n"
    "| Spatial input | [avg; max] | **[max; avg]** | [avg; max] |\n"
    "| Spatial conv | 7×7 | 7×7 conv **+ BatchNorm** | default **3×3** (3 or 7 allowed) |\n"
    "| Extra channel pools | — | 'lp' (L2 norm), 'lse' (log-sum-exp) | — |\n"
    "| Order | channel, then spatial | channel, then spatial | channel, then spatial (its prose says the two are "
    "multiplied element-wise, which its code does not do) |\n"
    "| In ResNet | end of each residual branch | after the last BN, before the addition | — |\n"
)
st.caption(
    "CBAM Lab keeps at least one hidden unit (max(1, C // r)), so the channel weights always depend on the input. "
    "The blog's `CBAM` class, as printed, also calls `super(CBAM_Block, self)` and cannot be instantiated. "
    "The paper's ImageNet result: CBAM-ResNet-50 has 22.66% top-1 error against 24.56% for ResNet-50 (Table 4)."
)
