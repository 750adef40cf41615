"""Placing views on a page: charts drawn by the browser, pictures as images, PNGs drawn on request.

**Charts keep their Vega views across reruns.** Measured in Chromium: after a slider move, every
chart without an element id was thrown away and built again (a new canvas: the spec parsed,
compiled and drawn), while the one chart with an id (a click selection) was only handed its new
data. So each chart sits in a keyed container (``view.<key>``), a row of charts in one too
(``columns``). Streamlit's browser side places each element of a rerun at its index as it arrives:
when the elements before a chart are fewer or more than in the last run (a note that appears with
a new r), another element lands on the chart's old index first, and the chart is built again even
so. Whatever a page shows only sometimes goes in a ``slot``, which is there on every run, so the
views after it keep their indices (tests/test_browser.py checks the canvases).

A view that cannot be drawn (``cbam.views.ViewError``: NaN, infinity, nothing to show) becomes an
``st.error`` in its place, and the rest of the page goes on.

**For measurements only:** a server started with ``CBAM_LAB_NO_CHARTS=1`` leaves every chart out (their
containers and download buttons stay), so ``benchmarks/bench_browser.py --without-charts`` can tell what
the charts cost a slider move from what the rest of the page does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import streamlit as st

from cbam import plots
from cbam.i18n import t
from cbam.views import Chart, Picture, ViewError


def build(view: Callable[..., Any], *args, **kwargs) -> Any | None:
    """``view(*args, **kwargs)``, or None with an ``st.error`` saying why it cannot be drawn."""
    try:
        return view(*args, **kwargs)
    except ViewError as error:
        st.error(t("show.cannot_draw", error=error), icon=":material/error:")
        return None


def chart(view: Chart | Callable[..., Chart] | None, *args, key: str, download: bool = True,
          on_select: Callable[[], None] | None = None, **kwargs) -> None:
    """Show a chart (or build it first, from a view function and its arguments) with a PNG download.

    ``on_select``: called when the user clicks the chart's selection (see ``selection``)."""
    if callable(view) and not isinstance(view, Chart):
        view = build(view, *args, **kwargs)
    if view is None:
        return
    spec = view.streamlit_spec()
    width = "content" if "width" in spec or "facet" in spec else "stretch"
    with st.container(key=f"view.{key}"):
        if os.environ.get("CBAM_LAB_NO_CHARTS") == "1":
            pass  # measuring the page without its charts (see the module's docstring)
        elif view.select and on_select is not None:
            st.vega_lite_chart(spec, key=key, on_select=on_select, selection_mode=view.select, width=width)
        else:
            st.vega_lite_chart(spec, key=key, width=width)
        if download and view.png is not None:
            png_download(view.png, key)


def slot(key: str):
    """A keyed container that is on the page in every run, for what is shown only sometimes (notes,
    optional views): the views after it keep their places, and so their Vega views."""
    return st.container(key=f"slot.{key}")


def columns(key: str, spec: int | list[int]) -> list:
    """``st.columns(spec)`` in a keyed container: the charts in them keep their views across reruns."""
    return st.container(key=f"row.{key}").columns(spec)


def selection(key: str, name: str) -> list[dict]:
    """The points selected in the chart ``key`` by its selection ``name`` (for ``on_select`` callbacks)."""
    event = st.session_state.get(key)
    if not event:
        return []
    return list(event.get("selection", {}).get(name, []) or [])


def picture(view: Picture | None, *, key: str | None = None, width: int | str = "stretch") -> None:
    """An RGB view, its colour bar under it, and its PNG download."""
    if view is None:
        return
    st.image(view.rgb, caption=view.caption, width=width, output_format="JPEG")
    if view.colorbar is not None:
        chart(view.colorbar, key=f"{key or id(view)}.colorbar", download=False)
    if key is not None and view.png is not None:
        png_download(view.png, key)


def png_download(figure: plots.Plot, key: str) -> None:
    """A download button whose PNG is drawn only when it is clicked."""
    st.download_button(t("show.download_png"), data=lambda: _png(figure), file_name=f"{key}.png", mime="image/png",
                       key=f"dl.{key}", on_click="ignore")


def _png(figure: plots.Plot) -> bytes:
    fig = figure.draw()
    try:
        return plots.figure_to_png(fig)
    finally:
        fig.clear()
