"""Views of a whole block or network: what each step changes, the arrangements and variants side by
side, every block's mask over the photo and its channel weights, Grad-CAM, and training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .. import explore, plots
from ..i18n import language, term
from ..i18n import t as text
from ..trace import CBAMTrace
from . import overlay
from .base import (
    Chart,
    Picture,
    Scale,
    as_array,
    bars,
    cells_under_pointer,
    colorize,
    finite,
    fit_cells,
    heatmaps,
    pack,
    picture_layer,
    picture_legend,
    png_url,
)

__all__ = ["step_changes", "channel_energy", "compare_outputs", "output_differences", "layer_masks",
           "channel_heatmap", "block_summary", "grad_cam", "training_curves", "ablation_bars", "paper_claims",
           "masks_on_images"]

STAGES = {"F": "#7f7f7f", "F'": "#1f77b4", "F''": "#d62728"}


def step_changes(t: CBAMTrace, step_names: tuple[str, str] | None = None) -> Chart:
    """‖F'−F‖/‖F‖, ‖F''−F'‖/‖F'‖ and ‖F''−F‖/‖F‖, in percent: how far each step moves the features."""
    x, xc, out = (torch.from_numpy(finite(v[0], name)) for v, name in ((t.x, "F"), (t.x_channel, "F'"), (t.out, "F''")))
    changes = np.array([explore.relative_change(x, xc), explore.relative_change(xc, out), explore.relative_change(x, out)]) * 100
    step_names = step_names or (text("vn.channel_attention"), text("vn.spatial_attention"))
    labels = np.array([f"F → F' ({step_names[0]})", f"F' → F'' ({step_names[1]})", text("vn.whole")])
    chart = bars({text("vn.relative_change"): changes}, title=text("vn.changes.title"),
                 x_title=text("vn.step"), y_title=text("vn.changes.y"), colors=["#9467bd"], labels=labels)
    spec = dict(chart.spec)
    spec["layer"] = [*spec["layer"], {"mark": {"type": "text", "dy": -6, "fontSize": 11},
                                      "encoding": {"x": {"field": "mid", "type": "quantitative"},
                                                   "y": {"field": "v", "type": "quantitative"},
                                                   "text": {"field": "v", "type": "quantitative", "format": ".1f"},
                                                   "tooltip": spec["layer"][0]["encoding"]["tooltip"]}}]  # the bar's, on its label too
    spec["layer"][0]["encoding"]["x"]["axis"] = {"values": [0, 1, 2], "labelExpr": "['F → F′','F′ → F″','F → F″'][datum.value]"}
    table = dict(chart.tables["main"], mid=(chart.tables["main"]["x0"] + chart.tables["main"]["x1"]) / 2)
    png = plots.plot(plots.step_changes, t.x[0], t.x_channel[0], t.out[0])
    return Chart(spec, {"main": table}, png)


def channel_energy(t: CBAMTrace) -> Chart:
    """The mean of value² over positions, per channel, for F, F' and F''."""
    series = {name: (finite(v[0], name).astype(np.float64) ** 2).mean(axis=(1, 2))
              for name, v in (("F", t.x), ("F'", t.x_channel), ("F''", t.out))}
    chart = bars(series, title=text("vn.energy.title"), x_title=text("vn.channel"), y_title=text("vn.energy.y"),
                 colors=list(STAGES.values()))
    return Chart(chart.spec, chart.tables, plots.plot(plots.step_changes, t.x[0], t.x_channel[0], t.out[0]))


def compare_outputs(outputs: Mapping[str, torch.Tensor], *, title: str) -> Chart:
    """The channel mean of each output F'' (C, H, W), one panel each, one colour scale."""
    means = [finite(value, text("vn.of", name=name)).mean(axis=0) for name, value in outputs.items()]
    shown, step = fit_cells(means)
    chart = heatmaps(dict(zip(outputs, shown)), Scale.data(*shown), value=text("vn.mean_f2"), title=title,
                     columns=min(4, len(means)), step=step)
    return Chart(chart.spec, chart.tables, plots.plot(plots.compare_outputs, dict(outputs), title=title))


def output_differences(outputs: Mapping[str, torch.Tensor]) -> list[dict[str, Any]]:
    """max |difference| between every pair of full outputs (all C×H×W values), as table rows."""
    arrays = {name: as_array(value) for name, value in outputs.items()}
    return [{"": a, **{b: float(np.abs(arrays[a] - arrays[b]).max()) if arrays[a].shape == arrays[b].shape
                       else None for b in arrays}} for a in arrays]


def layer_masks(photo: np.ndarray, masks: Mapping[str, torch.Tensor], *, alpha: float = 0.55,
                cmap: str = "magma") -> list[Picture]:
    """Each block's Ms over the photo (at the photo's shape, over the part the network saw)."""
    scale = Scale(cmap, 0.0, 1.0)
    pictures = []
    for name, value in masks.items():
        values = finite(value, text("vn.ms_of", name=name))
        pictures.append(Picture(overlay.on_photo(photo, values, scale, alpha=alpha),
                                f"{name} · Ms {values.shape[0]}×{values.shape[1]}", numbers={"Ms": values}))
    return pictures


def layer_masks_png(pixels: np.ndarray, masks: Mapping[str, torch.Tensor], *, alpha: float = 0.55) -> plots.Plot:
    return plots.plot(plots.layer_masks_grid, pixels, dict(masks), alpha=alpha)


def channel_heatmap(weights: Mapping[str, torch.Tensor]) -> Chart:
    """Mc of every block as one row (blocks have different C), 0..1; hover: block, channel, Mc.

    Each row is a picture (one pixel a channel, see ``base.heatmaps``): a CBAM-ResNet-50 has about
    15,000 channels, a mark each. The channels of the row under the pointer get marks, for the tooltip."""
    names = list(weights)
    rows = [finite(weights[n], text("vn.mc_of", name=n)) for n in names]
    scale = Scale.unit()
    labels = [f"{n} (C={len(r)})" for n, r in zip(names, rows)]
    table = {
        "block": np.arange(len(rows)),
        "name": np.array(labels, dtype=object),
        "c": np.array([len(r) for r in rows]),
        "url": np.array([png_url(colorize(r[None, :], scale)) for r in rows], dtype=object),
        "lo": np.zeros(len(rows)), "hi": np.ones(len(rows)),
        "cells": np.array([pack(r) for r in rows], dtype=object),
    }
    widest = max(len(r) for r in rows)
    x = {"type": "quantitative", "title": text("vn.channel_index"), "scale": {"domain": [0, widest], "nice": False}}
    y = {"field": "name", "type": "nominal", "sort": labels, "title": text("vn.cbam_block"),
         "axis": {"labelLimit": 260, "labelOverlap": False}}
    spec = {
        "title": text("vn.heat.title"),
        "data": {"name": "main"},
        "height": {"step": 22} if len(rows) < 40 else 600,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "layer": [
            picture_legend("Mc (0..1)", scale, y=y),
            picture_layer("block", "name", text("vn.block"), {"x": {"datum": 0, **x}, "y": y}, baseline="middle",
                          width={"expr": "scale('x', datum.c)"}, height={"expr": "bandwidth('y')"}),
            {"transform": [*cells_under_pointer("channel"), {"calculate": "datum.channel + 1", "as": "channel_end"}],
             "mark": {"type": "rect", "fill": "transparent"},
             "encoding": {
                 "x": {"field": "channel", **x}, "x2": {"field": "channel_end"}, "y": y,
                 "tooltip": [{"field": "name", "type": "nominal", "title": text("vn.block")},
                             {"field": "channel", "type": "quantitative", "title": text("vn.channel")},
                             {"field": "v", "type": "quantitative", "title": "Mc", "format": ".4f"}],
             }},
        ],
    }
    return Chart(spec, {"main": table}, plots.plot(plots.channel_weights_heatmap, dict(weights)))


def block_summary(rows: Sequence[Mapping[str, Any]]) -> Chart:
    """Per block: the mean of Mc and of Ms and the relative change of F (``report.block_statistics`` rows)."""
    names = np.array([r["block"] for r in rows])
    series = {text("vn.mc_mean"): np.array([r["Mc mean"] for r in rows], dtype=np.float64)}
    if all("Ms mean" in r for r in rows):
        series[text("vn.ms_mean")] = np.array([r["Ms mean"] for r in rows], dtype=np.float64)
    series["‖F''−F‖/‖F‖"] = np.array([r["‖F''−F‖/‖F‖"] for r in rows], dtype=np.float64)
    chart = bars(series, title=text("vn.summary.title"), x_title=text("vn.block"),
                 y_title=text("vn.value"), colors=["#b5367a", "#f8765c", "#7f7f7f"][: len(series)], labels=names)
    spec = dict(chart.spec)
    spec["layer"][0]["encoding"]["x"]["axis"] = {"values": list(range(len(rows))), "labelAngle": -40,
                                                 "labelExpr": "[" + ",".join(repr(str(n)) for n in names) + "][datum.value]"}
    return Chart(spec, chart.tables)


def grad_cam(photo: np.ndarray, heat: torch.Tensor, *, alpha: float = 0.5, cmap: str = "jet",
             pixels: np.ndarray | None = None, title: str = "Grad-CAM") -> Picture:
    """Grad-CAM rescaled to 0..1 (min → 0, max → 1) over the part of the photo the network saw."""
    values = overlay.normalised(finite(heat, "Grad-CAM"))
    scale = Scale(cmap, 0.0, 1.0)
    png = None if pixels is None else plots.plot(plots.heat_overlay, pixels, heat, title=title)
    return Picture(overlay.on_photo(photo, values, scale, alpha=alpha), title,
                   overlay.colorbar(scale, text("vn.relevance")), png, {"relevance": values})


def masks_on_images(images: Sequence[np.ndarray], masks: Sequence[torch.Tensor], titles: Sequence[str], *,
                    alpha: float = 0.55) -> list[Picture]:
    """Each image with its own mask over it (the Training Lab's held-out images)."""
    scale = Scale.unit()
    return [Picture(overlay.on_photo(np.asarray(image), finite(mask, title), scale, alpha=alpha), title)
            for image, mask, title in zip(images, masks, titles)]


def training_curves(history: Sequence[Mapping[str, float]]) -> Chart:
    """Loss and accuracy per epoch; hover for the numbers."""
    epochs = np.array([h["epoch"] for h in history], dtype=np.int64)
    table = {"epoch": np.concatenate([epochs, epochs]),
             "metric": np.array([text("vn.loss")] * len(epochs) + [text("vn.train_acc")] * len(epochs)),
             "v": np.concatenate([[h["loss"] for h in history], [h["accuracy"] for h in history]]).astype(np.float64)}
    spec = {
        "title": text("vn.curves.title"), "data": {"name": "main"},
        "facet": {"field": "metric", "type": "nominal", "title": None}, "columns": 2,
        "spec": {"width": 300, "height": 180, "mark": {"type": "line", "point": True},
                 "encoding": {"x": {"field": "epoch", "type": "quantitative", "axis": {"format": "d", "tickMinStep": 1},
                                    **({} if language() == "en" else {"title": text("vn.epoch")})},
                              "y": {"field": "v", "type": "quantitative", "title": None},
                              "tooltip": [{"field": "epoch", "type": "quantitative",
                                           **({} if language() == "en" else {"title": text("vn.epoch")})},
                                          {"field": "metric", "type": "nominal",
                                           **({} if language() == "en" else {"title": text("vn.metric")})},
                                          {"field": "v", "type": "quantitative", "title": text("vn.value"), "format": ".4f"}]}},
        "resolve": {"scale": {"y": "independent"}},
    }
    return Chart(spec, {"main": table}, plots.plot(plots.training_curves, list(history), title=text("vn.curves.title")))


def ablation_bars(rows: Sequence[Mapping[str, Any]], metric: str = "accuracy", reference: str = "reference") -> Chart:
    """Mean ± std over seeds of one metric per ablation row (percent), the reference row in every group."""
    ref = next((r for r in rows if r["name"] == reference), None)
    labels, groups, means, stds = [], [], [], []
    for axis in [a for a in dict.fromkeys(r["axis"] for r in rows) if a != "reference"]:
        for r in ([ref] if ref is not None else []) + [r for r in rows if r["axis"] == axis]:
            labels.append(f"{term('axis', axis)}: {term('abl', r['value']) if r is not ref else text('vn.reference')}")
            groups.append(text("vn.reference_group") if r is ref else term("axis", axis))
            means.append(100 * r[metric]["mean"])
            stds.append(100 * (r[metric].get("std") or 0.0))
    m, s = np.array(means, dtype=np.float64), np.array(stds, dtype=np.float64)
    table = {"row": np.array(labels), "group": np.array(groups), "v": m, "low": m - s, "high": m + s, "std": s}
    tooltip = [{"field": "row", "type": "nominal", **({} if language() == "en" else {"title": text("vn.row")})},
               {"field": "v", "type": "quantitative", "title": text("vn.mean_pct"), "format": ".1f"},
               {"field": "std", "type": "quantitative", "title": text("vn.std_pct"), "format": ".1f"}]
    y = {"field": "row", "type": "nominal", "sort": labels, "title": None}
    spec = {
        "title": text("vn.ablation.title", metric=text(f"metric.{metric}")), "data": {"name": "main"},
        "height": {"step": 22},
        "layer": [
            {"mark": "bar", "encoding": {"y": y, "x": {"field": "v", "type": "quantitative", "title": "%"},
                                         "color": {"field": "group", "type": "nominal", "title": None},
                                         "tooltip": tooltip}},
            {"mark": {"type": "rule"}, "encoding": {"y": y, "x": {"field": "low", "type": "quantitative"},
                                                    "x2": {"field": "high"}}},
        ],
    }
    return Chart(spec, {"main": table}, plots.plot(plots.ablation_bars, list(rows), metric))


PAPER_CLAIMS = (  # the paper's table, the row it finds better (the reference design), the rows that row beats
    ("attention", "reference", ("baseline",)),
    ("pooling", "reference", ("pool-avg", "pool-max")),
    ("kernel", "reference", ("kernel-3",)),
    ("arrangement", "reference", ("arrangement-spatial-channel", "arrangement-parallel")),
)


def paper_claims(rows: Sequence[Mapping[str, Any]], metric: str = "accuracy") -> list[dict[str, str]]:
    """The paper's orderings (its design beats each variant) checked against the ablation rows' means over
    seeds, one table row per pair. A gap smaller than the larger of the two standard deviations is
    "within the seeds' spread": the order is a hint, not a finding."""
    by_name = {r["name"]: r for r in rows}
    found = []
    for table, better, others in PAPER_CLAIMS:
        for other in (o for o in others if better in by_name and o in by_name):
            b, o = by_name[better][metric], by_name[other][metric]
            b_mean, b_std, o_mean, o_std = b["mean"], b.get("std") or 0.0, o["mean"], o.get("std") or 0.0
            gap = b_mean - o_mean
            verdict = ("agree" if gap > 0 else "disagree") + ("" if abs(gap) > max(b_std, o_std) else "_within")
            found.append({
                text("pab.col.comparison"): text("pab.beats", better=term("abl", by_name[better]["value"]),
                                                 other=term("abl", by_name[other]["value"])),
                text("pab.col.paper"): text(f"pab.table.{table}"),
                text("pab.col.ours"): f"{100 * b_mean:.1f} ± {100 * b_std:.1f} / {100 * o_mean:.1f} ± {100 * o_std:.1f} %",
                text("pab.col.verdict"): text(f"pab.v.{verdict}"),
            })
    return found


def stride_note(photo_shape: tuple[int, int], input_size: int, feature: int | None = None) -> str:
    """How the photo became the model's input and, given a feature-map size, how many photo pixels one
    feature pixel covers."""
    h, w = photo_shape
    side = min(h, w)
    note = text("stride_note", w=w, h=h, side=side, size=input_size)
    if feature is None:
        return note
    return note + text("stride_note.pixel", px=side / max(1, feature), stride=explore.feature_stride(input_size, feature))
