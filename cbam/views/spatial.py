"""The Spatial attention page's views: the pooled maps, the kernel, the convolution, Ms, Ms over the photo,
and the convolution at one position with its numbers."""

from __future__ import annotations

import numpy as np

from .. import plots
from ..i18n import t as text
from ..modules import CBAM
from ..trace import CBAMTrace
from . import overlay
from .base import Chart, Picture, Scale, finite, fit_cells, heatmaps

__all__ = ["pools", "kernel", "conv_output", "mask", "position_inputs", "position_products", "mask_on_photo",
           "mask_peak"]

def pool_name(pool: str) -> str:
    """"avg" or "max" in words: "mean over channels (F^s_avg)", "max over channels (F^s_max)"."""
    return text(f"vs.pool.{pool}")
NUMBERS_UP_TO = 7
"""Kernels up to k = 7 show each weight in its cell (as the PNG does)."""

KERNEL_PX = 210
"""The width of a kernel-sized panel, the same for every k (up to 7, 30 px a cell): a spec that does
not change with k lets the browser swap the data of a drawn chart when k moves, instead of building it again."""


def pools(t: CBAMTrace) -> Chart:
    """F^s_avg and F^s_max: at every position, the mean and the maximum over the C channels of F'."""
    avg, mx = finite(t.spatial_avg[0, 0], "F^s_avg"), finite(t.spatial_max[0, 0], "F^s_max")
    shown, step = fit_cells([avg, mx])
    chart = heatmaps({text("vs.pools.avg"): shown[0], text("vs.pools.max"): shown[1]},
                     Scale.data(*shown), value=text("base.value"), title=text("vs.pools.title"),
                     columns=2, step=step, shared=False)
    return Chart(chart.spec, chart.tables, plots.plot(plots.spatial_pools, avg, mx))


def kernel(block: CBAM) -> Chart:
    """The 2×k×k weights of the convolution, one panel per input map, each weight in its cell."""
    spatial = block.spatial_attention
    weights = finite(spatial.conv.weight[0], text("vs.the_kernel"))
    k = weights.shape[-1]
    names = [text("vs.kernel.panel", pool=pool, name=pool_name(pool)) for pool in spatial.pool_order.split("-")]
    chart = heatmaps(dict(zip(names, weights)), Scale.signed(weights), value=text("vs.kernel.value"),
                     title=text("vs.kernel.title"), columns=2,
                     numbers=k <= NUMBERS_UP_TO, offsets=True, width=KERNEL_PX)
    png = plots.plot(plots.spatial_kernel, spatial.conv.weight.detach(), pool_order=spatial.pool_order)
    return Chart(chart.spec, chart.tables, png)


def _mask_png(t: CBAMTrace) -> plots.Plot:
    return plots.plot(plots.spatial_mask, t.spatial_logits[0], t.spatial_mask[0])


def conv_output(t: CBAMTrace) -> Chart:
    """The convolution's output at every position (then BatchNorm, where the block has one): Ms's logits."""
    logits = finite(t.spatial_logits[0, 0], text("vs.conv_output"))
    (shown,), step = fit_cells([logits])
    chart = heatmaps({text("vs.conv"): shown}, Scale.signed(shown), value=text("vc.logit"),
                     title=text("vs.conv"), step=step)
    return Chart(chart.spec, chart.tables, _mask_png(t))


def mask(t: CBAMTrace, *, select: str | None = "position") -> Chart:
    """Ms = σ(conv output), in (0, 1) on a fixed scale; a click selects a position (fields x, y)."""
    values = finite(t.spatial_mask[0, 0], "Ms")
    (shown,), step = fit_cells([values])
    title = text("vs.mask.title") + (text("vs.mask.click") if select and step == 1 else "")
    chart = heatmaps({"Ms": shown}, Scale.unit(), value="Ms", title=title,
                     step=step, select=select if step == 1 else None)
    return Chart(chart.spec, chart.tables, _mask_png(t), select=chart.select)


def mask_peak(t: CBAMTrace) -> tuple[int, int]:
    """(row, col) of Ms's largest value."""
    values = finite(t.spatial_mask[0, 0], "Ms")
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row), int(col)


def position_inputs(numbers: dict) -> Chart:
    """The 2×k×k window of the pooled maps the convolution reads at one position (``explore.spatial_computation``)."""
    inputs = numbers["inputs"]
    k = numbers["kernel_size"]
    names = [text("vs.inputs.panel", name=pool_name(pool), col=numbers["col"], row=numbers["row"])
             for pool in numbers["input_names"]]
    chart = heatmaps(dict(zip(names, inputs)), Scale.data(inputs), value=text("vs.input"), title=text("vs.inputs.title"),
                     columns=2, numbers=k <= NUMBERS_UP_TO, offsets=True, width=KERNEL_PX)
    return Chart(chart.spec, chart.tables)


def position_products(numbers: dict) -> Chart:
    """Each input times its kernel weight: the terms whose sum is the convolution's output there."""
    products = numbers["products"]
    k = numbers["kernel_size"]
    names = [text("vs.products.panel", pool=pool) for pool in numbers["input_names"]]
    chart = heatmaps(dict(zip(names, products)), Scale.signed(products), value=text("vs.products.value"),
                     title=text("vs.products.title"), columns=2,
                     numbers=k <= NUMBERS_UP_TO, offsets=True, width=KERNEL_PX)
    return Chart(chart.spec, chart.tables)


def mask_on_photo(photo: np.ndarray, t: CBAMTrace, block: CBAM, *, alpha: float = 0.55, cmap: str = "magma",
                  position: tuple[int, int] | None = None, window: bool = True) -> Picture:
    """Ms upsampled bilinearly over the part of the photo the network saw, at the photo's own shape;
    with ``window``, the k×k window of feature pixels around ``position`` (default: Ms's peak)."""
    values = finite(t.spatial_mask[0, 0], "Ms")
    scale = Scale(cmap, 0.0, 1.0)
    rgb = overlay.on_photo(photo, values, scale, alpha=alpha)
    k = block.spatial_attention.kernel_size
    row, col = position if position is not None else mask_peak(t)
    if window:
        rgb = overlay.mark_window(rgb, values.shape, row, col, k)
    h, w = values.shape
    caption = (text("vs.photo.window", h=h, w=w, k=k, col=col, row=row) if window else text("vs.photo", h=h, w=w))
    top, left, side = overlay.crop_box(*photo.shape[:2])
    square = photo[top:top + side, left:left + side]
    png = plots.plot(plots.mask_overlay, square, values, alpha=alpha, cmap=cmap,
                     kernel_size=k if window else None, at=(row, col))
    return Picture(rgb, caption, overlay.colorbar(scale, text("vs.colorbar")), png, {"Ms": values})
