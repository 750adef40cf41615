"""Figures that show CBAM step by step, made to be projected in a classroom.

Every function here is pure: it takes arrays (NumPy arrays or torch tensors, on any device) and
returns a new ``matplotlib.figure.Figure``. Figures are built with ``Figure(...)`` directly, never
with ``pyplot``, so nothing global is created or left open; ``figure_to_png`` renders one to PNG
bytes (for a download button), and Streamlit's ``st.pyplot(fig)`` shows one as is.

Conventions, the same in every figure:

* features (F, F', F'', pooled maps) use "viridis" with the data's own range;
* values in (0, 1) (the channel weights Mc, the spatial mask Ms) use "magma", fixed to 0..1;
* signed values (logits, MLP outputs, the conv kernel) use "RdBu_r", centred at 0 with symmetric
  limits, so white always means 0, red positive and blue negative;
* every image has a colour bar, every axis says what it measures, no text is smaller than 10 pt.

Feature maps may come with a leading batch dimension of size 1, as they do in a ``CBAMTrace``
(e.g. ``trace.x`` is (1, C, H, W) and ``trace.channel_weights`` is (1, C)); it is dropped.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import patheffects
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from matplotlib.path import Path
from matplotlib.ticker import FuncFormatter, MaxNLocator, ScalarFormatter

from . import fonts, i18n
from .i18n import t

__all__ = [
    "feature_grid",
    "pooled_descriptors",
    "mlp_branches",
    "channel_weights",
    "channel_before_after",
    "spatial_pools",
    "spatial_kernel",
    "spatial_mask",
    "mask_overlay",
    "step_changes",
    "compare_outputs",
    "layer_masks_grid",
    "channel_weights_heatmap",
    "pipeline_diagram",
    "training_curves",
    "heat_overlay",
    "sample_grid",
    "ablation_bars",
    "masks_on_images",
    "figure_to_png",
]

ArrayLike = Any  # a NumPy array, a torch tensor, or anything np.asarray accepts

# Text sizes in points. Nothing is drawn smaller than TICK_SIZE.
TITLE_SIZE = 14
PANEL_TITLE_SIZE = 12
LABEL_SIZE = 11
TICK_SIZE = 10

FEATURE_CMAP = "viridis"
UNIT_CMAP = "magma"  # values in (0, 1)
SIGNED_CMAP = "RdBu_r"

# Above this many channels (or hidden units), bars become a step line: 2048 bars are unreadable.
BAR_LIMIT = 64
# Above this many, step lines become binned means with a min..max band, about BINS bins wide.
STEP_LIMIT = 512
BINS = 256
# Up to this many channels, a sorted bar plot of Mc names the channel above each bar.
ANNOTATE_CHANNELS_LIMIT = 32
# Kernel cells show their value up to this kernel size.
ANNOTATE_KERNEL_LIMIT = 7

AVG_COLOR = "tab:blue"
MAX_COLOR = "tab:orange"
POSITIVE_COLOR = matplotlib.colormaps[SIGNED_CMAP](0.85)
NEGATIVE_COLOR = matplotlib.colormaps[SIGNED_CMAP](0.15)
WEIGHT_COLOR = matplotlib.colormaps[UNIT_CMAP](0.4)
STAGE_COLORS = {"F": "tab:gray", "F'": "tab:blue", "F''": "tab:red"}
WINDOW_COLOR = "cyan"


# --------------------------------------------------------------------------------------------
# Array helpers
# --------------------------------------------------------------------------------------------


def _np(a: ArrayLike) -> np.ndarray:
    """``a`` as a float32 NumPy array: a torch tensor is detached and moved to the CPU first."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=np.float32)


def _with_ndim(a: ArrayLike, ndim: int, name: str, shape: str) -> np.ndarray:
    """``a`` as a float32 array of ``ndim`` dimensions, dropping leading dimensions of size 1
    (a batch of one, a single-channel axis). Raises ValueError naming ``shape`` otherwise."""
    array = _np(a)
    given_shape = array.shape
    while array.ndim > ndim and array.shape[0] == 1:
        array = array[0]
    if array.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape} (a leading batch of 1 is allowed), got {given_shape}")
    return array


def _vector(a: ArrayLike, name: str) -> np.ndarray:
    return _with_ndim(a, 1, name, "(C,)")


def _map2d(a: ArrayLike, name: str) -> np.ndarray:
    return _with_ndim(a, 2, name, "(H, W)")


def _feature_map(a: ArrayLike, name: str) -> np.ndarray:
    return _with_ndim(a, 3, name, "(C, H, W)")


def _kernel(a: ArrayLike) -> np.ndarray:
    kernel = _with_ndim(a, 3, "kernel", "(2, k, k)")
    if kernel.shape[0] != 2 or kernel.shape[1] != kernel.shape[2]:
        raise ValueError(f"kernel must have shape (2, k, k) or (1, 2, k, k), got {_np(a).shape}")
    return kernel


def _rgb_image(image: ArrayLike) -> np.ndarray:
    """An image as float RGB in [0, 1], shape (h, w, 3). Accepts uint8 or float (0..1 or 0..255)
    arrays, tensors or PIL images, shaped (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) (alpha dropped)."""
    raw = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    is_integer = np.issubdtype(raw.dtype, np.integer)
    rgb = raw.astype(np.float32)
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must have shape (h, w, 3), (h, w, 4), (h, w, 1) or (h, w), got {raw.shape}")
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    rgb = rgb[:, :, :3]
    if is_integer or (rgb.size and np.nanmax(rgb) > 1.0):
        rgb = rgb / 255.0
    return np.clip(np.nan_to_num(rgb), 0.0, 1.0)


def _resize_bilinear(map2d: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling (as ``torch.nn.functional.interpolate``, align_corners=False)."""
    tensor = torch.from_numpy(np.ascontiguousarray(map2d, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def _channel_list(channels: Sequence[int], num_channels: int) -> list[int]:
    chosen = [int(c) for c in channels]
    for c in chosen:
        if not 0 <= c < num_channels:
            raise ValueError(f"channel {c} is out of range: the feature map has channels 0..{num_channels - 1}")
    return chosen


def _finite_values(*arrays: np.ndarray) -> np.ndarray:
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    return values[np.isfinite(values)]


def _data_norm(*arrays: np.ndarray) -> Normalize:
    """A colour scale spanning the data. A constant map gets a small range around its value, so the
    colour bar still has a range (a zero-width one makes matplotlib draw a broken bar)."""
    values = _finite_values(*arrays)
    if values.size == 0:
        return Normalize(0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-9 * max(1.0, abs(low), abs(high)):
        pad = 0.5 if low == 0 else 0.05 * abs(low)
        low, high = low - pad, high + pad
    return Normalize(low, high)


def _symmetric_norm(*arrays: np.ndarray) -> Normalize:
    """A colour scale centred at 0 with limits ±max|value| (±1 when everything is 0)."""
    values = _finite_values(*arrays)
    limit = float(np.abs(values).max()) if values.size else 0.0
    if not limit > 0:
        limit = 1.0
    return Normalize(-limit, limit)


def _unit_norm() -> Normalize:
    return Normalize(0.0, 1.0)


def _relative_change(after: np.ndarray, before: np.ndarray) -> float:
    """‖after − before‖ / ‖before‖; NaN when ‖before‖ = 0 and something changed, 0 when nothing did."""
    change = float(np.linalg.norm((after - before).ravel()))
    size = float(np.linalg.norm(before.ravel()))
    if size > 0:
        return change / size
    return 0.0 if change == 0 else math.nan


# --------------------------------------------------------------------------------------------
# Figure helpers
# --------------------------------------------------------------------------------------------


def _in_language_fonts(builder: Callable[..., Figure]) -> Callable[..., Figure]:
    """``builder`` with its texts in fonts that have the current language's glyphs (``cbam.fonts``):
    a text takes its font when it is made, so the whole figure is built in those settings."""

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(fonts.font_settings()):
            return builder(*args, **kwargs)

    return build


def _figure(width: float, height: float, title: str, *, maps: bool = False) -> Figure:
    """A new figure with constrained layout and a title; pyplot never sees it.

    ``maps=True`` (panels of images, whose aspect ratio is fixed) takes matplotlib's "compressed"
    layout: constrained layout can measure the labels from where an image panel was last drawn
    rather than from its cell, so that each new drawing of the figure moves the panels further and
    cuts labels off (seen on the mask overlay and the spatial pools)."""
    fig = Figure(figsize=(width, height), layout="compressed" if maps else "constrained")
    fig.suptitle(title, fontsize=TITLE_SIZE)
    return fig


def _message_figure(title: str, message: str) -> Figure:
    """A figure that only says why there is nothing to draw (e.g. no channel selected)."""
    fig = _figure(8, 2.5, title)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=LABEL_SIZE, transform=ax.transAxes)
    return fig


def _tick_size(ax) -> None:
    """Tick labels of TICK_SIZE points. Where matplotlib's settings already give that size (the
    default: 10 pt), nothing is done: ``tick_params`` restyles every tick and costs more than
    drawing the panel."""
    from matplotlib.font_manager import FontProperties

    sizes = (matplotlib.rcParams["xtick.labelsize"], matplotlib.rcParams["ytick.labelsize"])
    if min(FontProperties(size=size).get_size_in_points() for size in sizes) < TICK_SIZE:
        ax.tick_params(labelsize=TICK_SIZE)


def _style(ax, *, title: str | None = None, xlabel: str | None = None, ylabel: str | None = None) -> None:
    """Panel title, axis labels and tick labels at projector-friendly sizes."""
    if title is not None:
        # y given: matplotlib then skips moving the title above top tick labels (there are none here),
        # a search over every tick label that costs 20-40 ms per panel
        ax.set_title(title, fontsize=PANEL_TITLE_SIZE, y=1.0)
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    _tick_size(ax)


def _colorbar(fig: Figure, mappable, ax, label: str, *, data: tuple[np.ndarray, ...] = (), length: float = 3.0):
    """A colour bar for ``mappable`` right of ``ax`` (one axes or a list sharing the scale), labelled
    ``label`` and, when ``data`` is given, the range of its finite values.

    Tick labels stay short: a scale below 0.01 or from 10⁴ up moves its power of ten to the label
    ("activation (×1e-4)"). A label longer than about ``length`` inches (the bar's height) is
    written on two lines."""
    low, high = mappable.norm.vmin, mappable.norm.vmax
    largest = max(abs(low), abs(high)) if low is not None and high is not None else 1.0
    power = math.floor(math.log10(largest)) if largest > 0 and not 1e-2 <= largest < 1e4 else 0
    if power:
        label = f"{label} (×1e{power})"
    if data:
        values = _finite_values(*data) / 10**power
        label += f" [{values.min():.3g}, {values.max():.3g}]" if values.size else f" [{t('plot.no_finite')}]"
    # one line along the bar where it fits (about 0.09 in per character at 11 pt), else two
    if len(label) * 0.09 > length + 0.3 and " " in label:
        middle = len(label) // 2
        cut = min((i for i, c in enumerate(label) if c == " "), key=lambda i: abs(i - middle))
        label = label[:cut] + "\n" + label[cut + 1:]
    formatter = FuncFormatter(lambda value, _: f"{value / 10 ** power:.3g}") if power else None
    cbar = fig.colorbar(mappable, ax=ax, format=formatter)
    cbar.set_label(label, fontsize=LABEL_SIZE)
    _tick_size(cbar.ax)
    return cbar


def _integer_ticks(ax, *, x: bool = True, y: bool = True, nbins: int | str = "auto") -> None:
    """Ticks only at whole numbers (channel, pixel, epoch), even on a range of one value."""
    if x:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True, min_n_ticks=1))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True, min_n_ticks=1))


def _show_map(ax, data: np.ndarray, *, cmap: str | Colormap, norm: Normalize, interpolation: str = "nearest",
              nbins: int = 5):
    """Draw a 2D map pixel by pixel (feature maps are small; smoothing would hide their grid), with
    ticks at about ``nbins`` whole pixels per axis. The ticks are placed once, here: a locator would
    search for them again each time the layout measures the panel."""
    image = ax.imshow(data, cmap=cmap, norm=norm, interpolation=interpolation)
    locator = MaxNLocator(nbins=nbins, integer=True, min_n_ticks=1)
    for axis, size in ((ax.xaxis, data.shape[1]), (ax.yaxis, data.shape[0])):
        axis.set_ticks([t for t in locator.tick_values(-0.5, size - 0.5) if -0.5 <= t <= size - 0.5])
    return image


def _grid_shape(count: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(int(ncols), count))
    return math.ceil(count / ncols), ncols


def _panel_grid(fig: Figure, count: int, ncols: int) -> list:
    """``count`` axes laid out in rows of ``ncols``; the unused cells of the last row are removed."""
    nrows, ncols = _grid_shape(count, ncols)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for extra in axes[count:]:
        extra.remove()
    axes = axes[:count]
    for index, ax in enumerate(axes):
        if index % ncols:  # only the first column keeps its y tick labels
            ax.tick_params(labelleft=False)
    return axes


def _grid_size(count: int, ncols: int, aspect: float, *, title_lines: int = 1) -> tuple[float, float]:
    """Figure (width, height) in inches for a grid of image panels with aspect = height / width."""
    nrows, ncols = _grid_shape(count, ncols)
    aspect = min(max(aspect, 0.25), 4.0)
    panel_width = min(2.4, 8.4 / ncols)
    width = panel_width * ncols + 1.4
    height = nrows * (panel_width * aspect + 0.25 * title_lines + 0.35) + 1.1
    return width, height


def _series_plot(ax, series: list[tuple[np.ndarray, str, Any]]) -> None:
    """Plot several same-length series against their index (channel or hidden unit).

    ``series`` holds (values, legend label, colour); the colour may be a list (one per bar). How
    depends on the length n, so that even C = 2048 stays readable:

    * n ≤ BAR_LIMIT: grouped bars, one group per index;
    * n ≤ STEP_LIMIT: step lines (hundreds of bars blur into noise);
    * above: the indices are binned (about BINS bins); a line shows each bin's mean and a
      shaded band its min..max, so no extreme value is lost.
    """
    length = len(series[0][0])
    index = np.arange(length)
    if length <= BAR_LIMIT:
        width = 0.8 / len(series)
        for position, (values, label, color) in enumerate(series):
            offset = (position - (len(series) - 1) / 2) * width
            ax.bar(index + offset, values, width=width, label=label, color=color)
    elif length <= STEP_LIMIT:
        for values, label, color in series:
            ax.step(index, values, where="mid", label=label, color=_line_color(color), linewidth=1.2, alpha=0.9)
    else:
        bin_size = math.ceil(length / BINS)
        for position, (values, label, color) in enumerate(series):
            centres, means, lows, highs = _binned(values, bin_size)
            color = _line_color(color)
            ax.fill_between(
                centres,
                lows,
                highs,
                color=color,
                alpha=0.25,
                linewidth=0,
                label=t("plot.bin_band") if position == 0 else None,
            )
            ax.plot(centres, means, color=color, linewidth=1.5, label=t("plot.bin_mean", label=label, size=bin_size))
    ax.set_xlim(-0.6, length - 0.4)
    _integer_ticks(ax, y=False)
    ax.yaxis.set_major_formatter(_short_numbers())


def _short_numbers() -> ScalarFormatter:
    """Tick labels of at most about five characters: below 0.01 or from 1000 up, the axis moves the
    power of ten to its end ("1e4"), so a y axis of −25000..25000 does not take a wide margin."""
    formatter = ScalarFormatter(useMathText=False)  # "1e4", not mathtext: parsing that costs 50 ms a figure
    formatter.set_powerlimits((-2, 3))
    return formatter


def _line_color(color: Any) -> Any:
    """A single colour for a line: a list of per-bar colours falls back to dark grey."""
    return "0.25" if isinstance(color, list) else color


def _binned(values: np.ndarray, bin_size: int) -> tuple[np.ndarray, ...]:
    """Centres, means, minima and maxima of consecutive bins of ``bin_size`` values (the last bin
    may be shorter)."""
    num_bins = math.ceil(len(values) / bin_size)
    padded = np.full(num_bins * bin_size, np.nan, dtype=np.float64)
    padded[: len(values)] = values
    bins = padded.reshape(num_bins, bin_size)
    starts = np.arange(num_bins) * bin_size
    counts = np.minimum(bin_size, len(values) - starts)
    return starts + (counts - 1) / 2, np.nanmean(bins, axis=1), np.nanmin(bins, axis=1), np.nanmax(bins, axis=1)


def _legend(ax, **kwargs) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=TICK_SIZE, **kwargs)


# --------------------------------------------------------------------------------------------
# 1. Feature maps
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def feature_grid(
    features: ArrayLike,
    channels: Sequence[int],
    *,
    weights: ArrayLike | None = None,
    title: str | None = None,
    ncols: int = 8,
    cmap: str | Colormap = FEATURE_CMAP,
) -> Figure:
    """Chosen channels of a feature map, one panel each, on one shared colour scale.

    Args:
        features: (C, H, W) (or (1, C, H, W)).
        channels: indices of the channels to show, in the order given.
        weights: optional channel weights Mc, (C,); each panel title then reads "ch 12\\nMc=0.93".
        ncols: panels per row.
    """
    maps = _feature_map(features, "features")
    num_channels, height, width = maps.shape
    chosen = _channel_list(channels, num_channels)
    channel_weights_ = None if weights is None else _vector(weights, "weights")
    if channel_weights_ is not None and channel_weights_.shape[0] != num_channels:
        raise ValueError(f"weights has {channel_weights_.shape[0]} entries but features has {num_channels} channels")
    title = title or t("plot.grid.title")
    if not chosen:
        return _message_figure(title, t("plot.no_channels"))

    nrows, ncols = _grid_shape(len(chosen), ncols)
    panel_width = min(2.4, 8.4 / ncols)
    panel_height = panel_width * min(max(height / width, 0.25), 4.0)
    title_lines = 2 if channel_weights_ is not None else 1
    row_height = 0.26 * title_lines + panel_height + 0.3
    fig = _figure(ncols * (panel_width + 0.12) + 2.3, nrows * row_height + 0.95, title, maps=True)
    axes = _panel_grid(fig, len(chosen), ncols)
    norm = _data_norm(maps[chosen])
    image = None
    for ax, channel in zip(axes, chosen):
        image = _show_map(ax, maps[channel], cmap=cmap, norm=norm, nbins=3 if panel_width < 1.5 else 5)
        weight_text = "" if channel_weights_ is None else f"\nMc={channel_weights_[channel]:.2f}"
        _style(ax, title=t("plot.channel", c=channel) + weight_text)
    fig.supxlabel(t("plot.x_feature"), fontsize=LABEL_SIZE)
    fig.supylabel(t("plot.y_feature"), fontsize=LABEL_SIZE)
    _colorbar(fig, image, axes, t("plot.activation"), data=(maps[chosen],), length=nrows * row_height)
    return fig


# --------------------------------------------------------------------------------------------
# 2–4. Channel attention: pooled descriptors, the shared MLP, the weights Mc
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def pooled_descriptors(
    avg_pool: ArrayLike | None,
    max_pool: ArrayLike | None,
    *,
    title: str | None = None,
) -> Figure:
    """F^c_avg and F^c_max, each channel squeezed to one number, side by side per channel.

    Both are (C,) (or (1, C)); either may be None when the block does not use that pooling.
    """
    title = title or t("plot.desc.title")
    series = []
    if avg_pool is not None:
        series.append((_vector(avg_pool, "avg_pool"), t("plot.desc.avg"), AVG_COLOR))
    if max_pool is not None:
        series.append((_vector(max_pool, "max_pool"), t("plot.desc.max"), MAX_COLOR))
    if not series:
        return _message_figure(title, t("plot.desc.none"))
    if len({len(values) for values, _, _ in series}) > 1:
        raise ValueError("avg_pool and max_pool must have the same length C")

    fig = _figure(10, 4.2, title)
    ax = fig.add_subplot()
    _series_plot(ax, series)
    ax.axhline(0, color="0.3", linewidth=0.8)
    _style(ax, xlabel=t("plot.channel_index"), ylabel=t("plot.desc.y"))
    _legend(ax)
    return fig


@_in_language_fonts
def mlp_branches(
    hidden_avg: ArrayLike | None,
    hidden_max: ArrayLike | None,
    mlp_avg: ArrayLike | None,
    mlp_max: ArrayLike | None,
    *,
    title: str | None = None,
) -> Figure:
    """The shared MLP on both descriptors: hidden activations ReLU(W0·) (C/r,) on the left, outputs
    W1 ReLU(W0·) (C,) on the right. Any argument may be None (that pooling is not used): its
    series is left out."""
    title = title or t("plot.mlp.title")
    hidden = [
        (_vector(values, name), label, color)
        for values, name, label, color in (
            (hidden_avg, "hidden_avg", t("plot.mlp.avg_branch"), AVG_COLOR),
            (hidden_max, "hidden_max", t("plot.mlp.max_branch"), MAX_COLOR),
        )
        if values is not None
    ]
    outputs = [
        (_vector(values, name), label, color)
        for values, name, label, color in (
            (mlp_avg, "mlp_avg", "MLP(AvgPool F)", AVG_COLOR),
            (mlp_max, "mlp_max", "MLP(MaxPool F)", MAX_COLOR),
        )
        if values is not None
    ]
    if not hidden and not outputs:
        return _message_figure(title, t("plot.mlp.none"))

    fig = _figure(10, 4.4, title)
    ax_hidden, ax_out = fig.subplots(1, 2, width_ratios=[1, 2.2])
    for ax, series, panel_title, xlabel, ylabel in (
        (ax_hidden, hidden, t("plot.mlp.hidden"), t("plot.mlp.hidden_x"), t("plot.mlp.hidden_y")),
        (ax_out, outputs, t("plot.mlp.output"), t("plot.channel_index"), t("plot.mlp.output_y")),
    ):
        _style(ax, title=panel_title, xlabel=xlabel, ylabel=ylabel)
        if not series:
            ax.text(0.5, 0.5, t("plot.mlp.not_recorded"), ha="center", va="center", fontsize=LABEL_SIZE, transform=ax.transAxes)
            continue
        if len({len(values) for values, _, _ in series}) > 1:
            raise ValueError(f"the two branches of '{panel_title}' must have the same length")
        _series_plot(ax, series)
        ax.axhline(0, color="0.3", linewidth=0.8)
        _legend(ax)
    return fig


@_in_language_fonts
def channel_weights(
    logits: ArrayLike,
    weights: ArrayLike,
    *,
    sort: bool = False,
    title: str | None = None,
) -> Figure:
    """The channel logits (the sum of the MLP outputs) on top and Mc = σ(logits) in (0, 1) below.

    With ``sort=True`` channels are ordered by weight, highest first, and the x axis is the rank;
    up to 32 channels, each bar is then labelled with its channel index.
    """
    logit_values = _vector(logits, "logits")
    weight_values = _vector(weights, "weights")
    if logit_values.shape != weight_values.shape:
        raise ValueError(
            f"logits and weights must have the same length, got {logit_values.shape} and {weight_values.shape}"
        )
    if title is None:
        title = t("plot.weights.title")
    num_channels = len(weight_values)
    order = np.argsort(-weight_values, kind="stable") if sort else np.arange(num_channels)
    logit_values, weight_values = logit_values[order], weight_values[order]
    xlabel = t("plot.weights.rank") if sort else t("plot.channel_index")

    fig = _figure(10, 6.2, title)
    # the panels share the x axis: only the lower one has tick labels
    ax_logits, ax_weights = fig.subplots(2, 1, sharex=True)
    signs = [POSITIVE_COLOR if v >= 0 else NEGATIVE_COLOR for v in logit_values]
    _series_plot(ax_logits, [(logit_values, "logit", signs)])
    ax_logits.axhline(0, color="0.3", linewidth=0.8)
    _style(ax_logits, title=t("plot.weights.logits"), ylabel="logit")

    _series_plot(ax_weights, [(weight_values, "Mc", WEIGHT_COLOR)])
    ax_weights.axhline(0.5, color="0.3", linewidth=1.0, linestyle="--", label="σ(0) = 0.5")
    if sort and num_channels <= ANNOTATE_CHANNELS_LIMIT:
        for rank, (channel, value) in enumerate(zip(order, weight_values)):
            ax_weights.text(rank, value + 0.02, str(channel), ha="center", va="bottom", fontsize=TICK_SIZE)
        ax_weights.set_title(t("plot.weights.numbered"), fontsize=PANEL_TITLE_SIZE, y=1.0)
    else:
        ax_weights.set_title("Mc = σ(logit)", fontsize=PANEL_TITLE_SIZE, y=1.0)
    # Head room above 1 keeps the channel numbers and the legend clear of the bars.
    ax_weights.set_ylim(0, 1.25)
    ax_weights.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    _style(ax_weights, xlabel=xlabel, ylabel="Mc (0..1)")
    _legend(ax_weights, loc="upper right", ncols=3)
    if num_channels > STEP_LIMIT:  # explain the binned line and band on the top panel too
        _legend(ax_logits, loc="upper right", ncols=2)
    return fig


@_in_language_fonts
def channel_before_after(
    x: ArrayLike,
    x_channel: ArrayLike,
    channels: Sequence[int],
    weights: ArrayLike | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """One row per chosen channel: F on the left, F' = Mc ⊗ F on the right, on the same colour
    scale so the dimming by Mc is visible. x and x_channel are (C, H, W); weights (C,) is optional."""
    title = title or t("plot.ba.title")
    before = _feature_map(x, "x")
    after = _feature_map(x_channel, "x_channel")
    if before.shape != after.shape:
        raise ValueError(f"x and x_channel must have the same shape, got {before.shape} and {after.shape}")
    chosen = _channel_list(channels, before.shape[0])
    channel_weights_ = None if weights is None else _vector(weights, "weights")
    if channel_weights_ is not None and channel_weights_.shape[0] != before.shape[0]:
        raise ValueError(f"weights has {channel_weights_.shape[0]} entries but x has {before.shape[0]} channels")
    if not chosen:
        return _message_figure(title, t("plot.no_channels"))

    height, width = before.shape[1:]
    panel_width = 2.6
    panel_height = panel_width * min(max(height / width, 0.25), 4.0)
    row_height = 0.3 + panel_height + 0.65
    fig = _figure(2 * (panel_width + 0.1) + 2.6, len(chosen) * row_height + 0.6, title, maps=True)
    fig.get_layout_engine().set(h_pad=0.1)  # rows apart: a row's x label, then the next row's titles
    for row_axes, channel in zip(fig.subplots(len(chosen), 2, squeeze=False), chosen):
        factor = "Mc" if channel_weights_ is None else f"{channel_weights_[channel]:.2f}"
        norm = _data_norm(before[channel], after[channel])
        image = None
        for ax, data, panel_title in zip(row_axes, (before[channel], after[channel]),
                                         (t("plot.ba.before", c=channel), t("plot.ba.after", factor=factor, c=channel))):
            image = _show_map(ax, data, cmap=FEATURE_CMAP, norm=norm, nbins=4)
            _style(ax, title=panel_title, xlabel=t("plot.x_feature"))
        weight_text = "" if channel_weights_ is None else f", Mc = {channel_weights_[channel]:.2f}"
        row_axes[0].set_ylabel(f"{t('plot.channel', c=channel)}{weight_text}\n{t('plot.y_feature')}", fontsize=LABEL_SIZE)
        row_axes[1].tick_params(labelleft=False)
        _colorbar(fig, image, list(row_axes), t("plot.activation"), length=panel_height)
    return fig


# --------------------------------------------------------------------------------------------
# 6–9. Spatial attention: pooled maps, the kernel, the mask, the mask over the image
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def spatial_pools(
    spatial_avg: ArrayLike,
    spatial_max: ArrayLike,
    *,
    title: str | None = None,
) -> Figure:
    """F^s_avg and F^s_max, (H, W) each (or (1, H, W) / (1, 1, H, W)), side by side, each with its
    own colour bar."""
    avg_map = _map2d(spatial_avg, "spatial_avg")
    max_map = _map2d(spatial_max, "spatial_max")
    fig, axes, bar_length = _two_maps(title or t("plot.pools.title"), avg_map.shape)
    for ax, data, panel_title in zip(
        axes,
        (avg_map, max_map),
        (t("plot.pools.avg", symbol=_pooled_symbol("avg")), t("plot.pools.max", symbol=_pooled_symbol("max"))),
    ):
        image = _show_map(ax, data, cmap=FEATURE_CMAP, norm=_data_norm(data))
        _style(ax, title=panel_title, xlabel=t("plot.x_feature"), ylabel=t("plot.y_feature"))
        _colorbar(fig, image, ax, t("plot.value"), data=(data,), length=bar_length)
    return fig


def _pooled_symbol(pool: str) -> str:
    """F^s_avg or F^s_max: as mathtext in English; as plain text in other languages, whose glyphs
    mathtext's fonts do not have (it does not fall back to another font)."""
    return f"$F^s_{{{pool}}}$" if i18n.language() == i18n.DEFAULT else f"F^s_{pool}"


def _two_maps(title: str, shape: tuple[int, int]) -> tuple[Figure, list, float]:
    """A figure with two map panels side by side, each with room for its own colour bar; also
    the panels' height in inches (for the colour bars' labels)."""
    height, width = shape
    panel_width = 3.0
    # at least 2.2 in tall, for the colour bar's label: a wide map is drawn centred in its panel
    panel_height = max(panel_width * min(max(height / width, 0.25), 4.0), 2.2)
    fig = _figure(2 * (panel_width + 2.1), panel_height + 1.5, title, maps=True)
    return fig, list(fig.subplots(1, 2)), panel_height


@_in_language_fonts
def spatial_kernel(kernel: ArrayLike, *, pool_order: str = "avg-max", title: str | None = None) -> Figure:
    """The weights of the k×k convolution, (2, k, k) (or (1, 2, k, k)): one panel per input map.

    ``pool_order`` names which pooled map each input channel of the kernel sees ("avg-max": the
    first is the channel-mean map). Up to k = 7, each cell shows its value.
    """
    if pool_order not in ("avg-max", "max-avg"):
        raise ValueError(f"pool_order must be 'avg-max' or 'max-avg', got {pool_order!r}")
    weights = _kernel(kernel)
    size = weights.shape[1]
    if title is None:
        title = t("plot.kernel.title", k=size)
    names = {"avg": t("plot.kernel.avg_map"), "max": t("plot.kernel.max_map")}
    order = pool_order.split("-")

    panel = 3.5
    fig = _figure(2 * (panel + 0.9) + 1.4, panel + 1.8, title, maps=True)
    axes = list(fig.subplots(1, 2))
    norm = _symmetric_norm(weights)
    offsets = np.arange(size) - size // 2
    tick_step = max(1, math.ceil(size / 11))
    image = None
    for ax, plane, pool in zip(axes, weights, order):
        image = _show_map(ax, plane, cmap=SIGNED_CMAP, norm=norm)
        ticks = np.arange(0, size, tick_step)
        ax.set_xticks(ticks, [str(o) for o in offsets[ticks]])
        ax.set_yticks(ticks, [str(o) for o in offsets[ticks]])
        _style(
            ax,
            title=t("plot.kernel.panel", pool=pool, map=names[pool]),
            xlabel=t("plot.kernel.x"),
            ylabel=t("plot.kernel.y"),
        )
        if size <= ANNOTATE_KERNEL_LIMIT:
            limit = norm.vmax
            for (row, col), value in np.ndenumerate(plane):
                color = "white" if abs(value) > 0.6 * limit else "black"
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=TICK_SIZE, color=color)
    _colorbar(fig, image, axes, t("plot.kernel.weight"), length=panel)
    return fig


@_in_language_fonts
def spatial_mask(logits: ArrayLike, mask: ArrayLike, *, title: str | None = None) -> Figure:
    """The conv output (signed logits, RdBu_r) and Ms = σ(logits) (magma, 0..1), side by side.
    Both (H, W) (or with leading dimensions of size 1)."""
    logit_map = _map2d(logits, "logits")
    mask_map = _map2d(mask, "mask")
    if title is None:
        title = t("plot.mask.title")
    fig, (ax_logits, ax_mask), bar_length = _two_maps(title, mask_map.shape)
    image = _show_map(ax_logits, logit_map, cmap=SIGNED_CMAP, norm=_symmetric_norm(logit_map))
    _style(ax_logits, title=t("plot.mask.logits"), xlabel=t("plot.x_feature"), ylabel=t("plot.y_feature"))
    _colorbar(fig, image, ax_logits, "logit", data=(logit_map,), length=bar_length)
    image = _show_map(ax_mask, mask_map, cmap=UNIT_CMAP, norm=_unit_norm())
    _style(ax_mask, title=t("plot.mask.ms"), xlabel=t("plot.x_feature"), ylabel=t("plot.y_feature"))
    _colorbar(fig, image, ax_mask, t("plot.ms_bar"), length=bar_length)
    return fig


def _overlay(ax, rgb: np.ndarray, map2d: np.ndarray, *, cmap: str | Colormap, alpha: float, norm: Normalize):
    """Draw ``rgb`` and, over it, ``map2d`` upsampled bilinearly to the image size."""
    height, width = rgb.shape[:2]
    ax.imshow(rgb, interpolation="bilinear")
    upsampled = _resize_bilinear(map2d, height, width)
    ax.imshow(upsampled, cmap=cmap, norm=norm, alpha=alpha, interpolation="bilinear")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    return upsampled


def _overlay_figure(rgb: np.ndarray, title: str, *, legend: bool = False) -> tuple[Figure, Any, float]:
    """A figure for one image panel (the image's aspect ratio, at most 6.2 in tall) with a colour bar
    on its right and, with ``legend``, room for a legend below; also the panel's height in inches."""
    height, width = rgb.shape[:2]
    panel_width = 5.6 * min(1.0, 1.1 * width / height)
    panel_height = min(panel_width * height / width, 6.2)
    # a tall image makes a narrow figure: at least 6 in wide, so the title and the legend fit
    fig = _figure(max(6.0, panel_width + 2.0), panel_height + 1.15 + (0.4 if legend else 0.0), title, maps=True)
    return fig, fig.add_subplot(), panel_height


@_in_language_fonts
def mask_overlay(
    image: ArrayLike,
    mask: ArrayLike,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = UNIT_CMAP,
    title: str | None = None,
    kernel_size: int | None = None,
    feature_stride: float | None = None,
    at: tuple[int, int] | None = None,
) -> Figure:
    """The spatial mask Ms (H, W), in (0, 1), upsampled bilinearly to the image and drawn over it.

    Args:
        image: (h, w, 3) uint8 (float in 0..1, grey (h, w) and RGBA are accepted too).
        mask: (H, W) (or (1, 1, H, W)), values in (0, 1); the colour bar is fixed to 0..1.
        kernel_size: k of the spatial conv. When given, a square marks the k×k window of feature
            pixels that the conv looked at to compute the mask's largest value (or the value at ``at``).
        at: (row, col) of the window's centre in the mask (default: the mask's largest value).
        feature_stride: image pixels per feature pixel, for that square. When None, it is the
            ratio of the image size to the mask size (right when the mask belongs to this image).
    """
    rgb = _rgb_image(image)
    mask_map = _map2d(mask, "mask")
    fig, ax, bar_length = _overlay_figure(rgb, title or t("plot.overlay.title"), legend=kernel_size is not None)
    norm = _unit_norm()
    _overlay(ax, rgb, mask_map, cmap=cmap, alpha=alpha, norm=norm)
    _style(ax, xlabel=t("plot.x_image"), ylabel=t("plot.y_image"))
    _colorbar(fig, ScalarMappable(norm=norm, cmap=cmap), ax, t("plot.ms_bar"), length=bar_length)
    if kernel_size is not None:
        _draw_receptive_field(fig, ax, rgb.shape[:2], mask_map, int(kernel_size), feature_stride, at)
    return fig


def _draw_receptive_field(
    fig: Figure, ax, image_shape: tuple[int, int], mask_map: np.ndarray, size: int, feature_stride: float | None,
    at: tuple[int, int] | None = None,
) -> None:
    """Outline the size×size feature-pixel window centred on the mask's maximum, in image pixels.

    Feature pixel j covers image pixels [j·s, (j+1)·s); in imshow coordinates, where pixel u spans
    u − 0.5 .. u + 0.5, the window centred on j starts at (j − size//2)·s − 0.5 and is size·s wide.
    """
    if size < 1:
        raise ValueError(f"kernel_size must be positive, got {size}")
    image_height, image_width = image_shape
    mask_height, mask_width = mask_map.shape
    if feature_stride is None:
        stride_y, stride_x = image_height / mask_height, image_width / mask_width
    else:
        stride_y = stride_x = float(feature_stride)
    row, col = at if at is not None else np.unravel_index(int(np.nanargmax(mask_map)), mask_map.shape)
    outline = [patheffects.withStroke(linewidth=4.5, foreground="black")]
    window = Rectangle(
        ((col - size // 2) * stride_x - 0.5, (row - size // 2) * stride_y - 0.5),
        size * stride_x,
        size * stride_y,
        fill=False,
        edgecolor=WINDOW_COLOR,
        linewidth=2.5,
        path_effects=outline,
        label=t("plot.overlay.window", k=size),
    )
    ax.add_patch(window)
    (peak,) = ax.plot(
        (col + 0.5) * stride_x - 0.5,
        (row + 0.5) * stride_y - 0.5,
        marker="+",
        markersize=14,
        markeredgewidth=2.5,
        color=WINDOW_COLOR,
        linestyle="none",
        path_effects=outline,
        label=t("plot.overlay.largest", v=mask_map[row, col]) if at is None else f"Ms = {mask_map[row, col]:.2f}",
    )
    ax.set_xlim(-0.5, image_width - 0.5)
    ax.set_ylim(image_height - 0.5, -0.5)
    fig.legend(handles=[window, peak], loc="outside lower center", ncols=2, fontsize=TICK_SIZE)


@_in_language_fonts
def heat_overlay(
    image: ArrayLike,
    heat: ArrayLike,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = "jet",
    title: str = "Grad-CAM",
) -> Figure:
    """A relevance map (e.g. Grad-CAM), (H, W), rescaled to 0..1 (min → 0, max → 1; a constant map
    becomes 0), upsampled bilinearly and drawn over the image (h, w, 3)."""
    rgb = _rgb_image(image)
    heat_map = np.nan_to_num(_map2d(heat, "heat"))
    low, high = float(heat_map.min()), float(heat_map.max())
    normalised = (heat_map - low) / (high - low) if high > low else np.zeros_like(heat_map)
    fig, ax, bar_length = _overlay_figure(rgb, title)
    norm = _unit_norm()
    _overlay(ax, rgb, normalised, cmap=cmap, alpha=alpha, norm=norm)
    _style(ax, xlabel=t("plot.x_image"), ylabel=t("plot.y_image"))
    _colorbar(fig, ScalarMappable(norm=norm, cmap=cmap), ax, t("plot.heat.bar"), length=bar_length)
    return fig


# --------------------------------------------------------------------------------------------
# 10–11. What the block does to the features
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def step_changes(
    x: ArrayLike,
    x_channel: ArrayLike,
    out: ArrayLike,
    *,
    title: str | None = None,
    step_names: tuple[str, str] | None = None,
) -> Figure:
    """How far each step moves the features: relative changes ‖F'−F‖/‖F‖, ‖F''−F'‖/‖F'‖ and
    ‖F''−F‖/‖F‖ as bars (percent), and the mean energy (mean of value² over positions) of each
    channel of F, F' and F''.

    x, x_channel, out are F, F', F'' as (C, H, W). ``step_names`` names the two steps (swap them
    for the spatial-first arrangement, passing its intermediate as ``x_channel``; default: channel
    attention, then spatial attention).
    """
    title = title or t("plot.steps.title")
    step_names = step_names or (t("plot.steps.channel"), t("plot.steps.spatial"))
    first = _feature_map(x, "x")
    middle = _feature_map(x_channel, "x_channel")
    last = _feature_map(out, "out")
    if not first.shape == middle.shape == last.shape:
        raise ValueError(
            f"x, x_channel and out must have the same shape, got {first.shape}, {middle.shape}, {last.shape}"
        )
    changes = [
        ("F → F'\n" + step_names[0].replace(" ", "\n"), _relative_change(middle, first)),
        ("F' → F''\n" + step_names[1].replace(" ", "\n"), _relative_change(last, middle)),
        ("F → F''\n" + t("plot.steps.whole"), _relative_change(last, first)),
    ]

    fig = _figure(10, 4.8, title)
    ax_bars, ax_energy = fig.subplots(1, 2, width_ratios=[1, 1.5])
    percents = [100 * value for _, value in changes]
    bars = ax_bars.bar(range(3), np.nan_to_num(percents), color=["tab:blue", "tab:red", "tab:purple"], width=0.6)
    ax_bars.set_xticks(range(3), [label for label, _ in changes])
    for bar, percent in zip(bars, percents):
        text = t("plot.steps.na") if math.isnan(percent) else f"{percent:.1f} %"
        ax_bars.text(
            bar.get_x() + bar.get_width() / 2, bar.get_height(), text, ha="center", va="bottom", fontsize=TICK_SIZE
        )
    ax_bars.set_ylim(0, max(1.0, np.nanmax(np.nan_to_num(percents))) * 1.18)
    _style(ax_bars, title=t("plot.steps.bars"), ylabel=t("plot.steps.y"))

    num_channels = first.shape[0]
    marker = "o" if num_channels <= BAR_LIMIT else None
    # Thousands of channels: three noisy lines would hide each other, so show bin means instead.
    bin_size = 1 if num_channels <= STEP_LIMIT else math.ceil(num_channels / BINS)
    for name, features in (("F", first), ("F'", middle), ("F''", last)):
        energy = (features.astype(np.float64) ** 2).mean(axis=(1, 2))
        centres, means, _, _ = _binned(energy, bin_size)
        label = name if bin_size == 1 else t("plot.bin_mean", label=name, size=bin_size)
        ax_energy.plot(
            centres, means, label=label, color=STAGE_COLORS[name], marker=marker, markersize=4, linewidth=1.2
        )
    _integer_ticks(ax_energy, y=False)
    _style(ax_energy, title=t("plot.steps.energy"), xlabel=t("plot.channel_index"), ylabel=t("plot.steps.energy_y"))
    _legend(ax_energy)
    return fig


@_in_language_fonts
def compare_outputs(outputs: Mapping[str, ArrayLike], *, title: str | None = None) -> Figure:
    """One panel per variant with the channel-mean of its output (C, H, W), on a shared colour
    scale, and a table of the largest absolute difference between every pair of full outputs."""
    title = title or t("plot.compare.title")
    maps = {name: _feature_map(value, f"outputs[{name!r}]") for name, value in outputs.items()}
    if not maps:
        return _message_figure(title, t("plot.compare.none"))
    names = list(maps)
    means = [maps[name].mean(axis=0) for name in names]
    nrows, ncols = _grid_shape(len(names), 4)
    aspect = min(max(means[0].shape[0] / means[0].shape[1], 0.25), 4.0)
    panel_width = min(3.0, 8.4 / ncols)
    maps_height = nrows * (panel_width * aspect + 1.1) + 0.6
    table_height = 0.0 if len(names) < 2 else 0.32 * (len(names) + 1) + 0.7
    fig = _figure(panel_width * ncols + 1.6, maps_height + table_height, title)
    maps_part, table_part = fig.subfigures(2, 1, height_ratios=[maps_height, max(table_height, 1e-3)])

    norm = _data_norm(*means)
    axes = []
    image = None
    for index, (name, mean_map) in enumerate(zip(names, means)):
        ax = maps_part.add_subplot(nrows, ncols, index + 1)
        image = _show_map(ax, mean_map, cmap=FEATURE_CMAP, norm=norm)
        first_column = index % ncols == 0
        _style(
            ax,
            title=f"{name}\n{maps[name].shape[0]}×{mean_map.shape[0]}×{mean_map.shape[1]}",
            xlabel=t("plot.x_feature"),
            ylabel=t("plot.y_feature") if first_column else None,
        )
        if not first_column:
            ax.tick_params(labelleft=False)
        axes.append(ax)
    _colorbar(maps_part, image, axes, t("plot.compare.bar"))
    if len(names) < 2:
        return fig

    # The table: every pair of variants, largest absolute difference over all C×H×W values.
    ax_table = table_part.add_subplot()
    ax_table.set_axis_off()
    rows = [
        [name_a]
        + [
            f"{np.abs(maps[name_a] - maps[name_b]).max():.3g}"
            if maps[name_a].shape == maps[name_b].shape
            else t("plot.compare.shapes")
            for name_b in names
        ]
        for name_a in names
    ]
    table = ax_table.table(cellText=rows, colLabels=["", *names], cellLoc="center", bbox=[0.05, 0.0, 0.9, 1.0])
    table.auto_set_font_size(False)
    table.set_fontsize(TICK_SIZE)
    for (row, col), cell in table.get_celld().items():
        if row == 0 or col == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#eeeeee")
    ax_table.set_title(t("plot.compare.table"), fontsize=PANEL_TITLE_SIZE)
    return fig


# --------------------------------------------------------------------------------------------
# 12–13. Every CBAM block of a network
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def layer_masks_grid(
    image: ArrayLike,
    masks: Mapping[str, ArrayLike],
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = UNIT_CMAP,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """The spatial mask of every block, (H_i, W_i) each at its own resolution, upsampled over the
    same image; panel titles give the block name and the mask's resolution. One colour bar, 0..1."""
    title = title or t("plot.layers.title")
    rgb = _rgb_image(image)
    mask_maps = {name: _map2d(value, f"masks[{name!r}]") for name, value in masks.items()}
    if not mask_maps:
        return _message_figure(title, t("plot.layers.none"))
    fig = _figure(*_grid_size(len(mask_maps), ncols, rgb.shape[0] / rgb.shape[1], title_lines=2), title)
    axes = _panel_grid(fig, len(mask_maps), ncols)
    norm = _unit_norm()
    for ax, (name, mask_map) in zip(axes, mask_maps.items()):
        _overlay(ax, rgb, mask_map, cmap=cmap, alpha=alpha, norm=norm)
        _style(ax, title=f"{name}\nMs {mask_map.shape[0]}×{mask_map.shape[1]}")
        _integer_ticks(ax, nbins=3)
    fig.supxlabel(t("plot.x_image"), fontsize=LABEL_SIZE)
    fig.supylabel(t("plot.y_image"), fontsize=LABEL_SIZE)
    _colorbar(fig, ScalarMappable(norm=norm, cmap=cmap), axes, t("plot.ms_bar"))
    return fig


@_in_language_fonts
def channel_weights_heatmap(
    weights: Mapping[str, ArrayLike],
    *,
    title: str | None = None,
) -> Figure:
    """Mc of every block as one row of a heatmap (magma, 0..1). Blocks have different channel
    counts C_i; a row shorter than the widest is padded with NaN, drawn light grey."""
    title = title or t("plot.heatmap.title")
    rows = {name: _vector(value, f"weights[{name!r}]") for name, value in weights.items()}
    if not rows:
        return _message_figure(title, t("plot.heatmap.none"))
    width = max(len(row) for row in rows.values())
    matrix = np.full((len(rows), width), np.nan, dtype=np.float32)
    for index, row in enumerate(rows.values()):
        matrix[index, : len(row)] = row
    padded = bool(np.isnan(matrix).any())

    fig = _figure(10, min(0.45 * len(rows) + 2.4, 12), title)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps[UNIT_CMAP].with_extremes(bad="lightgrey")
    # "nearest" even for thousands of channels: every pixel shows one real Mc, and smoothing would
    # blur the grey padding into the rows above and below.
    image = ax.imshow(matrix, cmap=cmap, norm=_unit_norm(), aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(rows)), [f"{name} (C={len(row)})" for name, row in rows.items()])
    _integer_ticks(ax, y=False)
    _style(ax, xlabel=t("plot.channel_index"), ylabel=t("plot.heatmap.block"))
    _colorbar(fig, image, ax, "Mc (0..1)")
    if padded:
        fig.legend(
            handles=[Patch(facecolor="lightgrey", edgecolor="0.5", label=t("plot.heatmap.padding"))],
            loc="outside lower right",
            fontsize=TICK_SIZE,
        )
    return fig


# --------------------------------------------------------------------------------------------
# 14. The block diagram
# --------------------------------------------------------------------------------------------

_TENSOR_COLOR = "#e6e6e6"
_POOL_COLOR = "#cfe8cf"
_LAYER_COLOR = "#dcd0f0"
_ACTIVATION_COLOR = "#fff2b3"
_MAP_COLOR = "#f7c59f"
_HIGHLIGHT_COLORS = {"channel": "#fdebd3", "spatial": "#d6eaf8"}


@_in_language_fonts
def pipeline_diagram(*, highlight: str | None = None, kernel_size: int | None = None) -> Figure:
    """A block diagram of CBAM: the channel attention module on top, the spatial one below.

    ``highlight`` ("channel" or "spatial") shades that half; ``kernel_size`` writes e.g. "7×7 conv"
    instead of "k×k conv".
    """
    if highlight not in (None, "channel", "spatial"):
        raise ValueError(f"highlight must be None, 'channel' or 'spatial', got {highlight!r}")
    conv_name = t("plot.diagram.conv", k="k" if kernel_size is None else kernel_size)
    fig = _figure(10, 7.2, t("plot.diagram.title"))
    ax = fig.add_subplot()
    ax.set_xlim(0, 90)
    ax.set_ylim(0, 60)
    ax.set_aspect("equal")
    ax.set_axis_off()

    # The two halves, as rounded bands; the highlighted one is filled.
    for half, (bottom, top), label in (
        ("channel", (29.5, 59.5), t("plot.diagram.channel")),
        ("spatial", (0.5, 26.5), t("plot.diagram.spatial")),
    ):
        shaded = highlight == half
        ax.add_patch(
            FancyBboxPatch(
                (0.5, bottom),
                89,
                top - bottom,
                boxstyle="round,pad=0,rounding_size=1.5",
                facecolor=_HIGHLIGHT_COLORS[half] if shaded else "none",
                edgecolor="0.3" if shaded else "0.7",
                linewidth=2.0 if shaded else 1.0,
                linestyle="-" if shaded else "--",
            )
        )
        ax.text(
            88.5,
            top - 1.2,
            label,
            ha="right",
            va="top",
            fontsize=LABEL_SIZE,
            fontweight="bold" if shaded else "normal",
            color="0.1" if shaded else "0.35",
        )

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.3", facecolor=color, edgecolor="0.2", linewidth=1.2
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=LABEL_SIZE)

    def operator(x: float, y: float, symbol: str) -> None:
        ax.add_patch(Circle((x, y), 2.0, facecolor="white", edgecolor="0.2", linewidth=1.2))
        ax.text(x, y, symbol, ha="center", va="center", fontsize=14)

    def arrow(*points: tuple[float, float]) -> None:
        """An arrow along straight segments through ``points``, with the head at the last one."""
        codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
        ax.add_patch(
            FancyArrowPatch(path=Path(points, codes), arrowstyle="-|>", mutation_scale=14, color="0.2", linewidth=1.4)
        )

    # Channel attention: F → AvgPool / MaxPool → shared MLP → + → σ → Mc → ⊗ (with F) → F'.
    top_y = 40
    box(5, top_y, 6, 6, "F\nC×H×W", _TENSOR_COLOR)
    box(18, 46, 11, 4.5, t("plot.diagram.avg"), _POOL_COLOR)
    box(18, 34, 11, 4.5, t("plot.diagram.max"), _POOL_COLOR)
    box(33, top_y, 9, 17, t("plot.diagram.mlp"), _LAYER_COLOR)
    operator(45, top_y, "+")
    box(53, top_y, 4, 4, "σ", _ACTIVATION_COLOR)
    box(62, top_y, 7, 6, "Mc\nC×1×1", _MAP_COLOR)
    operator(73, top_y, "⊗")
    box(83, top_y, 6, 6, "F'\nC×H×W", _TENSOR_COLOR)
    arrow((8.3, 41.5), (10.5, 46), (12.2, 46))
    arrow((8.3, 38.5), (10.5, 34), (12.2, 34))
    arrow((23.8, 46), (28.2, 46))
    arrow((23.8, 34), (28.2, 34))
    arrow((37.8, 46), (45, 46), (45, 42))
    arrow((37.8, 34), (45, 34), (45, 38))
    arrow((47, top_y), (50.7, top_y))
    arrow((55.3, top_y), (58.2, top_y))
    arrow((65.8, top_y), (71, top_y))
    arrow((75, top_y), (79.7, top_y))
    arrow((5, 43.3), (5, 52.5), (73, 52.5), (73, 42))  # F itself goes to ⊗
    ax.text(40, 53.2, "F", ha="center", va="bottom", fontsize=TICK_SIZE, color="0.3")

    # F' is carried down to the spatial half.
    arrow((83, 36.7), (83, 28), (5, 28), (5, 17.3))

    # Spatial attention: F' → mean / max over C → concat → conv → σ → Ms → ⊗ (with F') → F''.
    bottom_y = 14
    box(5, bottom_y, 6, 6, "F'\nC×H×W", _TENSOR_COLOR)
    box(18, 20, 11, 4.5, t("plot.diagram.mean_c"), _POOL_COLOR)
    box(18, 8, 11, 4.5, t("plot.diagram.max_c"), _POOL_COLOR)
    box(32, bottom_y, 7, 6, t("plot.diagram.concat"), _TENSOR_COLOR)
    box(44, bottom_y, 9, 6, f"{conv_name}\n2 → 1", _LAYER_COLOR)
    box(53.5 + 1, bottom_y, 4, 4, "σ", _ACTIVATION_COLOR)
    box(63, bottom_y, 7, 6, "Ms\n1×H×W", _MAP_COLOR)
    operator(73, bottom_y, "⊗")
    box(83, bottom_y, 6, 6, "F''\nC×H×W", _TENSOR_COLOR)
    arrow((8.3, 15.5), (10.5, 20), (12.2, 20))
    arrow((8.3, 12.5), (10.5, 8), (12.2, 8))
    arrow((23.8, 20), (32, 20), (32, 17.3))
    arrow((23.8, 8), (32, 8), (32, 10.7))
    arrow((35.8, bottom_y), (39.2, bottom_y))
    arrow((48.8, bottom_y), (52.2, bottom_y))
    arrow((56.8, bottom_y), (59.2, bottom_y))
    arrow((66.8, bottom_y), (71, bottom_y))
    arrow((75, bottom_y), (79.7, bottom_y))
    arrow((5, 10.7), (5, 3), (73, 3), (73, 12))  # F' itself goes to ⊗
    ax.text(40, 3.6, "F'", ha="center", va="bottom", fontsize=TICK_SIZE, color="0.3")
    return fig


# --------------------------------------------------------------------------------------------
# 15. Training
# --------------------------------------------------------------------------------------------


@_in_language_fonts
def training_curves(history: Sequence[Mapping[str, float]], *, title: str | None = None) -> Figure:
    """Loss and accuracy per epoch. ``history`` is a list of dicts with "epoch", "loss",
    "accuracy" and optionally "val_accuracy" (and "val_loss"); a missing value is a gap."""
    title = title or t("plot.train.title")
    if not history:
        return _message_figure(title, t("plot.train.none"))

    def column(key: str) -> np.ndarray:
        return np.array([float(entry.get(key, math.nan)) for entry in history], dtype=np.float64)

    epochs = column("epoch")
    marker = "o" if len(history) <= 50 else None
    fig = _figure(10, 4.2, title)
    ax_loss, ax_accuracy = fig.subplots(1, 2)
    for ax, keys, ylabel in (
        (ax_loss, (("loss", t("plot.train.loss"), "tab:blue"), ("val_loss", t("plot.train.val_loss"), "tab:orange")),
         t("plot.train.loss_title")),
        (
            ax_accuracy,
            (("accuracy", t("plot.train.accuracy"), "tab:blue"), ("val_accuracy", t("plot.train.val_accuracy"), "tab:orange")),
            t("plot.train.accuracy_title"),
        ),
    ):
        for key, label, color in keys:
            values = column(key)
            if np.isfinite(values).any():
                ax.plot(epochs, values, label=label, color=color, marker=marker, markersize=4, linewidth=1.5)
        _integer_ticks(ax, y=False)
        _style(ax, title=ylabel, xlabel=t("plot.train.epoch"), ylabel=ylabel)
        _legend(ax)
    accuracies = np.concatenate([column("accuracy"), column("val_accuracy")])
    accuracies = accuracies[np.isfinite(accuracies)]
    if accuracies.size and accuracies.min() >= 0:
        ax_accuracy.set_ylim(0, 1.02 if accuracies.max() <= 1 else 102)
    return fig


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plot:
    """A figure not drawn yet: one of the builders of this module and the arguments to call it with.

    Describing a figure costs nothing; drawing it costs 0.1–0.5 s. ``cbam.views`` and ``cbam.report``
    describe the figures this way, for the app (which draws one when its PNG download is clicked)
    and for ``python -m cbam inspect`` (which draws them all)."""

    builder: Callable[..., Figure]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    lang: str = field(default_factory=i18n.language)
    """The language the figure is drawn in: the current one when it was described (the app draws a
    PNG in a later script run, when its download is clicked)."""

    def draw(self) -> Figure:
        with i18n.use(self.lang):
            return self.builder(*self.args, **self.kwargs)


def plot(builder: Callable[..., Figure], *args: Any, **kwargs: Any) -> Plot:
    """``Plot(builder, args, kwargs)``, written like the call it stands for."""
    return Plot(builder, args, kwargs)


def figure_to_png(fig: Figure, dpi: int = 120) -> bytes:
    """The figure rendered as PNG bytes (e.g. for ``st.download_button``), without pyplot."""
    buffer = io.BytesIO()
    # zlib level 1: half the encoding time of the default level 6, files about 5 % larger
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


@_in_language_fonts
def sample_grid(
    images: Sequence[ArrayLike],
    masks: Sequence[ArrayLike] | None = None,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 6,
    title: str | None = None,
) -> Figure:
    """Images (each (H, W, 3) uint8) in a grid, each with its target mask outlined in cyan when
    ``masks`` (each (H, W) bool) are given, and an optional title per panel."""
    pictures = [_rgb_image(image) for image in images]
    title = title or t("plot.samples.title")
    if not pictures:
        return _message_figure(title, t("plot.samples.none"))
    nrows, ncols = _grid_shape(len(pictures), ncols)
    panel = min(2.2, 9.6 / ncols)
    fig = _figure(panel * ncols + 0.4, nrows * (panel + 0.55) + 0.6, title)
    for index, picture in enumerate(pictures):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        ax.imshow(picture, interpolation="nearest")
        if masks is not None:
            ax.contour(_np(masks[index]).astype(float), levels=[0.5], colors=[WINDOW_COLOR], linewidths=1.5)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[index], fontsize=PANEL_TITLE_SIZE)
    if masks is not None:
        fig.legend(handles=[Patch(facecolor="none", edgecolor=WINDOW_COLOR, label=t("plot.samples.target"))],
                   loc="lower center", fontsize=TICK_SIZE, frameon=False)
    return fig


@_in_language_fonts
def masks_on_images(
    images: Sequence[ArrayLike],
    masks: Sequence[ArrayLike],
    titles: Sequence[str] | None = None,
    *,
    alpha: float = 0.55,
    cmap: str = UNIT_CMAP,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """Each image (H, W, 3) with its own mask (h, w) in (0, 1) upsampled and overlaid, one colour bar 0..1."""
    pictures = [_rgb_image(image) for image in images]
    title = title or t("plot.masks.title")
    if not pictures:
        return _message_figure(title, t("plot.samples.none"))
    nrows, ncols = _grid_shape(len(pictures), ncols)
    panel = min(2.6, 9.0 / ncols)
    fig = _figure(panel * ncols + 1.4, nrows * (panel + 0.6) + 0.6, title)
    axes = []
    for index, picture in enumerate(pictures):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        _overlay(ax, picture, _map2d(masks[index], f"masks[{index}]"), cmap=cmap, alpha=alpha, norm=_unit_norm())
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[index], fontsize=PANEL_TITLE_SIZE)
        axes.append(ax)
    _colorbar(fig, ScalarMappable(norm=_unit_norm(), cmap=cmap), axes, t("plot.ms_bar"))
    return fig


@_in_language_fonts
def ablation_bars(
    rows: Sequence[Mapping[str, Any]],
    metric: str = "accuracy",
    *,
    title: str | None = None,
    reference: str = "reference",
) -> Figure:
    """Mean ± std of one metric per ablation row, grouped by axis; the reference row is drawn in
    every group. ``rows`` as in ``cbam.zoo.ablation_results()["rows"]`` (values are fractions)."""
    if not rows:
        return _message_figure(title or i18n.term("metric", metric), t("plot.ablation.none"))
    ref = next((r for r in rows if r["name"] == reference), None)
    axes_order = [a for a in dict.fromkeys(r["axis"] for r in rows) if a != "reference"]
    labels, means, stds, colours, ticks = [], [], [], [], []
    for axis in axes_order:
        group = [r for r in rows if r["axis"] == axis]
        if ref is not None:
            group = [ref, *group]
        for r in group:
            value = i18n.term("abl", str(r["value"])) if r is not ref else t("plot.ablation.reference")
            labels.append(f"{i18n.term('axis', axis)}: {value}")
            means.append(100 * r[metric]["mean"])
            stds.append(100 * (r[metric].get("std") or 0.0))
            colours.append("tab:gray" if r is ref else "tab:blue")
        ticks.append(len(labels))
    fig = _figure(9.0, 0.42 * len(labels) + 1.6, title or t("plot.ablation.title", metric=i18n.term("metric", metric)))
    ax = fig.add_subplot(1, 1, 1)
    positions = np.arange(len(labels))[::-1]
    ax.barh(positions, means, xerr=stds, color=colours, capsize=3)
    for boundary in ticks[:-1]:
        ax.axhline(len(labels) - boundary - 0.5, color="0.8", linewidth=1)
    ax.set_yticks(positions, labels, fontsize=TICK_SIZE)
    _style(ax, xlabel=f"{i18n.term('metric', metric)} (%)")
    ax.set_xlim(0, 100)
    return fig
