"""The Channel attention page's views: F, the pooled descriptors, the shared MLP, Mc, F' beside F."""

from __future__ import annotations

import numpy as np

from .. import explore, plots
from ..i18n import t as text
from ..trace import CBAMTrace
from .base import Chart, Scale, bars, finite, fit_cells, heatmaps

__all__ = ["feature_grid", "descriptors", "mlp_hidden", "mlp_outputs", "channel_weights", "before_after"]

AVG, MAX = plots.AVG_COLOR, plots.MAX_COLOR
_TAB = {"tab:blue": "#1f77b4", "tab:orange": "#ff7f0e"}


def _colour(name: str) -> str:
    return _TAB.get(name, name)


def feature_grid(t: CBAMTrace, n: int = 4) -> Chart:
    """The ``n`` most and ``n`` least attended channels of F (top row, bottom row), one colour scale."""
    weights = finite(t.channel_weights[0], "Mc")
    x = finite(t.x[0], "F")
    most, least = explore.ranked_channels(t.channel_weights[0], n)
    chosen = list(dict.fromkeys(most + least))
    shown, step = fit_cells([x[c] for c in chosen])
    panels = {text("vc.panel", c=c, w=weights[c]): m for c, m in zip(chosen, shown)}
    title = text("vc.grid.title", most=len(most), least=len(least))
    chart = heatmaps(panels, Scale.data(*shown), value=text("vc.activation"), title=title, columns=max(1, len(most)), step=step)
    png = plots.plot(plots.feature_grid, x, chosen, weights=weights, ncols=max(1, len(most)), title=title)
    return Chart(chart.spec, chart.tables, png)


def descriptors(t: CBAMTrace) -> Chart:
    """F^c_avg and F^c_max: each channel squeezed to its mean and its maximum over all positions."""
    series = {name: finite(v[0], name) for name, v in ((text("vc.avgpool"), t.avg_pool),
                                                        (text("vc.maxpool"), t.max_pool)) if v is not None}
    colours = [_colour(AVG if n.startswith("Avg") else MAX) for n in series]
    chart = bars(series, title=text("vc.desc.title"), x_title=text("vc.channel"), y_title=text("vc.desc.y"), colors=colours)
    png = plots.plot(plots.pooled_descriptors, _first(t.avg_pool), _first(t.max_pool))
    return Chart(chart.spec, chart.tables, png)


def _mlp_png(t: CBAMTrace) -> plots.Plot:
    return plots.plot(plots.mlp_branches, _first(t.mlp_hidden_avg), _first(t.mlp_hidden_max), _first(t.mlp_avg),
                      _first(t.mlp_max))


def mlp_hidden(t: CBAMTrace) -> Chart:
    """The shared MLP's hidden layer ReLU(W0 ·) on each descriptor: C/r units, each ≥ 0."""
    series = {name: finite(v[0], name) for name, v in ((text("vc.avg_branch"), t.mlp_hidden_avg),
                                                        (text("vc.max_branch"), t.mlp_hidden_max)) if v is not None}
    chart = bars(series, title=text("vc.hidden.title"), x_title=text("vc.hidden.x"),
                 y_title=text("vc.hidden.y"), colors=[_colour(AVG if "Avg" in n else MAX) for n in series])
    return Chart(chart.spec, chart.tables, _mlp_png(t))


def mlp_outputs(t: CBAMTrace) -> Chart:
    """The shared MLP's outputs W1 ReLU(W0 ·) on each descriptor: one number per channel."""
    series = {name: finite(v[0], name) for name, v in (("MLP(AvgPool F)", t.mlp_avg),
                                                        ("MLP(MaxPool F)", t.mlp_max)) if v is not None}
    chart = bars(series, title=text("vc.out.title"), x_title=text("vc.channel"), y_title=text("vc.out.y"),
                 colors=[_colour(AVG if "Avg" in n else MAX) for n in series])
    return Chart(chart.spec, chart.tables, _mlp_png(t))


def channel_weights(t: CBAMTrace, *, sort: bool = True, select: str | None = "channel") -> Chart:
    """Mc = σ(MLP(avg) + MLP(max)) per channel (sorted by weight: the x axis is the rank), with the
    logit in the tooltip; a click selects a channel (the selection's field is ``label``, the channel)."""
    weights = finite(t.channel_weights[0], "Mc")
    logits = finite(t.channel_logits[0], text("vc.channel_logits"))
    order = np.argsort(-weights, kind="stable") if sort else np.arange(len(weights))
    chart = bars({"Mc": weights[order]}, title=text("vc.weights.title"),
                 x_title=text("vc.rank") if sort else text("vc.channel"), y_title="Mc (0..1)",
                 colors=[plots.matplotlib.colors.to_hex(plots.WEIGHT_COLOR)], labels=order, select=select,
                 y_domain=(0.0, 1.0), rule=0.5)
    table = dict(chart.tables["main"], logit=logits[order].astype(np.float64))
    spec = dict(chart.spec)
    encoding = spec["layer"][0]["encoding"]
    encoding["tooltip"] = [{"field": "label", "type": "quantitative", "title": text("vc.channel")},
                           {"field": "v", "type": "quantitative", "title": "Mc", "format": ".4f"},
                           {"field": "logit", "type": "quantitative", "title": text("vc.logit"), "format": ".4f"}]
    png = plots.plot(plots.channel_weights, t.channel_logits[0], t.channel_weights[0], sort=sort)
    return Chart(spec, {"main": table}, png, select=select)


def before_after(t: CBAMTrace, channels: list[int]) -> Chart:
    """F and F' = Mc ⊗ F of the chosen channels, in pairs, on one colour scale: the dimming by Mc."""
    x, xc = finite(t.x[0], "F"), finite(t.x_channel[0], "F'")
    weights = finite(t.channel_weights[0], "Mc")
    channels = [c for c in channels if 0 <= c < x.shape[0]]
    maps = [m for c in channels for m in (x[c], xc[c])]
    shown, step = fit_cells(maps)
    names = [name for c in channels for name in (text("vc.before", c=c), text("vc.after", w=weights[c], c=c))]
    chart = heatmaps(dict(zip(names, shown)), Scale.data(*shown), value=text("vc.activation"), title=text("vc.ba.title"),
                     columns=2, step=step)
    png = plots.plot(plots.channel_before_after, x, xc, channels, weights)
    return Chart(chart.spec, chart.tables, png)


def _first(value):
    return None if value is None else value[0]
