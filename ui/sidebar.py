"""The sidebar every page shares: image, model, device, layer, r and k. ``render()`` draws it and returns
``Current``, what the page of this run works from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from cbam import cbam_blocks, explore, i18n, imagenet, images, samples, zoo
from cbam.i18n import t
from cbam.modules import CBAM
from ui import cache, links, own_model, weights_panel
from ui.state import lab, mirrored

KERNEL_CHOICES = explore.kernel_sizes(11)
"""The values of the k slider."""

DEVICE_NAMES = {"cpu": "CPU", "cuda": "CUDA (GPU)", "mps": "MPS (Apple GPU)"}

UPLOAD_WEIGHTS = "+upload-weights"
"""The Model select's last entry, "Upload weights…" (no model has this name): opens ui/weights_panel.py."""


@dataclass(frozen=True)
class Current:
    """What this run shows: the image, the model and its block, r, k and the device, all checked."""

    image_key: str
    image_label: str
    model_name: str
    card: zoo.ModelCard
    layer: str
    layers: list[str]
    ratio: int
    kernel: int
    device: str

    @property
    def block(self) -> CBAM:
        return cache.block_of(self.model_name, self.layer)


def ratio_choices(block: CBAM) -> list[int]:
    """The values of the r slider for ``block``: the sensible ratios and the block's own, one r per hidden
    width (an adopted block's own r, C // hidden, need not be a power of two: for C = 21 and 2 hidden units
    it is 10, and r = 8 would give the same MLP, so 8 is left out)."""
    own = block.reduction_ratio
    width = explore.hidden_width(block.channels, own)
    return sorted({r for r in explore.sensible_ratios(block.channels)
                   if explore.hidden_width(block.channels, r) != width} | {own})


def apply_language() -> str:
    """The session's language (``Lab.lang``; a lesson link's ``lang=zh`` on the first run) becomes the
    current language of this script run: call it first in every run (app.py, a page run alone, a fragment)."""
    links.read_language()
    return i18n.set_language(lab().lang)


def language_select() -> None:
    """English or 中文: the choice reruns the script, whose first step (``apply_language``) sets it."""
    st.sidebar.selectbox(t("lang.label"), list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get, **mirrored("lang"))


def sample_title(sample: samples.SampleImage) -> str:
    """A sample's title in the current language."""
    return i18n.catalogue(i18n.language()).get(f"sample.{sample.file}", sample.title)


def card_title(card: zoo.ModelCard) -> str:
    """A model's title in the current language (the bundled models'; others keep their own)."""
    if card.title.startswith("Your model: "):  # the server's own model (ui/own_model.py)
        return t("own.title", title=card.title.removeprefix("Your model: "))
    return i18n.catalogue(i18n.language()).get(f"model.{card.name}", card.title)


def image_label() -> str:
    """What the current image is called, in the current language."""
    state = lab()
    if state.source == "Sample image" and state.image_label == samples.get_sample(state.sample).title:
        return sample_title(samples.get_sample(state.sample))
    return state.image_label


def set_image(image_bytes: bytes, label: str) -> bool:
    """Adopt new image bytes if they decode; otherwise say why and keep the last good image."""
    state = lab()
    try:
        cache.decode(image_bytes)
    except images.ImageError as error:
        state.image_error = t("sidebar.labelled_error", label=label, error=error)
        return False
    state.image_bytes, state.image_label, state.image_error = image_bytes, label, None
    state.image_key = hashlib.sha256(image_bytes).hexdigest()[:16]
    return True


def use_image(image_bytes: bytes, label: str) -> None:
    """Make a page-made image (e.g. a generated shapes sample) the current image of every page."""
    if set_image(image_bytes, label):
        lab().source = "Generated"


def ensure_defaults() -> None:
    state = lab()
    if not state.image_bytes:
        sample = samples.get_sample(state.sample)
        set_image(sample.path.read_bytes(), sample.title)
    if not state.model:  # the server's own model (--model-code) when it has one, else the zoo's first
        server = own_model.loaded()
        state.model = server.name if server is not None else zoo.model_cards()[0].name


def show_image_error() -> None:
    """Why the last file was refused, at the top of the page, until a good image replaces it: worded
    again in the language of this run (``i18n.again``), so a language switch reaches it too."""
    if lab().image_error:
        st.error(t("sidebar.image_error", error=i18n.again(lab().image_error)), icon=":material/error:")


def _image_controls() -> None:
    state, sidebar = lab(), st.sidebar
    sources = ["Sample image", "Upload", "Camera"] + ([state.source] if state.source == "Generated" else [])
    sidebar.radio(t("sidebar.image_source"), sources, horizontal=True, format_func={s: _source_label(s) for s in sources}.get, **mirrored("source"))
    if state.source == "Sample image":
        gallery = {sample.file: sample for sample in samples.sample_images()}
        titles = {file: sample_title(sample) for file, sample in gallery.items()}
        chosen = gallery[sidebar.selectbox(t("sidebar.sample"), list(gallery), format_func=titles.get, **mirrored("sample"))]
        if state.image_label != chosen.title:
            set_image(chosen.path.read_bytes(), chosen.title)
        words = i18n.catalogue(i18n.language())
        sidebar.caption(f"{words.get(f'credit.{chosen.file}', chosen.credit)} — {words.get(f'licence.{chosen.licence}', chosen.licence)}")
    elif state.source == "Upload":
        upload = sidebar.file_uploader(t("sidebar.image"), type=list(images.SUPPORTED_EXTENSIONS), key="w.upload",
                                       max_upload_size=images.DEFAULT_MAX_BYTES // 2**20)
        if upload is not None and upload.file_id != state.upload_id:
            state.upload_id = upload.file_id
            if upload.size > images.DEFAULT_MAX_BYTES:
                state.image_error = t("sidebar.too_big", name=upload.name, size=upload.size / 2**20,
                                      limit=images.DEFAULT_MAX_BYTES / 2**20)
            else:
                set_image(upload.getvalue(), upload.name)
    elif state.source == "Camera":
        photo = sidebar.camera_input(t("sidebar.camera"), key="w.camera")
        if photo is not None and photo.file_id != state.camera_id:
            state.camera_id = photo.file_id
            set_image(photo.getvalue(), t("sidebar.camera_photo"))
    show_image_error()
    _show_current_image()


def _source_label(source: str) -> str:
    return t(f"sidebar.source.{source}")


def _show_current_image() -> None:
    state = lab()
    _, description = cache.decode(state.image_bytes)
    st.sidebar.image(cache.thumbnail(state.image_key, state.image_bytes), caption=f"{image_label()} · {description}",
                     width="stretch")


def _block_label(model_name: str, layer: str, run) -> str:
    block = cache.block_of(model_name, layer)
    if run is not None and layer in run.traces:
        h, w = run.traces[layer].x.shape[-2:]
        return t("sidebar.block_label", layer=layer, channels=block.channels, h=h, w=w)
    return t("sidebar.block_label_short", layer=layer, channels=block.channels)


def model_cards() -> dict[str, zoo.ModelCard]:
    """The models this session can choose: the server's own (--model-code), the zoo's, the session's."""
    server = own_model.loaded()
    return ({server.name: server.card} if server is not None else {}) | {c.name: c for c in zoo.model_cards()} | {
        name: card for name, (_, card) in lab().session_models.items()}


def _model_select() -> tuple[str, zoo.ModelCard]:
    state, sidebar = lab(), st.sidebar
    cards = model_cards()
    if state.model == UPLOAD_WEIGHTS:  # chosen: the panel takes the file; a usable model stays selected meanwhile
        state.weights_panel, state.weights_error = "upload", None
        state.model = state.usable_model
    if state.model not in cards:
        state.model = next(iter(cards))
    titles = {name: card_title(card) for name, card in cards.items()} | {UPLOAD_WEIGHTS: t("sidebar.upload_weights")}
    name = state.model if links.hidden("model") else sidebar.selectbox(
        t("sidebar.model"), [*cards, UPLOAD_WEIGHTS], format_func=titles.get, **mirrored("model"))
    if name == zoo.IMAGENET_MODEL and not imagenet.is_available_offline():
        if state.weights_panel != "imagenet":  # explain, offer the download, keep a usable model
            state.weights_panel, state.weights_error = "imagenet", None
        name = state.model = state.usable_model if state.usable_model in cards else next(iter(cards))
    state.usable_model = name
    problem = own_model.describe_current()
    if problem:
        st.error(problem, icon=":material/error:")
    server = own_model.loaded()
    if server is not None and name == server.name:
        for note in server.notes:
            sidebar.warning(i18n.again(note))
    if state.weights_panel:
        weights_panel.show(state.weights_panel)
    if not cards[name].trained:
        sidebar.warning(t("sidebar.untrained"))
    return name, cards[name]


def _sliders(block: CBAM, model_name: str, layer: str) -> tuple[int, int]:
    state, sidebar = lab(), st.sidebar
    ratios = ratio_choices(block)
    if state.rk_for != (model_name, layer):  # a new block: start from its own r and k
        state.rk_for, state.ratio, state.kernel = (model_name, layer), block.reduction_ratio, block.kernel_size or 7
    # a lesson link's r and k apply once, to the block it opens, when they are valid for it
    if state.url_ratio in ratios:
        state.ratio = state.url_ratio
    if state.url_kernel in KERNEL_CHOICES:
        state.kernel = state.url_kernel
    state.url_ratio = state.url_kernel = None
    if not links.hidden("ratio"):
        sidebar.select_slider(t("sidebar.ratio"), ratios, help=t("sidebar.ratio_help"), **mirrored("ratio"))
    if not links.hidden("kernel"):
        sidebar.select_slider(t("sidebar.kernel"), KERNEL_CHOICES, help=t("sidebar.kernel_help"), **mirrored("kernel"))
    sidebar.caption(t("sidebar.own_setting", r=block.reduction_ratio, k=block.kernel_size, C=block.channels,
                      hidden=explore.hidden_width(block.channels, state.ratio)))
    return state.ratio, state.kernel


def render() -> Current:
    """Draw the shared controls and return what this run shows."""
    cache.set_threads()
    apply_language()
    ensure_defaults()
    links.read(set_image)
    i18n.set_language(lab().lang)
    state, sidebar = lab(), st.sidebar
    language_select()
    if state.url_note:
        st.info(state.url_note)
    if links.hidden("image"):
        _show_current_image()
    else:
        _image_controls()
    model_name, card = _model_select()

    devices = explore.available_devices()
    if state.device not in devices:
        state.device = "cpu"
    if not links.hidden("device"):
        sidebar.selectbox(t("sidebar.device"), devices, format_func=DEVICE_NAMES.get, **mirrored("device"))

    network, _ = cache.model(model_name)
    layers = [name for name, _ in cbam_blocks(network)]
    if not layers:
        sidebar.info(t("sidebar.no_blocks"))
    run = on_device_or_cpu(state.device, lambda d: cache.run(model_name, state.image_key, d))
    if state.layer not in layers and layers:
        state.layer = layers[-1]
    layer, ratio, kernel = (state.layer if layers else ""), 0, 0
    if layers:
        if not links.hidden("layer"):
            labels = {name: _block_label(model_name, name, run) for name in layers}
            sidebar.selectbox(t("sidebar.layer"), layers, format_func=labels.get, **mirrored("layer"))
            layer = state.layer
        ratio, kernel = _sliders(network.get_submodule(layer), model_name, layer)

    current = Current(state.image_key, state.image_label, model_name, card, layer, layers, ratio, kernel, run.device)
    links.write(model_name, layer, ratio, kernel, current.device)
    if state.hidden:
        sidebar.caption(t("sidebar.fixed"))
    else:
        links.share_box()
    return current


def on_device_or_cpu(device: str, compute):
    """``compute(device)``; when a GPU fails (missing, busy, out of memory), a warning, the CPU
    from now on for this session, and ``compute("cpu")``."""
    import torch

    try:
        return compute(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
        if device == "cpu":
            raise
        st.warning(t("sidebar.device_failed", device=device.upper(), reason=str(error).splitlines()[0][:200]))
        lab().device = "cpu"
        return compute("cpu")
