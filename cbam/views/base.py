"""What a view is: numbers in named tables, a Vega-Lite spec that draws them, and the PNG of the same.

A view is a pure function from a trace (or a run) to a ``Chart`` (drawn by the browser, with
tooltips and clicks) or a ``Picture`` (an RGB array, for maps laid over a photo). Both carry
``png``, the matplotlib figure of ``cbam.plots`` that shows the same numbers, drawn only when a PNG
is asked for (a download, ``python -m cbam inspect``).

Tables are columns of NumPy arrays (``{"x": array, "v": array}``): Streamlit sends them to the
browser as Arrow, and ``Chart.vega_lite()`` writes them out as Vega-Lite's rows for a standalone spec.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import matplotlib
import numpy as np
import torch
from PIL import Image

from .. import plots
from ..i18n import t as text

__all__ = ["Chart", "Picture", "ViewError", "Scale", "heatmaps", "bars", "finite", "as_array", "colorize", "MAX_CELLS"]

MAX_CELLS = 16_384
"""The most cells one heatmap view draws. Larger maps are averaged over s×s blocks to fit (and say so)."""

PANEL_PX = 150
"""The width in pixels of one heatmap panel (cells are square)."""


class ViewError(ValueError):
    """Numbers a chart cannot show (NaN, infinity, an empty map): the message says which and why."""


@dataclass(frozen=True)
class Chart:
    """A Vega-Lite chart: ``spec`` reads its data from ``tables`` by name; ``png`` draws the same numbers."""

    spec: dict[str, Any]
    tables: dict[str, dict[str, np.ndarray]]
    png: plots.Plot | None = None
    select: str | None = None  # the name of the spec's click selection, if any

    def streamlit_spec(self) -> dict[str, Any]:
        """The spec with its tables as columns (Streamlit sends them to the browser as Arrow), drawn on a
        canvas and without ARIA attributes: SVG with one element (and its ARIA labels) per cell or bar
        made the browser several times slower to draw a page than the server was to compute it."""
        config = {**self.spec.get("config", {}), "aria": False}
        return {**self.spec, "config": config, "usermeta": {"embedOptions": {"renderer": "canvas"}},
                "datasets": {name: dict(columns) for name, columns in self.tables.items()}}

    def vega_lite(self) -> dict[str, Any]:
        """A standalone Vega-Lite spec: the tables written out as rows of plain numbers and strings."""
        return {**self.spec, "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "datasets": {name: rows(columns) for name, columns in self.tables.items()}}

    def table(self, name: str = "main") -> dict[str, np.ndarray]:
        return self.tables[name]

    def panel(self, index: int = 0) -> np.ndarray:
        """Panel ``index`` of a heatmap as a 2D array (rows y, columns x), whichever way it is drawn."""
        table = self.table()
        if "cells" in table:  # drawn as pictures: the cells ride packed, the map's size is in the spec
            encoding = self.spec.get("spec", self.spec)["layer"][-1]["encoding"]
            shape = len(encoding["y"]["scale"]["domain"]), len(encoding["x"]["scale"]["domain"])
            return unpack(table["cells"][index], shape)
        rows = table["panel"] == index
        if "ph" in table:
            rows &= table["ph"] == 0  # not the hidden cells that set a range other than the data's own
        ys, xs = table["y"][rows], table["x"][rows]
        out = np.full((len(np.unique(ys)), len(np.unique(xs))), np.nan)
        out[np.searchsorted(np.unique(ys), ys), np.searchsorted(np.unique(xs), xs)] = table["v"][rows]
        return out


@dataclass(frozen=True)
class Picture:
    """An RGB image (h, w, 3) uint8 to show as it is, with what its colours mean."""

    rgb: np.ndarray
    caption: str
    colorbar: Chart | None = None
    png: plots.Plot | None = None
    numbers: dict[str, np.ndarray] = field(default_factory=dict)  # the maps the colours encode


def rows(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Columns as a list of row dicts of plain Python values (JSON-ready)."""
    names = list(columns)
    lists = [np.asarray(columns[n]).tolist() for n in names]
    return [dict(zip(names, values)) for values in zip(*lists)]


def as_array(value: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    """A float NumPy copy of a tensor (detached, on the CPU) or array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu().numpy()
    return np.array(value, dtype=np.float32, copy=True)


def finite(value, name: str) -> np.ndarray:
    """``value`` as an array, or ViewError when it is empty or holds NaN or infinity."""
    array = as_array(value)
    if array.size == 0:
        raise ViewError(text("base.empty", name=name))
    bad = ~np.isfinite(array)
    if bad.any():
        raise ViewError(text("base.non_finite", name=name, bad=int(bad.sum()), size=array.size))
    return array


# --------------------------------------------------------------------------------------------
# Colour scales: fixed where values are bounded, symmetric for signed values, else the data's range
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    scheme: str  # a Vega scheme name; the matplotlib colormap of the same name draws the PNG
    low: float
    high: float
    reverse: bool = False
    spans_data: bool = False  # the range is the shown data's own (the browser finds it without help)

    @classmethod
    def unit(cls) -> Scale:
        """Values in (0, 1), e.g. Mc and Ms: magma, fixed to 0..1."""
        return cls("magma", 0.0, 1.0)

    @classmethod
    def signed(cls, *arrays: np.ndarray) -> Scale:
        """Signed values (logits, kernel weights): blue–white–red, centred at 0, ±max|value|."""
        limit = max((float(np.abs(a).max()) for a in arrays if a.size), default=0.0)
        limit = limit if limit > 0 else 1.0
        return cls("redblue", -limit, limit, reverse=True)

    @classmethod
    def data(cls, *arrays: np.ndarray) -> Scale:
        """Activations: viridis over the data's range (a constant map gets a small range around it)."""
        low = min((float(a.min()) for a in arrays if a.size), default=0.0)
        high = max((float(a.max()) for a in arrays if a.size), default=1.0)
        if high - low <= 1e-9 * max(1.0, abs(low), abs(high)):
            pad = 0.5 if low == 0 else 0.05 * abs(low)
            low, high = low - pad, high + pad
        return cls("viridis", low, high, spans_data=True)

    @property
    def fixed(self) -> bool:
        """A scale whose range never depends on the data (0..1): it can be written into the spec."""
        return (self.low, self.high) == (0.0, 1.0)

    def vega(self) -> dict[str, Any]:
        """The Vega-Lite scale. Only a fixed range is written into the spec: a spec that does not change
        with the data lets the browser swap the data of a drawn chart instead of building it again.
        Other ranges come from the data (heatmaps add two hidden cells at ``low`` and ``high``)."""
        if self.fixed:
            return {"scheme": self.scheme, "domain": [self.low, self.high], "reverse": self.reverse, "clamp": True}
        return {"scheme": self.scheme, "reverse": self.reverse}

    @property
    def cmap(self) -> str:
        """The matplotlib colormap of this scale."""
        return {"redblue": "RdBu"}.get(self.scheme, self.scheme) + ("" if not self.reverse else "_r")


@lru_cache(maxsize=16)
def _lut(cmap: str) -> np.ndarray:
    return (matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(values: np.ndarray, scale: Scale) -> np.ndarray:
    """Values as colours of ``scale`` (clipped to its range), (..., 3) uint8."""
    unit = (np.asarray(values, dtype=np.float32) - scale.low) / (scale.high - scale.low)
    index = np.clip(np.nan_to_num(unit) * 255 + 0.5, 0, 255).astype(np.uint8)
    return _lut(scale.cmap)[index]


def png_url(rgb: np.ndarray) -> str:
    """An RGB array (h, w, 3) uint8 as a PNG data URL (one pixel per cell: the browser scales it up)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------------------------
# Two chart shapes: heatmaps (one panel per map) and bars (one bar per index)
# --------------------------------------------------------------------------------------------


def fit_cells(maps: Sequence[np.ndarray], budget: int = MAX_CELLS) -> tuple[list[np.ndarray], int]:
    """The maps averaged over s×s blocks (s the smallest integer that fits the budget), and s."""
    cells = sum(m.size for m in maps)
    step = 1
    while cells / step**2 > budget:
        step += 1
    if step == 1:
        return list(maps), 1
    pooled = []
    for m in maps:
        h, w = m.shape
        t = torch.from_numpy(np.ascontiguousarray(m))[None, None]
        pooled.append(torch.nn.functional.avg_pool2d(t, step, ceil_mode=True)[0, 0].numpy())
    return pooled, step


def _axis_values(n: int) -> list[int]:
    step = max(1, int(np.ceil(n / 6)))
    return list(range(0, n, step))


HOVER = "panel_under_pointer"
"""The selection, in a heatmap drawn as pictures, of the panel under the pointer: its cells get marks."""


def heatmaps(panels: Mapping[str, np.ndarray], scale: Scale, *, value: str, title: str, columns: int = 4,
             step: int = 1, select: str | None = None, numbers: bool = False, axis: str = "",
             offsets: bool = False, width: int = PANEL_PX, shared: bool = True) -> Chart:
    """One heatmap panel per map (all (H, W), one colour scale), with the value under the pointer.

    ``step``: the maps are s×s block means (said in the axis titles). ``select``: the name of a
    click selection on (x, y). ``numbers``: write each cell's value in it (small maps, e.g. a kernel).
    ``offsets``: label cells by their offset from the centre (a kernel) instead of their position.
    ``shared``: one colour scale for all panels (else each panel spans its own data, ``scale``'s scheme).

    **Two ways to draw.** A map whose cells carry numbers gets a mark per cell. Any other map is drawn
    as a picture: each panel one image, coloured here (``colorize``, the PNG's colormap), one pixel
    per cell, scaled up unsmoothed. Marks for its cells exist only in the panel under the pointer,
    for the tooltip and the click. In Chromium, a mark per cell cost about 40–60 µs of the browser's
    time at every slider move (the Channel page's two feature-map charts, 2,000 cells, were a third
    of its work); a picture costs the same for 144 cells or 16,384.
    """
    names = list(panels)
    h, w = next(iter(panels.values())).shape
    shift_y, shift_x = (h // 2, w // 2) if offsets else (0, 0)
    # A kernel's offsets all get a label (k ≤ 11 fits), so its spec does not change with k; a map's
    # positions get about six (its size changes only with the block).
    x_axis = {"labelAngle": 0} if offsets else {"values": [v * step for v in _axis_values(w)], "labelAngle": 0}
    y_axis = {} if offsets else {"values": [v * step for v in _axis_values(h)]}
    axis = axis or text("base.feature_px")
    where = text("base.offset") if offsets else ""
    size_note = text("base.block_means", step=step) if step > 1 else ""
    cell = max(2, width // max(h, w))
    encoding: dict[str, Any] = {
        "x": {"field": "x", "type": "ordinal", "title": f"x {where}({axis}){size_note}", "axis": x_axis},
        "y": {"field": "y", "type": "ordinal", "title": f"y {where}({axis})", "axis": y_axis},
        # The panel's name where there are several; the same tooltip on the numbers written in the cells.
        "tooltip": [*([{"field": "label", "type": "nominal", "title": text("base.map")}] if len(names) > 1 else []),
                    {"field": "x", "type": "quantitative", "title": "x"},
                    {"field": "y", "type": "quantitative", "title": "y"},
                    {"field": "v", "type": "quantitative", "title": value, "format": ".4f"}],
    }
    if numbers:
        table, layer = _cells(panels, scale, encoding, value=value, select=select, shared=shared, step=step,
                              shift=(shift_x, shift_y))
    else:
        table, layer = _pictures(panels, scale, encoding, value=value, select=select, shared=shared, step=step,
                                 shift=(shift_x, shift_y), size=(cell * w, cell * h))
    inner = {"width": cell * w, "height": cell * h, "layer": layer}
    spec: dict[str, Any] = {
        "title": title,
        "data": {"name": "main"},
        "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 10, "titleFontSize": 11}},
        "autosize": {"type": "pad"},  # the cells keep their size; axes and legend come on top
    }
    if len(names) == 1:
        spec.update(inner)
    else:
        # Faceted by the panel's number, not its name: names that change with the data (a channel's
        # weight) would make the browser build each panel's views anew on every data swap. The header
        # reads the name from the data (``names``: each row's name, ``panels``: each row's panel).
        spec["params"] = [{"name": "panels", "expr": "pluck(data('main'), 'panel')"},
                          {"name": "names", "expr": "pluck(data('main'), 'label')"}]
        spec.update({"facet": {"field": "panel", "type": "ordinal", "title": None,
                               "header": {"labelFontSize": 11, "labelExpr": "names[indexof(panels, datum.value)]"}},
                     "columns": columns, "spec": inner,
                     "resolve": {"scale": {"x": "independent", "y": "independent",
                                           **({} if shared else {"color": "independent"})}}})
    return Chart(spec, {"main": table}, select=select)


def _pictures(panels: Mapping[str, np.ndarray], scale: Scale, encoding: dict[str, Any], *, value: str,
              select: str | None, shared: bool, step: int, shift: tuple[int, int],
              size: tuple[int, int]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """A panel's picture, its colour legend and, under the pointer, its cells (see ``heatmaps``).

    The table has one row per panel, not per cell: its number, name, picture (``url``), the ends of
    its colour range (``lo``, ``hi``) and its cells' values, row by row, as one string (``cells``).
    The browser unpacks the cells of the panel under the pointer only. The spec holds no number of
    the data, so a new r or k only swaps the data of a drawn chart."""
    maps = list(panels.values())
    h, w = maps[0].shape
    shift_x, shift_y = shift
    scales = [scale if shared else replace(Scale.data(m), scheme=scale.scheme, reverse=scale.reverse) for m in maps]
    table = {
        "panel": np.arange(len(maps)),
        "label": np.array([str(n) for n in panels], dtype=object),
        "url": np.array([png_url(colorize(m, s)) for m, s in zip(maps, scales)], dtype=object),
        "lo": np.array([s.low for s in scales]),
        "hi": np.array([s.high for s in scales]),
        "cells": np.array([pack(m) for m in maps], dtype=object),
    }
    image = picture_layer("panel", "label", text("base.map"), {"x": {"value": 0}, "y": {"value": 0}},
                          baseline="top", width=size[0], height=size[1])
    # Every panel's axes, whether or not its cells have marks.
    encoding["x"]["scale"] = {"domain": [i * step - shift_x for i in range(w)]}
    encoding["y"]["scale"] = {"domain": [i * step - shift_y for i in range(h)]}
    under_pointer = {
        "transform": [*cells_under_pointer("i"),
                      {"calculate": f"(datum.i % {w}) * {step} - {shift_x}", "as": "x"},
                      {"calculate": f"floor(datum.i / {w}) * {step} - {shift_y}", "as": "y"}],
        "mark": {"type": "rect", "fill": "transparent"},
        "encoding": encoding,
    }
    if select:  # a click on a cell under the pointer selects it (and outlines it)
        _selectable(under_pointer, select)
    return table, [picture_legend(value, scale), image, under_pointer]


def picture_legend(title: str, scale: Scale, **encoding: Any) -> dict[str, Any]:
    """The colour legend of a chart drawn as pictures: two invisible marks a row, at the ends of its
    colour range (the row's ``lo`` and ``hi``), so the range comes with the data, not the spec."""
    return {
        "transform": [{"fold": ["lo", "hi"], "as": ["end", "bound"]}],
        "mark": {"type": "point", "opacity": 0, "tooltip": None},
        "encoding": {**encoding, "color": {"field": "bound", "type": "quantitative", "title": title,
                                           "scale": {"scheme": scale.scheme, "reverse": scale.reverse}}},
    }


def picture_layer(row: str, name: str, title: str, encoding: dict[str, Any], **mark: Any) -> dict[str, Any]:
    """The layer of pictures, one a row of the table (its ``url``), drawn unsmoothed where ``encoding``
    and ``mark`` (size, baseline) put them; the picture under the pointer selects its row (``pointer_over``).
    Its tooltip names the row (``title``: the row's field ``name``): the pointer's first move on a
    picture makes its cells' marks, and the tooltip of the last picture's cell must not stay up meanwhile."""
    return {
        "mark": {"type": "image", "aspect": False, "smooth": False, "align": "left", **mark,
                 "tooltip": {"expr": f"{{{js_string(title)}: datum.{name}}}"}},
        "encoding": {**encoding, "url": {"field": "url", "type": "nominal"}},
        "params": [pointer_over(row)],
    }


def pointer_over(row: str) -> dict[str, Any]:
    """The selection ``HOVER`` of a picture's row (field ``row``) under the pointer. Only a picture
    selects: the pointer over one of the cells' marks (they carry the row too) would select the row
    anew, make its marks anew and drop the old ones unnoticed, so the last cell's tooltip would stay
    up once the pointer left the picture."""
    return {"name": HOVER, "select": {"type": "point", "on": "image:pointerover", "fields": [row], "clear": False}}


def cells_under_pointer(index: str) -> list[dict[str, Any]]:
    """The transforms that unpack the ``cells`` of the row under the pointer (selection ``HOVER``) into
    one datum a cell: its value ``v`` and its place in the row, ``index``."""
    return [{"filter": {"param": HOVER, "empty": False}},
            {"calculate": "split(datum.cells, ',')", "as": "v"},
            {"calculate": "sequence(0, length(datum.v))", "as": index},
            {"flatten": ["v", index]},
            {"calculate": "toNumber(datum.v)", "as": "v"}]


def pack(values: np.ndarray) -> str:
    """A map's values, row by row, as one string of numbers (7 significant digits, about a float32's)."""
    return ",".join(f"{v:.7g}" for v in np.asarray(values, dtype=np.float64).ravel().tolist())


def unpack(cells: str, shape: tuple[int, int]) -> np.ndarray:
    """The map ``pack`` wrote."""
    return np.array([float(v) for v in cells.split(",")]).reshape(shape)


def _selectable(layer: dict[str, Any], select: str) -> None:
    """A click on one of the layer's cells selects its (x, y), outlined in cyan."""
    layer["params"] = [{"name": select,
                        "select": {"type": "point", "fields": ["x", "y"], "on": "click", "clear": False}}]
    layer["encoding"]["strokeWidth"] = {"condition": {"param": select, "value": 2, "empty": False}, "value": 0}
    layer["encoding"]["stroke"] = {"value": "cyan"}


def _cells(panels: Mapping[str, np.ndarray], scale: Scale, encoding: dict[str, Any], *, value: str,
           select: str | None, shared: bool, step: int,
           shift: tuple[int, int]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """A mark per cell, coloured by the browser, with the cell's number written in it."""
    names = list(panels)
    h, w = next(iter(panels.values())).shape
    shift_x, shift_y = shift
    grid_y, grid_x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    values = np.concatenate([panels[n].ravel() for n in names]).astype(np.float64)
    table = {
        "panel": np.repeat(np.arange(len(names)), h * w),
        "label": np.repeat(np.array(names, dtype=object), h * w),
        "x": np.tile(grid_x.ravel() * step - shift_x, len(names)),
        "y": np.tile(grid_y.ravel() * step - shift_y, len(names)),
        "v": values,
    }
    # A number on a dark cell (far from the scale's middle) is written white.
    mid, span = (scale.low + scale.high) / 2, (scale.high - scale.low) / 2 or 1.0
    table["dark"] = (np.abs(values - mid) > 0.6 * span).astype(np.int8)
    # A range that is not the data's own (±max|v| for signed values) rides in the data as two hidden
    # cells under the first visible one (``ph`` 1). Each column and each encoding is work for the
    # browser in every cell, so a map coloured over its own range has neither.
    hidden_range = shared and not scale.fixed and not scale.spans_data
    if hidden_range:
        table["ph"] = np.zeros(len(values), dtype=np.int8)
        hidden = {"panel": np.zeros(2, np.int64), "label": np.array([names[0]] * 2, dtype=object),
                  "x": np.full(2, -shift_x), "y": np.full(2, -shift_y), "v": np.array([scale.low, scale.high]),
                  "ph": np.ones(2, np.int8), "dark": np.zeros(2, np.int8)}
        for k in list(table):
            table[k] = np.concatenate([hidden[k], table[k]])
    encoding["color"] = {"field": "v", "type": "quantitative", "title": value,
                         "scale": scale.vega() if shared else {"scheme": scale.scheme, "reverse": scale.reverse}}
    if hidden_range:
        encoding["opacity"] = {"condition": {"test": "datum.ph == 1", "value": 0}, "value": 1}
    layer: list[dict[str, Any]] = [{"mark": {"type": "rect"}, "encoding": encoding}]
    if select:
        _selectable(layer[0], select)
    layer.append({
        "mark": {"type": "text", "fontSize": 10},
        **({"transform": [{"filter": "datum.ph == 0"}]} if hidden_range else {}),
        "encoding": {
            "x": {"field": "x", "type": "ordinal"}, "y": {"field": "y", "type": "ordinal"},
            "text": {"field": "v", "type": "quantitative", "format": ".2f"},
            "tooltip": encoding["tooltip"],
            "color": {"condition": {"test": "datum.dark == 1", "value": "white"}, "value": "black"},
        },
    })
    return table, layer


def bars(series: Mapping[str, np.ndarray], *, title: str, x_title: str, y_title: str, colors: Sequence[str],
         labels: np.ndarray | None = None, select: str | None = None, y_domain: tuple[float, float] | None = None,
         rule: float | None = None, height: int = 220) -> Chart:
    """One bar per index for each series (side by side), with the index and value under the pointer.

    ``labels``: what the tooltip calls each index (default: the index itself, "channel" in ``x_title``).
    Bars are rectangles on a numeric x axis, so thousands of channels stay one chart."""
    names = list(series)
    n = len(next(iter(series.values())))
    width = 0.8 / len(names)
    index = np.arange(n)
    label_values = index if labels is None else np.asarray(labels)
    table: dict[str, np.ndarray] = {
        "series": np.repeat(np.arange(len(names)), n),
        "i": np.tile(index, len(names)),
        "label": np.tile(label_values, len(names)),
        "x0": np.concatenate([index - 0.4 + k * width for k in range(len(names))]),
        "v": np.concatenate([np.asarray(series[s], dtype=np.float64) for s in names]),
    }
    table["x1"] = table["x0"] + width
    name_expr = "[" + ",".join(js_string(s) for s in names) + "][datum.series]"
    encoding: dict[str, Any] = {
        "x": {"field": "x0", "type": "quantitative", "title": x_title,
              "scale": {"nice": False, "zero": False, "padding": 4},  # the bars' extent: no n in the spec
              "axis": {"format": "d", "tickMinStep": 1}},
        "x2": {"field": "x1"},
        "y": {"field": "v", "type": "quantitative", "title": y_title,
              **({"scale": {"domain": list(y_domain)}} if y_domain else {})},
        "y2": {"datum": 0},
        "color": {"field": "name", "type": "nominal", "title": None, "sort": names,
                  "scale": {"domain": names, "range": list(colors)},
                  "legend": {"orient": "top", "labelLimit": 420} if len(names) > 1 else None},
        "tooltip": [{"field": "label", "type": "nominal", "title": x_title.split(" (")[0].split("（")[0]},
                    {"field": "name", "type": "nominal", "title": text("base.series")},
                    {"field": "v", "type": "quantitative", "title": text("base.value"), "format": ".4f"}],
    }
    layer: list[dict[str, Any]] = [{"mark": {"type": "rect"}, "encoding": encoding}]
    if select:
        layer[0]["params"] = [{"name": select, "select": {"type": "point", "fields": ["label"], "on": "click",
                                                           "clear": False}}]
        encoding["opacity"] = {"condition": {"param": select, "value": 1.0, "empty": True}, "value": 0.45}
    if rule is not None:
        layer.append({"mark": {"type": "rule", "strokeDash": [4, 3], "color": "#555"}, "encoding": {"y": {"datum": rule}}})
    spec = {"title": title, "data": {"name": "main"}, "height": height,
            "transform": [{"calculate": name_expr, "as": "name"}], "layer": layer,
            "autosize": {"type": "fit-x", "contains": "padding"}}  # the plot keeps its height; the width follows the page
    return Chart(spec, {"main": table}, select=select)


def js_string(text: str) -> str:
    """``text`` as a quoted string literal of Vega's expression language."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"
