"""The ten steps of CBAM, one at a time: what each computes (its equation), why (a paragraph), its live
numbers for a trace, and the views that show it. The guided page walks through them in this order:

    F → pooled descriptors → shared MLP → sum and σ → Mc → F' → channel mean / max → k×k conv → Ms → F''

``diagram(current)`` is the pipeline as a clickable chart: one box per step, the current one lit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import explore
from ..modules import CBAM
from ..trace import CBAMTrace
from . import channel, network, spatial
from .base import Chart, Picture, bars, finite

__all__ = ["Step", "STEPS", "available", "diagram", "numbers", "step_views"]


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    half: str  # "channel" or "spatial": which attention module the step belongs to
    equation: str  # LaTeX
    explanation: str


STEPS: tuple[Step, ...] = (
    Step("F", "The input feature map F", "channel", r"F \in \mathbb{R}^{C \times H \times W}",
         "CBAM sits inside a network and receives the feature map F of the layer before it: C channels, each an "
         "H×W map of how strongly one learned feature responds at each position. Some channels matter for this "
         "image and some do not; CBAM will learn to tell which (channel attention) and where (spatial attention)."),
    Step("pool", "Squeeze: average and max pooling over space", "channel",
         r"F^c_{avg} = \tfrac{1}{HW}\textstyle\sum_{i,j} F_{c,i,j}, \qquad F^c_{max} = \max_{i,j} F_{c,i,j}",
         "Each channel's H×W map is squeezed to two numbers: its mean, which summarises the whole map, and its "
         "maximum, which keeps the most distinctive response. The paper found that using both beats either alone "
         "(Table 1). The result is two vectors of C numbers, the descriptors."),
    Step("mlp", "The shared MLP", "channel",
         r"\mathrm{MLP}(d) = W_1\,\mathrm{ReLU}(W_0\, d), \quad W_0 \in \mathbb{R}^{C/r \times C},\ W_1 \in \mathbb{R}^{C \times C/r}",
         "Both descriptors go through the same small network: a bottleneck of C/r hidden units (r is the reduction "
         "ratio) with a ReLU, then back to C outputs. Sharing the weights keeps the parameters few; the bottleneck "
         "makes the MLP weigh channels against each other. A hidden unit whose ReLU is off for both descriptors "
         "contributes nothing."),
    Step("sum", "Sum, then sigmoid", "channel",
         r"M_c = \sigma\big(\mathrm{MLP}(F^c_{avg}) + \mathrm{MLP}(F^c_{max})\big)",
         "The two MLP outputs are added channel by channel: this sum is the channel's logit, positive where the "
         "channel should be kept and negative where it should be damped. The sigmoid σ squeezes each logit into "
         "(0, 1)."),
    Step("mc", "The channel weights Mc", "channel", r"M_c \in (0, 1)^{C}",
         "Mc holds one weight per channel: near 1 keeps the channel, near 0 silences it. Sorted, it shows how "
         "selective the block is for this image. Hover a bar for its channel."),
    Step("fprime", "Excite: F' = Mc ⊗ F", "channel", r"F' = M_c(F) \otimes F",
         "Every position of channel c is multiplied by the same weight Mc[c]: the map keeps its shape and is "
         "only brightened or dimmed as a whole. This is channel attention's output, and spatial attention's input."),
    Step("spool", "Squeeze across channels: mean and max at each position", "spatial",
         r"F^s_{avg}(i,j) = \tfrac{1}{C}\textstyle\sum_c F'_{c,i,j}, \qquad F^s_{max}(i,j) = \max_c F'_{c,i,j}",
         "Spatial attention asks where. It pools F' the other way round: at every position, the mean and the "
         "maximum over all C channels. The result is two H×W maps, one number per position each."),
    Step("conv", "The k×k convolution", "spatial",
         r"f^{k\times k}([F^s_{avg};\, F^s_{max}])",
         "One convolution with a k×k kernel on the two stacked maps turns them into one map of scores: at each "
         "position it weighs the 2×k×k values around it. These 2·k·k weights are all that spatial attention "
         "learns. A larger k sees more context (the paper found 7 better than 3)."),
    Step("ms", "Sigmoid: the spatial mask Ms", "spatial",
         r"M_s = \sigma\big(f^{k\times k}([F^s_{avg};\, F^s_{max}])\big) \in (0,1)^{H \times W}",
         "The sigmoid turns the scores into a mask: one weight per position, near 1 where the block looks and "
         "near 0 where it does not. Over the photo, it shows where this block's attention falls."),
    Step("out", "The output F'' = Ms ⊗ F'", "spatial", r"F'' = M_s(F') \otimes F'",
         "Every channel of F' is multiplied, position by position, by the same mask Ms. F'' has F's shape, so "
         "CBAM can be dropped into any network; the next layer receives the features re-weighted twice: what, "
         "then where."),
)


def _rel(a, b) -> float:
    return explore.relative_change(a, b)


def numbers(index: int, t: CBAMTrace, block: CBAM) -> str:
    """The step's live numbers for this trace, as Markdown (with inline values)."""
    key = STEPS[index].key
    weights = finite(t.channel_weights[0], "Mc")
    c = int(np.argmax(weights))
    C, H, W = t.x.shape[1:]
    if key == "F":
        x = t.x[0]
        return (f"Here: C = **{C}** channels of **{H}×{W}** positions; values from **{float(x.min()):.3f}** to "
                f"**{float(x.max()):.3f}**, mean **{float(x.mean()):.3f}**.")
    if key == "pool":
        parts = [f"F^c_avg[{c}] = **{float(t.avg_pool[0, c]):.4f}**" if t.avg_pool is not None else "",
                 f"F^c_max[{c}] = **{float(t.max_pool[0, c]):.4f}**" if t.max_pool is not None else ""]
        return f"For channel {c} (the most attended): " + ", ".join(p for p in parts if p) + "."
    if key == "mlp":
        hidden = block.channel_attention.hidden_channels
        active = [int((h[0] > 0).sum()) for h in (t.mlp_hidden_avg, t.mlp_hidden_max) if h is not None]
        return (f"Here C = {C}, r = {block.reduction_ratio}: **{hidden}** hidden units, "
                f"{' and '.join(str(a) for a in active)} of them on (ReLU > 0) for the avg and max descriptors; "
                f"{sum(p.numel() for p in block.channel_attention.parameters()):,} weights in all.")
    if key == "sum":
        n = explore.channel_computation(block, t, c)
        terms = " + ".join(f"{n[k]:.3f}" for k in ("mlp_avg", "mlp_max") if k in n)
        return (f"For channel {c}: {terms} = **{n['channel_logit']:.3f}**, and σ({n['channel_logit']:.3f}) = "
                f"**{n['channel_weight']:.4f}**.")
    if key == "mc":
        return (f"Mc runs from **{weights.min():.3f}** to **{weights.max():.3f}** (mean {weights.mean():.3f}); "
                f"{int((weights > 0.5).sum())} of {C} channels are kept more than half.")
    if key == "fprime":
        return (f"‖F' − F‖ / ‖F‖ = **{_rel(t.x, t.x_channel):.1%}**: how much channel attention changed the "
                f"features. Channel {c} is multiplied by {weights[c]:.3f}.")
    if key in ("spool", "conv", "ms"):
        row, col = spatial.mask_peak(t)
        n = explore.spatial_computation(block, t, row, col)
        if key == "spool":
            return (f"At position (x = {col}, y = {row}), where Ms is largest: F^s_avg = "
                    f"**{float(t.spatial_avg[0, 0, row, col]):.4f}**, F^s_max = **{float(t.spatial_max[0, 0, row, col]):.4f}**.")
        k = block.spatial_attention.kernel_size
        if key == "conv":
            return (f"k = {k}: **{2 * k * k}** weights. At (x = {col}, y = {row}) the 2×{k}×{k} products sum to "
                    f"**{n['conv']:.4f}**" + (f", then BatchNorm gives {n['batch_norm']:.4f}." if n["batch_norm"] is not None else "."))
        mask = finite(t.spatial_mask[0, 0], "Ms")
        return (f"Ms runs from **{mask.min():.3f}** to **{mask.max():.3f}**; its largest value is at (x = {col}, "
                f"y = {row}): σ({n['logit']:.3f}) = **{n['mask']:.4f}**.")
    return (f"‖F'' − F'‖ / ‖F'‖ = **{_rel(t.x_channel, t.out):.1%}**, and the whole block: ‖F'' − F‖ / ‖F‖ = "
            f"**{_rel(t.x, t.out):.1%}**.")


def _energy_pair(t: CBAMTrace) -> Chart:
    return network.compare_outputs({"F' (channel mean)": t.x_channel[0], "F'' (channel mean)": t.out[0]},
                                   title="F' and F'' (mean over channels): Ms at work")


def _logits(t: CBAMTrace) -> Chart:
    series = {name: finite(v[0], name) for name, v in (("MLP(AvgPool F)", t.mlp_avg), ("MLP(MaxPool F)", t.mlp_max))
              if v is not None}
    series["sum (the logit)"] = finite(t.channel_logits[0], "logits")
    colours = {"MLP(AvgPool F)": "#1f77b4", "MLP(MaxPool F)": "#ff7f0e", "sum (the logit)": "#9467bd"}
    return bars(series, title="The two MLP outputs and their sum, per channel", x_title="channel", y_title="value",
                colors=[colours[name] for name in series])


def step_views(index: int, t: CBAMTrace, block: CBAM, photo: np.ndarray | None = None) -> list[Chart | Picture]:
    """The views of step ``index`` for this trace (the same views as the Channel and Spatial pages)."""
    key = STEPS[index].key
    most, least = explore.ranked_channels(t.channel_weights[0], 4)
    views: dict[str, Callable[[], list]] = {
        "F": lambda: [channel.feature_grid(t)],
        "pool": lambda: [channel.descriptors(t)],
        "mlp": lambda: [channel.mlp_hidden(t), channel.mlp_outputs(t)],
        "sum": lambda: [_logits(t)],
        "mc": lambda: [channel.channel_weights(t, select=None)],
        "fprime": lambda: [channel.before_after(t, most[:2] + least[:1])],
        "spool": lambda: [spatial.pools(t)],
        "conv": lambda: [spatial.kernel(block), spatial.conv_output(t)],
        "ms": lambda: [spatial.mask(t, select=None)]
                      + ([spatial.mask_on_photo(photo, t, block)] if photo is not None else []),
        "out": lambda: [_energy_pair(t)],
    }
    return views[key]()


def available(block: CBAM) -> list[int]:
    """The steps a block has: all ten, or the six of channel attention for a block without spatial attention."""
    return [i for i, s in enumerate(STEPS) if s.half == "channel" or block.spatial_attention is not None]


def diagram(current: int, *, select: str = "step") -> Chart:
    """The pipeline: one box per step in two rows (channel attention, then spatial attention), the
    current step lit; a click on a box selects its step (field ``step``)."""
    n = len(STEPS)
    row = np.array([0 if s.half == "channel" else 1 for s in STEPS])
    col = np.array([i if s.half == "channel" else i - 6 for i, s in enumerate(STEPS)], dtype=np.float64)
    table = {
        "step": np.arange(n), "label": np.array([f"{i + 1} · {_short(s)}" for i, s in enumerate(STEPS)]),
        "x": col * 1.2, "x2": col * 1.2 + 1.0, "y": row * 1.0, "y2": row * 1.0 + 0.7,
        "xc": col * 1.2 + 0.5, "yc": row * 1.0 + 0.35,
        "current": (np.arange(n) == current).astype(np.int64),
        "title": np.array([s.title for s in STEPS]),
    }
    scale_x = {"domain": [-0.1, 7.1], "nice": False}
    scale_y = {"domain": [1.8, -0.1], "nice": False}
    spec = {
        "data": {"name": "main"}, "height": 120,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "layer": [
            {"mark": {"type": "rect", "cornerRadius": 6, "stroke": "#555", "cursor": "pointer"},
             "params": [{"name": select, "select": {"type": "point", "fields": ["step"], "on": "click", "clear": False}}],
             "encoding": {
                 "x": {"field": "x", "type": "quantitative", "axis": None, "scale": scale_x}, "x2": {"field": "x2"},
                 "y": {"field": "y", "type": "quantitative", "axis": None, "scale": scale_y}, "y2": {"field": "y2"},
                 "color": {"condition": {"test": "datum.current == 1", "value": "#f8765c"},
                           "value": "#fdebd3"},
                 "strokeWidth": {"condition": {"test": "datum.current == 1", "value": 3}, "value": 1},
                 "tooltip": [{"field": "label", "type": "nominal", "title": "step"},
                             {"field": "title", "type": "nominal", "title": "what"}]}},
            {"mark": {"type": "text", "fontSize": 12, "cursor": "pointer"},
             "encoding": {"x": {"field": "xc", "type": "quantitative", "scale": scale_x},
                          "y": {"field": "yc", "type": "quantitative", "scale": scale_y},
                          "text": {"field": "label"}}},
        ],
        "config": {"view": {"stroke": None}},
    }
    return Chart(spec, {"main": table}, select=select)


_SHORT = {"F": "F", "pool": "pool", "mlp": "MLP", "sum": "sum, σ", "mc": "Mc", "fprime": "F'", "spool": "mean, max",
          "conv": "k×k conv", "ms": "Ms", "out": "F''"}


def _short(step: Step) -> str:
    return _SHORT[step.key]
