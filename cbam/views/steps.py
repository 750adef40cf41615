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
from ..i18n import t as text
from ..modules import CBAM
from ..trace import CBAMTrace
from . import channel, network, spatial
from .base import Chart, Picture, bars, finite

__all__ = ["Step", "STEPS", "available", "diagram", "numbers", "step", "step_views"]


@dataclass(frozen=True)
class Step:
    key: str
    half: str  # "channel" or "spatial": which attention module the step belongs to
    equation: str  # LaTeX

    @property
    def title(self) -> str:
        """What the step computes, in the current language (the catalogue's "step.<key>.title")."""
        return text(f"step.{self.key}.title")

    @property
    def explanation(self) -> str:
        """Why, in a paragraph ("step.<key>.text")."""
        return text(f"step.{self.key}.text")


STEPS: tuple[Step, ...] = (
    Step("F", "channel", r"F \in \mathbb{R}^{C \times H \times W}"),
    Step("pool", "channel", r"F^c_{avg} = \tfrac{1}{HW}\textstyle\sum_{i,j} F_{c,i,j}, \qquad F^c_{max} = \max_{i,j} F_{c,i,j}"),
    Step("mlp", "channel", r"\mathrm{MLP}(d) = W_1\,\mathrm{ReLU}(W_0\, d), \quad W_0 \in \mathbb{R}^{C/r \times C},\ W_1 \in \mathbb{R}^{C \times C/r}"),
    Step("sum", "channel", r"M_c = \sigma\big(\mathrm{MLP}(F^c_{avg}) + \mathrm{MLP}(F^c_{max})\big)"),
    Step("mc", "channel", r"M_c \in (0, 1)^{C}"),
    Step("fprime", "channel", r"F' = M_c(F) \otimes F"),
    Step("spool", "spatial", r"F^s_{avg}(i,j) = \tfrac{1}{C}\textstyle\sum_c F'_{c,i,j}, \qquad F^s_{max}(i,j) = \max_c F'_{c,i,j}"),
    Step("conv", "spatial", r"f^{k\times k}([F^s_{avg};\, F^s_{max}])"),
    Step("ms", "spatial", r"M_s = \sigma\big(f^{k\times k}([F^s_{avg};\, F^s_{max}])\big) \in (0,1)^{H \times W}"),
    Step("out", "spatial", r"F'' = M_s(F') \otimes F'"),
)


def step(index: int) -> Step:
    return STEPS[index]


def numbers(index: int, t: CBAMTrace, block: CBAM) -> str:
    """The step's live numbers for this trace, as Markdown (with inline values)."""
    key = STEPS[index].key
    weights = finite(t.channel_weights[0], "Mc")
    c = int(np.argmax(weights))
    C, H, W = t.x.shape[1:]
    if key == "F":
        x = t.x[0]
        return text("steps.n.F", C=C, H=H, W=W, low=float(x.min()), high=float(x.max()), mean=float(x.mean()))
    if key == "pool":
        parts = [f"F^c_avg[{c}] = **{float(t.avg_pool[0, c]):.4f}**" if t.avg_pool is not None else "",
                 f"F^c_max[{c}] = **{float(t.max_pool[0, c]):.4f}**" if t.max_pool is not None else ""]
        return text("steps.n.pool", c=c, parts=", ".join(p for p in parts if p))
    if key == "mlp":
        hidden = block.channel_attention.hidden_channels
        active = [int((h[0] > 0).sum()) for h in (t.mlp_hidden_avg, t.mlp_hidden_max) if h is not None]
        return text("steps.n.mlp", C=C, r=block.reduction_ratio, hidden=hidden,
                    active=text("steps.n.and").join(str(a) for a in active),
                    params=f"{sum(p.numel() for p in block.channel_attention.parameters()):,}")
    if key == "sum":
        n = explore.channel_computation(block, t, c)
        terms = " + ".join(f"{n[k]:.3f}" for k in ("mlp_avg", "mlp_max") if k in n)
        return text("steps.n.sum", c=c, terms=terms, logit=n["channel_logit"], weight=n["channel_weight"])
    if key == "mc":
        return text("steps.n.mc", low=weights.min(), high=weights.max(), mean=weights.mean(),
                    kept=int((weights > 0.5).sum()), C=C)
    if key == "fprime":
        return text("steps.n.fprime", change=explore.relative_change(t.x, t.x_channel), c=c, w=weights[c])
    if key in ("spool", "conv", "ms"):
        row, col = spatial.mask_peak(t)
        n = explore.spatial_computation(block, t, row, col)
        if key == "spool":
            return text("steps.n.spool", col=col, row=row, avg=float(t.spatial_avg[0, 0, row, col]),
                        max=float(t.spatial_max[0, 0, row, col]))
        k = block.spatial_attention.kernel_size
        if key == "conv":
            return (text("steps.n.conv", k=k, weights=2 * k * k, col=col, row=row, conv=n["conv"])
                    + (text("steps.n.bn", bn=n["batch_norm"]) if n["batch_norm"] is not None else text("steps.n.end")))
        mask = finite(t.spatial_mask[0, 0], "Ms")
        return text("steps.n.ms", low=mask.min(), high=mask.max(), col=col, row=row, logit=n["logit"], mask=n["mask"])
    return text("steps.n.out", spatial=explore.relative_change(t.x_channel, t.out), whole=explore.relative_change(t.x, t.out))


def _energy_pair(t: CBAMTrace) -> Chart:
    return network.compare_outputs({text("steps.fprime_mean"): t.x_channel[0], text("steps.f2_mean"): t.out[0]},
                                   title=text("steps.energy.title"))


def _logits(t: CBAMTrace) -> Chart:
    series = {name: finite(v[0], name) for name, v in (("MLP(AvgPool F)", t.mlp_avg), ("MLP(MaxPool F)", t.mlp_max))
              if v is not None}
    series[text("steps.sum_logit")] = finite(t.channel_logits[0], text("steps.logits"))
    colours = {"MLP(AvgPool F)": "#1f77b4", "MLP(MaxPool F)": "#ff7f0e", text("steps.sum_logit"): "#9467bd"}
    return bars(series, title=text("steps.logits.title"), x_title=text("vc.channel"), y_title=text("base.value"),
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
                 "tooltip": [{"field": "label", "type": "nominal", "title": text("steps.step")},
                             {"field": "title", "type": "nominal", "title": text("steps.what")}]}},
            {"mark": {"type": "text", "fontSize": 12, "cursor": "pointer"},
             "encoding": {"x": {"field": "xc", "type": "quantitative", "scale": scale_x},
                          "y": {"field": "yc", "type": "quantitative", "scale": scale_y},
                          "text": {"field": "label"}}},
        ],
        "config": {"view": {"stroke": None}},
    }
    return Chart(spec, {"main": table}, select=select)


def _short(step: Step) -> str:
    return text(f"step.{step.key}.short")
