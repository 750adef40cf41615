"""How a page starts: the shared state, and for the step-by-step pages the chosen block, traced."""

from __future__ import annotations

import dataclasses
import sys

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from cbam import data, imagenet, samples, zoo
from cbam.explore import BlockChoice, TimedTrace
from cbam.i18n import t
from cbam.views import network
from ui import cache, links, show, sidebar
from ui.sidebar import Current
from ui.state import lab, mirrored


def current() -> Current:
    """What this run shows.

    app.py draws the sidebar and leaves its result in ``Lab.fresh`` for the page of the same run,
    which takes it (so it is used once). A page run without app.py (see app.py's note) draws the
    sidebar itself. Fragments must not call this: pass them the state instead.
    """
    state = lab()
    fresh, state.fresh = state.fresh, None
    if fresh is not None:
        return fresh
    # This page ran without app.py: a server whose first request was a page's own URL runs
    # Streamlit's old pages/ mode (see app.py). Leave that mode for the whole process and run again:
    # the rerun goes through app.py and st.navigation, on the same page. (AppTest puts the mode back
    # before each of its runs, so there every run after the first comes here; rerunning would only
    # alternate between the two kinds of run, and widgets are not the same widgets in both.)
    if PagesManager.uses_pages_directory and "streamlit.testing.v1.app_test" not in sys.modules and not state.left_v1_mode:
        state.left_v1_mode = True
        PagesManager.uses_pages_directory = False
        sidebar.ensure_defaults()
        links.read(sidebar.set_image)  # now: the rerun may come without the link's query parameters
        st.rerun()
    return sidebar.render()


def effective_block(state: Current) -> tuple[str, int, int, bool]:
    """Which network's block the step-by-step pages show: (model, r, k, is_variant).

    When r or k differ from the chosen block's own and a trained model identical but for r and k
    exists (e.g. the ablation variants), that model is used, whole: its own features and weights.
    Otherwise the chosen model, whose block ``cache.block`` rebuilds for r and k."""
    block = state.block
    changed = (state.ratio, state.kernel) != (block.reduction_ratio, block.kernel_size)
    if changed and cache.in_zoo(state.model_name) and state.card.trained:
        variant = zoo.find_variant(state.model_name, state.ratio, state.kernel)
        if variant is not None and variant != state.model_name:
            return variant, state.ratio, state.kernel, True
    return state.model_name, state.ratio, state.kernel, False


def block_trace(state: Current) -> tuple[TimedTrace, BlockChoice]:
    """The chosen block (with the user's r and k) traced on its input F from the network."""
    model_name, ratio, kernel, is_variant = effective_block(state)
    choice = cache.block(model_name, state.layer, ratio, kernel)
    if is_variant:
        choice = dataclasses.replace(choice, variant=model_name)
    timed = sidebar.on_device_or_cpu(
        state.device, lambda d: cache.block_trace(model_name, state.image_key, state.layer, ratio, kernel, d))
    return timed, choice


def block_page(title: str) -> tuple[Current, TimedTrace, BlockChoice]:
    """The start of every step-by-step page: the shared state, the page title (its catalogue key: the
    language is known only once the sidebar has run), and the chosen block
    traced with the user's r and k, with its notes shown. Stops the page when the model has no CBAM
    block, or when the block cannot be traced (non-finite features), saying why."""
    state = current()
    st.title(t(title))
    if not state.layers:
        st.info(t("page.no_block"))
        st.stop()
    try:
        timed, choice = block_trace(state)
    except ValueError as error:
        st.error(t("page.cannot_trace", layer=state.layer, error=error), icon=":material/error:")
        st.stop()
    with show.slot("notes"):  # how many notes there are depends on r and k
        fit_note(state)
        show_block_notes(state, choice)
    return state, timed, choice


def image_kind() -> str:
    """"task" (an image of the shapes task), "photo", "synthetic" or "upload" (unknown)."""
    state = lab()
    if state.source == "Sample image":
        return samples.get_sample(state.sample).kind
    return "task" if state.source == "Generated" else "upload"


def fit_note(state: Current) -> None:
    """Say so when the image is not of the kind the model learned: its attention then has no right answer."""
    kind = image_kind()
    if state.card.trained and state.card.class_names == data.CLASS_NAMES and kind != "task":
        st.info(t("page.fit_task"), icon=":material/lightbulb:")
    elif state.card.trained and state.card.class_names == tuple(imagenet.IMAGENET_CLASSES) and kind == "task":
        st.info(t("page.fit_imagenet"), icon=":material/lightbulb:")


def class_names(card: zoo.ModelCard, classes: int) -> tuple[str, ...]:
    """The names of a model's ``classes`` outputs: its card's when they fit, else "class 0", "class 1", …"""
    if len(card.class_names) == classes:
        return tuple(t(f"shape.{n}") if n in data.CLASS_NAMES else n for n in card.class_names)
    return tuple(t("page.class", i=i) for i in range(classes))


def comparison(kind: str, state: Current) -> dict:
    """F'' of the block the pages show, in each arrangement or published form (see cache.comparison)."""
    model_name, ratio, kernel, _ = effective_block(state)
    return cache.comparison(kind, model_name, state.image_key, state.layer, ratio, kernel)


def show_block_notes(state: Current, choice: BlockChoice) -> None:
    if choice.variant is not None:
        st.success(t("page.variant", r=state.ratio, k=state.kernel, title=sidebar.card_title(zoo.get_card(choice.variant))))
    if not state.card.trained:
        st.info(t("page.untrained"))
    for note in choice.notes:
        st.warning(note)


def show_timings(timed: TimedTrace) -> None:
    names = {"channel attention": t("vn.channel_attention"), "spatial attention": t("vn.spatial_attention"),
             "whole block": t("page.whole_block")}
    parts = " · ".join(f"{names.get(label, label)}: {ms:.2f} ms" for label, ms in timed.milliseconds.items())
    st.caption(t("page.measured", device=timed.device.upper(), parts=parts))


def opacity_slider(container=st) -> float:
    """The mask-opacity slider shared by the overlay views; carried by lesson links as ``alpha``."""
    return container.slider(t("page.opacity"), 0.0, 1.0, step=0.05, **mirrored("alpha"))


def photo_note(state: Current, feature: int | None = None) -> str:
    """How the photo became the model's input and, given a feature-map size, what one of its pixels covers
    (see ``views.network.stride_note``)."""
    return network.stride_note(cache.photo(state.image_key, lab().image_bytes).shape[:2], state.card.input_size, feature)


def network_run(state: Current):
    """The network's run on this session's image, on its device (the CPU when the device fails)."""
    return sidebar.on_device_or_cpu(state.device, lambda d: cache.run(state.model_name, state.image_key, d))
