"""The Streamlit layer shared by every page: session state, the sidebar, cached computations.

State lives in plain session-state keys (``lab.*``), not in the widgets' own keys. Streamlit
drops a widget's state on any run in which the widget is not drawn, and an uploaded file lives only
in its uploader; copying both into ``lab.*`` keys means a page switch can never lose the image or
the settings, even on a run where the sidebar was not drawn (see the note in app.py).

Pages read ``current()`` and call the ``cached_*`` functions; they never compute tensors themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np
import streamlit as st
import torch
from matplotlib.figure import Figure
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from cbam import cbam_blocks, explore, imagenet, images, plots, samples, zoo
from cbam.checkpoints import CheckpointError
from cbam.explore import BlockChoice, NetworkRun, TimedTrace
from cbam.modules import CBAM
from ui import memory, prefetch

DEFAULT_SAMPLE = "cat.jpg"  # the default model is the zoo's first


# --------------------------------------------------------------------------------------------
# Cached computations (no widgets inside)
# --------------------------------------------------------------------------------------------

# The bounds keep the whole server within a memory budget (issue #7): with CBAM-ResNet-50 the largest
# entries are a model (113 MB), a network run (22 MB), a fresh block of layer4 at r = 1 (34 MB) and a
# block trace (7 MB); all caches together hold at most about 500 MB, typically 150–250 MB
# (`python benchmarks/bench_memory.py --census`). Every cached value is cheap to recompute, except
# the models (loaded from disk) and the network runs (0.1–0.5 s on 2 cores).


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _zoo_model(name: str) -> tuple[torch.nn.Module, zoo.ModelCard]:
    return zoo.load_model(name)


def cached_model(name: str) -> tuple[torch.nn.Module, zoo.ModelCard]:
    """A model of the zoo (shared by every session), or one trained in this session's Training Lab."""
    own = session_models()
    return own[name] if name in own else _zoo_model(name)


def session_models() -> dict[str, tuple[torch.nn.Module, zoo.ModelCard]]:
    """Models trained in this browser session (Training Lab), by name."""
    return st.session_state.setdefault("lab.session_models", {})


def new_session_model_name() -> str:
    """A name no other session uses: the shared caches are keyed by model name."""
    import uuid

    return f"session-{uuid.uuid4().hex[:12]}"


def keep_session_model(name: str, model: torch.nn.Module, config, history: list[dict], finished: bool) -> None:
    """Keep a Training Lab model for this session (a copy, on the CPU, in eval mode), with a card
    saying how it was trained and, once finished, its accuracy on held-out images."""

    from cbam import data, metrics

    model = copy.deepcopy(model).cpu().eval()
    last = history[-1] if history else {}
    held_out = metrics.evaluate_model(model, samples=200, image_size=config.image_size)["accuracy"] if finished else None
    what = "CBAM" if config.attention else "no attention"
    score = f"{held_out:.0%} on 200 held-out images" if held_out is not None else f"stopped after epoch {last.get('epoch', 0)}"
    number = len(session_models()) + (0 if name in session_models() else 1)
    card = zoo.ModelCard(
        name=name,
        title=f"Trained here #{number}: {what}, r={config.reduction_ratio}, k={config.kernel_size} ({score})",
        description=f"{config.epochs} epochs × {config.steps_per_epoch} steps of {config.batch_size} images, "
                    f"{config.arrangement}, seed {config.seed}; training accuracy of the last epoch "
                    f"{last.get('accuracy', 0):.1%}.",
        trained=True,
        input_size=config.image_size,
        mean=data.MEAN,
        std=data.STD,
        class_names=data.CLASS_NAMES,
        metrics={"accuracy": held_out} if held_out is not None else {},
        config=config.to_dict(),
        cbam_options=config.cbam_options(),
    )
    session_models()[name] = (model, card)


def choose_model(name: str) -> None:
    """Make ``name`` the sidebar's model (for buttons' on_click)."""
    st.session_state["lab.model"] = name


def session_model_card(name: str) -> zoo.ModelCard:
    return session_models()[name][1]


@st.cache_data(max_entries=8, max_size="32MB", show_spinner=False)
def cached_decode(image_bytes: bytes) -> tuple[np.ndarray, str]:
    """Decode untrusted bytes; returns the RGB pixels and a description. Raises images.ImageError."""
    image = images.load_image(image_bytes)
    return np.asarray(image), images.describe(image)


@st.cache_data(max_entries=16, max_size="8MB", show_spinner=False)
def cached_input(image_key: str, _image_bytes: bytes, size: int, mean: tuple, std: tuple) -> tuple[torch.Tensor, np.ndarray]:
    """The model input (1, 3, size, size) and the size×size pixels it was made from.

    ``image_key`` (a hash of the bytes) is the cache key; the bytes themselves are not hashed again."""
    image = images.load_image(_image_bytes)
    return images.to_tensor(image, size, mean, std), images.tensor_to_display(image, size)


@st.cache_resource(max_entries=2, show_spinner="Running the network…")
def cached_run(model_name: str, image_key: str, device: str) -> NetworkRun:
    model = model_on(model_name, device)
    x, _ = model_input(model_name, image_key)
    # Every page needs each block's input F (the step-by-step pages trace the block on it) and its
    # two attention maps; the other intermediates are dropped to keep the cache small.
    return explore.run_network(model, x, device, keep=("x", "channel_weights", "spatial_mask"))


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_block(model_name: str, layer: str, ratio: int, kernel: int) -> BlockChoice:
    model, card = cached_model(model_name)
    return _block_with(model.get_submodule(layer), card.trained, ratio, kernel)


def _block_with(block: CBAM, trained: bool, ratio: int, kernel: int) -> BlockChoice:
    """``block`` with r and k (a seeded copy where they are not its own; see ``explore.block_with``)."""
    return explore.block_with(block, ratio, kernel, seed=0, block_is_trained=trained)


@st.cache_resource(max_entries=4, show_spinner=False)
def cached_block_trace(model_name: str, image_key: str, layer: str, ratio: int, kernel: int, device: str) -> TimedTrace:
    run = cached_run(model_name, image_key, device)
    return _trace_block(cached_block(model_name, layer, ratio, kernel).block, run.traces[layer].x, device)


def _trace_block(block: CBAM, x: torch.Tensor, device: str) -> TimedTrace:
    if device != "cpu":  # the block may be shared by every session: time a copy of it on the device
        block = copy.deepcopy(block)
    return explore.timed_trace(block, x, device)


@st.cache_resource(max_entries=2, show_spinner="Copying the model to the device…")
def _device_copy(model_name: str, device: str) -> torch.nn.Module:
    return copy.deepcopy(cached_model(model_name)[0]).to(device)


def model_on(model_name: str, device: str) -> torch.nn.Module:
    """The model on ``device``. Sessions share the CPU model; a GPU gets its own copy, so that one
    session choosing CUDA never moves the model under another session running on the CPU."""
    return cached_model(model_name)[0] if device == "cpu" else _device_copy(model_name, device)


def model_input(model_name: str, image_key: str) -> tuple[torch.Tensor, np.ndarray]:
    """This session's image as the named model's input, and the pixels the model sees."""
    card = cached_model(model_name)[1]
    return cached_input(image_key, st.session_state["lab.image_bytes"], card.input_size, card.mean, card.std)


@st.cache_resource(max_entries=2, show_spinner=False)
def cached_comparison(kind: str, model_name: str, image_key: str, layer: str, ratio: int, kernel: int) -> dict:
    """F'' of the chosen block in each arrangement (kind="arrangements") or published form (kind="variants")."""
    x = cached_block_trace(model_name, image_key, layer, ratio, kernel, "cpu").trace.x
    return comparison_outputs(kind, cached_block(model_name, layer, ratio, kernel).block, x)


def comparison_outputs(kind: str, block: CBAM, x: torch.Tensor) -> dict:
    """F'' of ``block`` on its input ``x`` in each arrangement ("arrangements") or published form ("variants")."""
    blocks = explore.arrangements_of(block) if kind == "arrangements" else explore.variants_of(block)
    return explore.outputs_of(blocks, x)


@st.cache_resource(max_entries=8, show_spinner="Computing Grad-CAM…")
def cached_grad_cam(model_name: str, image_key: str, class_idx: int):
    model, _ = cached_model(model_name)
    x, _ = model_input(model_name, image_key)
    return explore.grad_cam_view(model, x, class_idx)


# --------------------------------------------------------------------------------------------
# The state every page sees
# --------------------------------------------------------------------------------------------


@dataclass
class LabState:
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
        return cached_model(self.model_name)[0].get_submodule(self.layer)


def _default(key: str, value) -> None:
    if f"lab.{key}" not in st.session_state:
        st.session_state[f"lab.{key}"] = value


def _set_image(image_bytes: bytes, label: str) -> bool:
    """Adopt new image bytes if they decode; otherwise show why and keep the last good image."""
    try:
        cached_decode(image_bytes)
    except images.ImageError as error:
        st.session_state["lab.image_error"] = f"{label}: {error}"
        return False
    st.session_state["lab.image_bytes"] = image_bytes
    st.session_state["lab.image_key"] = hashlib.sha256(image_bytes).hexdigest()[:16]
    st.session_state["lab.image_label"] = label
    st.session_state["lab.image_error"] = None
    return True


def use_image(image_bytes: bytes, label: str) -> None:
    """Make a page-made image (e.g. a generated shapes sample) the current image of every page."""
    if _set_image(image_bytes, label):
        st.session_state["lab.source"] = "Generated"


def _ensure_defaults() -> None:
    if "lab.image_bytes" not in st.session_state:
        sample = samples.get_sample(DEFAULT_SAMPLE)
        _set_image(sample.path.read_bytes(), sample.title)
        st.session_state["lab.sample"] = sample.file
    _default("image_error", None)
    _default("source", "Sample image")
    if "lab.model" not in st.session_state:
        st.session_state["lab.model"] = zoo.model_cards()[0].name
    _default("device", "cpu")
    _default("upload_id", None)
    _default("camera_id", None)


def _widget(key: str) -> str:
    """The widget key mirroring ``lab.<key>``, set from it before the widget is drawn.

    ``lab.<key>`` is the truth: the widget's ``on_change`` (``_keep``) copies a user's change into
    it, and every run copies it back into the widget, which may have been dropped or re-created."""
    widget_key = f"w.{key}"
    if f"lab.{key}" in st.session_state:
        st.session_state[widget_key] = st.session_state[f"lab.{key}"]
    return widget_key


def _keep(key: str) -> None:
    st.session_state[f"lab.{key}"] = st.session_state[f"w.{key}"]


def _image_controls() -> None:
    sidebar = st.sidebar
    sources = ["Sample image", "Upload", "Camera"]
    if st.session_state["lab.source"] not in sources:  # an image a page made, e.g. on the Shapes page
        sources.append(st.session_state["lab.source"])
    sidebar.radio("Image source", sources, key=_widget("source"),
                  on_change=_keep, args=("source",), horizontal=True)
    source = st.session_state["lab.source"]
    if source == "Sample image":
        gallery = {sample.file: sample for sample in samples.sample_images()}
        _default("sample", DEFAULT_SAMPLE)
        chosen = gallery[sidebar.selectbox("Sample", list(gallery), format_func=lambda f: gallery[f].title,
                                           key=_widget("sample"), on_change=_keep, args=("sample",))]
        if st.session_state.get("lab.image_label") != chosen.title:
            _set_image(chosen.path.read_bytes(), chosen.title)
        sidebar.caption(f"{chosen.credit} — {chosen.licence}")
    elif source == "Upload":
        upload = sidebar.file_uploader("Image", type=list(images.SUPPORTED_EXTENSIONS), key="w.upload")
        if upload is not None and upload.file_id != st.session_state["lab.upload_id"]:
            st.session_state["lab.upload_id"] = upload.file_id
            if upload.size > images.DEFAULT_MAX_BYTES:
                st.session_state["lab.image_error"] = (
                    f"{upload.name}: the file is {upload.size / 2**20:.1f} MiB; the limit is "
                    f"{images.DEFAULT_MAX_BYTES / 2**20:.0f} MiB."
                )
            else:
                _set_image(upload.getvalue(), upload.name)
    elif source == "Camera":
        photo = sidebar.camera_input("Take a photo", key="w.camera")
        if photo is not None and photo.file_id != st.session_state["lab.camera_id"]:
            st.session_state["lab.camera_id"] = photo.file_id
            _set_image(photo.getvalue(), "Camera photo")
    show_image_error()
    _show_current_image()


def _show_current_image() -> None:
    pixels, description = cached_decode(st.session_state["lab.image_bytes"])
    st.sidebar.image(pixels, caption=f"{st.session_state['lab.image_label']} · {description}", width="stretch")


def _block_label(model_name: str, layer: str, run: NetworkRun | None) -> str:
    block = cached_model(model_name)[0].get_submodule(layer)
    if run is not None and layer in run.traces:
        h, w = run.traces[layer].x.shape[-2:]
        return f"{layer} · {block.channels} ch · {h}×{w}"
    return f"{layer} · {block.channels} ch"


# Controls a lesson link can hide from students (``?hide=model,layer``), and their sidebar labels.
HIDEABLE = {"image": "Image", "model": "Model", "device": "Device", "layer": "Layer",
            "ratio": "Reduction ratio r", "kernel": "Spatial kernel size k"}
# The query parameters a lesson link carries (the page is the URL's path).
URL_PARAMS = ("sample", "model", "layer", "r", "k", "device", "alpha", "hide")


def _hidden(name: str) -> bool:
    return name in st.session_state.get("lab.hidden", ())


def _read_lesson_link() -> None:
    """Once per session: adopt the state a lesson link carries. Unknown or invalid values are ignored
    (with a note), so a stale link still opens."""
    if st.session_state.get("lab.url_read"):
        return
    st.session_state["lab.url_read"] = True
    params, ignored = st.query_params, []
    if "sample" in params:
        try:
            sample = samples.get_sample(params["sample"])
            st.session_state["lab.sample"] = sample.file
            st.session_state["lab.source"] = "Sample image"
            _set_image(sample.path.read_bytes(), sample.title)
        except KeyError:
            ignored.append("sample")
    if "model" in params:
        if params["model"] in {c.name for c in zoo.model_cards()}:  # a session's own models cannot travel
            st.session_state["lab.model"] = params["model"]
        else:
            ignored.append("model")
    if "device" in params:
        st.session_state["lab.device"] = params["device"]  # checked against this machine's devices later
    if "layer" in params:
        st.session_state["lab.layer"] = params["layer"]  # checked against the model's blocks later
    for name, key in (("r", "url_ratio"), ("k", "url_kernel")):
        if name in params:
            try:
                st.session_state[f"lab.{key}"] = int(params[name])
            except ValueError:
                ignored.append(name)
    if "alpha" in params:
        try:
            st.session_state["lab.alpha"] = min(1.0, max(0.0, float(params["alpha"])))
        except ValueError:
            ignored.append("alpha")
    if "hide" in params:
        st.session_state["lab.hidden"] = tuple(h for h in params["hide"].split(",") if h in HIDEABLE)
    if ignored:
        st.session_state["lab.url_note"] = f"The link's {', '.join(ignored)} could not be used; defaults are shown instead."


def _write_lesson_link(state: LabState) -> None:
    """Keep the URL's query parameters equal to what is on screen, so the address bar is a lesson link."""
    wanted = {"model": state.model_name, "device": state.device}
    if state.layer:
        wanted.update(layer=state.layer, r=str(state.ratio), k=str(state.kernel))
    if st.session_state.get("lab.source") == "Sample image":
        wanted["sample"] = st.session_state["lab.sample"]
    if "lab.alpha" in st.session_state:
        wanted["alpha"] = f"{st.session_state['lab.alpha']:.2f}"
    if st.session_state.get("lab.hidden"):
        wanted["hide"] = ",".join(st.session_state["lab.hidden"])
    for key in [k for k in st.query_params if k in URL_PARAMS and k not in wanted]:
        del st.query_params[key]  # other parameters (e.g. Streamlit's own ?embed=true) are left alone
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def lesson_link(hidden: tuple[str, ...] = ()) -> str:
    """The address of this view, optionally hiding some controls for students."""
    params = {k: v for k, v in st.query_params.to_dict().items() if k != "hide"}
    if hidden:
        params["hide"] = ",".join(hidden)
    base = st.context.url or "http://localhost:8501/"
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))


def opacity_slider(container=st) -> float:
    """The mask-opacity slider shared by the overlay views; carried by lesson links as ``alpha``."""
    if "lab.alpha" not in st.session_state:
        st.session_state["lab.alpha"] = 0.55
    alpha = container.slider("Mask opacity", 0.0, 1.0, step=0.05, key=_widget("alpha"), on_change=_keep, args=("alpha",))
    st.query_params["alpha"] = f"{alpha:.2f}"
    return alpha


def _share_box(state: LabState) -> None:
    with st.sidebar.expander("Share this view", icon=":material/link:"):
        hidden = st.multiselect("Hide these controls from students", list(HIDEABLE), format_func=HIDEABLE.get,
                                key="w.share_hide")
        st.code(lesson_link(tuple(hidden)), language=None, wrap_lines=True)
        st.caption("Copy the link with the icon at its top right. It opens this page with this sample, model, layer, "
                   "r, k, device and opacity." + ("" if st.session_state.get("lab.source") == "Sample image"
                                                  else " An uploaded image cannot travel in a link: it opens the default sample."))


def _download_imagenet_weights() -> None:
    bar = st.progress(0.0, text="Downloading the ImageNet weights…")

    def progress(done: int, total: int | None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        bar.progress(fraction, text=f"Downloading the ImageNet weights: {done / 2**20:.0f}"
                                    + (f" of {total / 2**20:.0f} MiB" if total else " MiB"))

    try:
        imagenet.download_weights(progress=progress)
    except imagenet.WeightsError as error:
        st.session_state["lab.imagenet_error"] = str(error)
        bar.empty()
        return
    st.session_state["lab.imagenet_error"] = None
    st.session_state["lab.imagenet_panel"] = False
    st.session_state["lab.model"] = zoo.IMAGENET_MODEL
    st.rerun()


def _adopt_uploaded_weights(upload) -> None:
    """Uploaded weights (pytorchcv's, the authors' checkpoint, or ours) become a model of this session."""
    try:
        model = imagenet.build_imagenet_model(imagenet.from_uploaded_bytes(upload.getvalue()))
    except (imagenet.WeightsError, CheckpointError, ValueError) as error:
        st.session_state["lab.imagenet_error"] = f"{upload.name}: {error}"
        return
    name = new_session_model_name()
    base = zoo.get_card(zoo.IMAGENET_MODEL)
    card = dataclasses.replace(base, name=name, title=f"CBAM-ResNet-50 (ImageNet, {upload.name})", build=None)
    session_models()[name] = (model, card)
    st.session_state.update({"lab.model": name, "lab.imagenet_panel": False, "lab.imagenet_error": None})
    st.rerun()


def _imagenet_panel() -> None:
    """CBAM-ResNet-50 (ImageNet) was chosen but its weights are not here: say why, and offer ways."""
    with st.container(border=True):
        st.markdown("#### CBAM-ResNet-50 (ImageNet) needs its weights first")
        st.markdown(
            f"The weights (about 113 MB, `{imagenet.PYTORCHCV_FILE_NAME}`, from osmr's pytorchcv model store) are "
            "not on this machine yet. The bundled model stays selected meanwhile. Choose one:\n"
            "- **Download** them now (once: they are kept in the PyTorch hub cache, checksum verified);\n"
            "- **upload** a weights file you have (pytorchcv's `.pth` or its `.zip`, or the authors' checkpoint "
            "from Jongchan/attention-module);\n"
            f"- or, for an offline classroom server, set the environment variable `{imagenet.ENV_VAR}` to the "
            "file's path before starting the app."
        )
        error_slot = st.empty()  # filled last, so a failure of this very run shows too
        c1, c2 = st.columns([1, 2])
        if c1.button("Download the weights", key="imagenet.download", type="primary"):
            _download_imagenet_weights()
        upload = c2.file_uploader("Or upload a weights file", type=["pth", "tar", "zip", "pt"], key="imagenet.upload",
                                  max_upload_size=imagenet.MAX_DOWNLOAD_BYTES // 2**20)
        if upload is not None and upload.file_id != st.session_state.get("lab.imagenet_upload_id"):
            st.session_state["lab.imagenet_upload_id"] = upload.file_id
            _adopt_uploaded_weights(upload)
        if st.button("Not now", key="imagenet.dismiss"):
            st.session_state.update({"lab.imagenet_panel": False, "lab.imagenet_error": None})
            st.rerun()
        if st.session_state.get("lab.imagenet_error"):
            error_slot.error(st.session_state["lab.imagenet_error"])


KERNEL_CHOICES = explore.kernel_sizes(11)
"""The values of the sidebar's k slider."""


def ratio_choices(block: CBAM) -> list[int]:
    """The values of the sidebar's r slider for ``block``: the sensible ratios and the block's own."""
    return sorted({*explore.sensible_ratios(block.channels), block.reduction_ratio})


def render_sidebar() -> LabState:
    """Draw the shared controls and return the state every page works from."""
    _ensure_defaults()
    _read_lesson_link()
    if st.session_state.get("lab.url_note"):
        st.info(st.session_state["lab.url_note"])
    if _hidden("image"):
        _show_current_image()
    else:
        _image_controls()
    sidebar = st.sidebar
    cards = {c.name: c for c in zoo.model_cards()} | {name: card for name, (_, card) in session_models().items()}
    if st.session_state["lab.model"] not in cards:
        st.session_state["lab.model"] = next(iter(cards))
    model_name = st.session_state["lab.model"] if _hidden("model") else sidebar.selectbox(
        "Model", list(cards), format_func=lambda n: cards[n].title, key=_widget("model"), on_change=_keep, args=("model",))
    if model_name == zoo.IMAGENET_MODEL and not imagenet.is_available_offline():
        st.session_state["lab.imagenet_panel"] = True  # explain, offer the download, keep a usable model
        model_name = st.session_state["lab.model"] = st.session_state.get("lab.usable_model", next(iter(cards)))
    st.session_state["lab.usable_model"] = model_name
    if st.session_state.get("lab.imagenet_panel"):
        _imagenet_panel()
    card = cards[model_name]
    if not card.trained:
        sidebar.warning("Untrained network: its weights are random, so its attention has not been learned.")

    devices = explore.available_devices()
    if st.session_state["lab.device"] not in devices:
        st.session_state["lab.device"] = "cpu"
    device = st.session_state["lab.device"] if _hidden("device") else sidebar.selectbox(
        "Device", devices, key=_widget("device"), on_change=_keep, args=("device",),
        format_func=lambda d: {"cpu": "CPU", "cuda": "CUDA (GPU)", "mps": "MPS (Apple GPU)"}[d])

    model, _ = cached_model(model_name)
    layers = [name for name, _ in cbam_blocks(model)]
    if not layers:
        sidebar.info("This model has no CBAM blocks.")
    run = safe_run(model_name, st.session_state["lab.image_key"], device)
    device = run.device if run.device in devices else device
    if st.session_state.get("lab.layer") not in layers and layers:
        st.session_state["lab.layer"] = layers[-1]
    layer = ""
    if layers:
        layer = st.session_state["lab.layer"] if _hidden("layer") else sidebar.selectbox(
            "Layer", layers, key=_widget("layer"), on_change=_keep, args=("layer",),
            format_func={name: _block_label(model_name, name, run) for name in layers}.get)

    ratio = kernel = 0
    if layers:
        block = model.get_submodule(layer)
        ratios = ratio_choices(block)
        if st.session_state.get("lab.rk_for") != (model_name, layer):  # a new block: start from its own r and k
            st.session_state["lab.rk_for"] = (model_name, layer)
            st.session_state["lab.ratio"] = block.reduction_ratio
            st.session_state["lab.kernel"] = block.kernel_size or 7
        # a lesson link's r and k apply once, to the block it opens, when they are valid for it
        if st.session_state.get("lab.url_ratio") in ratios:
            st.session_state["lab.ratio"] = st.session_state.pop("lab.url_ratio")
        if st.session_state.get("lab.url_kernel") in KERNEL_CHOICES:
            st.session_state["lab.kernel"] = st.session_state.pop("lab.url_kernel")
        st.session_state.pop("lab.url_ratio", None)
        st.session_state.pop("lab.url_kernel", None)
        ratio = st.session_state["lab.ratio"] if _hidden("ratio") else sidebar.select_slider(
            "Reduction ratio r", ratios, key=_widget("ratio"), on_change=_keep, args=("ratio",),
            help="The shared MLP's hidden layer has max(1, C // r) units.")
        kernel = st.session_state["lab.kernel"] if _hidden("kernel") else sidebar.select_slider(
            "Spatial kernel size k", KERNEL_CHOICES, key=_widget("kernel"), on_change=_keep, args=("kernel",),
            help="The spatial attention convolution is k×k over the 2 pooled maps.")
        sidebar.caption(f"Block's own setting: r = {block.reduction_ratio}, k = {block.kernel_size}; "
                        f"C = {block.channels}, hidden width = {explore.hidden_width(block.channels, ratio)}")

    state = LabState(
        image_key=st.session_state["lab.image_key"],
        image_label=st.session_state["lab.image_label"],
        model_name=model_name,
        card=card,
        layer=layer,
        layers=layers,
        ratio=ratio,
        kernel=kernel,
        device=device,
    )
    _write_lesson_link(state)
    if st.session_state.get("lab.hidden"):
        sidebar.caption("Some controls are fixed by this lesson link.")
    else:
        _share_box(state)
    return state


T = TypeVar("T")


def _on_device_or_cpu(device: str, compute: Callable[[str], T]) -> T:
    """``compute(device)``; when a GPU fails (missing, busy, out of memory), a warning, the CPU
    from now on for this session, and ``compute("cpu")``."""
    try:
        return compute(device)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as error:
        if device == "cpu":
            raise
        st.warning(f"{device.upper()} failed ({str(error).splitlines()[0][:200]}); using the CPU instead.")
        st.session_state["lab.device"] = "cpu"
        return compute("cpu")


def safe_run(model_name: str, image_key: str, device: str) -> NetworkRun:
    """The network's run on ``device``, or on the CPU with a warning when that device fails."""
    return _on_device_or_cpu(device, lambda d: cached_run(model_name, image_key, d))


def current() -> LabState:
    """The state every page works from.

    app.py draws the sidebar and leaves its state under ``lab.fresh`` for the page of the same
    run, which takes it (so it is used once). A page run without app.py (see app.py's note) draws
    the sidebar itself. Fragments must not call this: pass them the state instead.
    """
    # Every page run passes here: once this run's thread ends, what it freed goes back to the system.
    memory.trim_soon()
    state = st.session_state.pop("lab.fresh", None)
    if state is not None:
        return state
    # This page ran without app.py: a server whose first request was a page's own URL runs
    # Streamlit's old pages/ mode (see app.py). Leave that mode for the whole process and run again:
    # the rerun goes through app.py and st.navigation, on the same page. (AppTest puts the mode back
    # before each of its runs, so there every run after the first comes here; rerunning would only
    # alternate between the two kinds of run, and widgets are not the same widgets in both.)
    if PagesManager.uses_pages_directory and not _under_app_test() and not st.session_state.get("lab.left_v1_mode"):
        st.session_state["lab.left_v1_mode"] = True
        PagesManager.uses_pages_directory = False
        _ensure_defaults()
        _read_lesson_link()  # now: the rerun may come without the link's query parameters
        st.rerun()
    return render_sidebar()


def _under_app_test() -> bool:
    return "streamlit.testing.v1.app_test" in sys.modules


def effective_block(state: LabState) -> tuple[str, int, int, bool]:
    """Which network's block the step-by-step pages show: (model, r, k, is_variant).

    When r or k differ from the chosen block's own and a trained model identical but for r and k
    exists (e.g. the ablation variants), that model is used, whole: its own features and weights.
    Otherwise the chosen model, whose block ``cached_block`` rebuilds for r and k."""
    block = state.block
    in_zoo = state.model_name not in session_models()
    if in_zoo and state.card.trained and (state.ratio, state.kernel) != (block.reduction_ratio, block.kernel_size):
        variant = zoo.find_variant(state.model_name, state.ratio, state.kernel)
        if variant is not None and variant != state.model_name:
            return variant, state.ratio, state.kernel, True
    return state.model_name, state.ratio, state.kernel, False


def block_trace(state: LabState) -> tuple[TimedTrace, BlockChoice]:
    """The chosen block (with the user's r and k) traced on its input F from the network."""
    model_name, ratio, kernel, is_variant = effective_block(state)
    choice = cached_block(model_name, state.layer, ratio, kernel)
    if is_variant:
        choice = dataclasses.replace(choice, variant=model_name)
    result = _on_device_or_cpu(
        state.device, lambda d: cached_block_trace(model_name, state.image_key, state.layer, ratio, kernel, d))
    return result, choice


def block_page(title: str) -> tuple[LabState, TimedTrace, BlockChoice]:
    """The start of every step-by-step page: the shared state, the page title, and the chosen block
    traced with the user's r and k, with its notes shown. Stops the page when the model has no
    CBAM block."""
    state = current()
    st.title(title)
    if not state.layers:
        st.info("This model has no CBAM block to show.")
        st.stop()
    timed, choice = block_trace(state)
    show_block_notes(state, choice)
    return state, timed, choice


def comparison(kind: str, state: LabState) -> dict:
    """F'' of the block the pages show, in each arrangement or published form (see cached_comparison)."""
    model_name, ratio, kernel, _ = effective_block(state)
    return cached_comparison(kind, model_name, state.image_key, state.layer, ratio, kernel)


# --------------------------------------------------------------------------------------------
# Rendering helpers
# --------------------------------------------------------------------------------------------


def show(figure: Figure | plots.Plot | Callable[..., Figure], *args, key: str | None = None, caption: str | None = None,
         **kwargs) -> None:
    """Show a figure as a PNG (with a download button when ``key`` is given).

    ``figure`` is a built Figure (rendered, then released) or, better, a ``plots.Plot``, or a builder
    of ``cbam.plots`` with its arguments: ``show(plots.spatial_mask, logits, mask, key="mask")``.
    A builder's PNG is cached by the content of its arguments (see ``figure_png``), so a figure
    whose data did not change is never drawn twice: not on a rerun, not for another session."""
    if isinstance(figure, Figure):
        png = _png_and_release(figure)
    elif isinstance(figure, plots.Plot):
        png = plot_png(figure)
    else:
        png = figure_png(figure, *args, **kwargs)
    st.image(png, caption=caption, width="stretch")
    if key is not None:
        st.download_button("Download PNG", png, file_name=f"{key}.png", mime="image/png", key=f"dl.{key}")


def figure_png(builder: Callable[..., Figure], *args, **kwargs) -> bytes:
    """``plots.figure_to_png(builder(*args, **kwargs))``, from a cache shared by every session.

    Builders are pure functions of their arguments, so the PNG is keyed by a digest of them:
    arrays and tensors by their bytes, numbers and strings by their repr, containers item by item.
    Drawing a figure costs 50–300 ms; the digest of a feature map about a millisecond. An argument
    of any other type is not trusted to have a faithful repr: the figure is then drawn uncached."""
    digest = hashlib.blake2b(f"{builder.__module__}.{builder.__qualname__}".encode(), digest_size=20)
    if not _digest_value(digest, (args, kwargs)):
        return _png_and_release(builder(*args, **kwargs))
    return _cached_png(digest.hexdigest(), builder, args, kwargs)


def plot_png(figure: plots.Plot) -> bytes:
    """``figure_png`` of a described figure."""
    return figure_png(figure.builder, *figure.args, **figure.kwargs)


def _png_and_release(fig: Figure) -> bytes:
    """The figure as PNG bytes; then its artists are dropped, so nothing holds the data it drew."""
    try:
        return plots.figure_to_png(fig)
    finally:
        fig.clear()


_PLAIN = (str, int, float, bool, type(None), np.generic)


def _digest_value(digest, value) -> bool:
    """Feed ``value`` into ``digest``; False when it holds something without a faithful digest."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    if isinstance(value, np.ndarray):
        digest.update(f"<{value.dtype}{value.shape}>".encode())
        digest.update(np.ascontiguousarray(value).data)
        return True
    if isinstance(value, _PLAIN):
        digest.update(f"<{type(value).__name__}:{value!r}>".encode())
        return True
    if isinstance(value, (list, tuple)):
        digest.update(f"<{type(value).__name__}{len(value)}>".encode())
        return all(_digest_value(digest, item) for item in value)
    if isinstance(value, dict):
        digest.update(f"<dict{len(value)}>".encode())
        return all(_digest_value(digest, k) and _digest_value(digest, v) for k, v in value.items())
    return False


@st.cache_data(max_entries=96, max_size="16MB", show_spinner=False)
def _cached_png(digest: str, _builder: Callable[..., Figure], _args: tuple, _kwargs: dict) -> bytes:
    """The rendered figure; only ``digest`` is hashed (Streamlit skips arguments named ``_*``)."""
    return _png_and_release(_builder(*_args, **_kwargs))


def prefetch_variants(state: LabState, figures: Callable[[TimedTrace, CBAM], Iterable[plots.Plot]], *,
                      first: str = "ratio") -> None:
    """At the end of a step-by-step page: draw ahead, in the background, the page's figures at the
    other values of the r and k sliders, nearest first, one notch of the ``first`` slider ("ratio"
    or "kernel", the one the page is about) before one of the other (see ``ui/prefetch.py``).

    ``figures(timed, block)`` is the page's own function from a trace of ``block`` to its figures
    (``cbam.report.channel_plots`` and the like), so what is drawn ahead is exactly what the page would draw. Everything the work needs from this
    session is read here, in the page's run; values that would show a trained variant (another
    network) and sliders fixed by a lesson link are left out."""
    ctx = get_script_run_ctx()
    if ctx is None or not prefetch.is_enabled() or not state.layers:
        return
    try:
        steps = _variant_work(state, figures, first)
    except Exception:  # noqa: BLE001 - drawing ahead is optional, and the page is already drawn
        logging.getLogger(__name__).warning("not drawing ahead", exc_info=True)
        return
    prefetch.submit(ctx.session_id, steps)


def _variant_work(state: LabState, figures: Callable[[TimedTrace, CBAM], Iterable[plots.Plot]], first: str) -> Iterator[None]:
    model, card = cached_model(state.model_name)
    device = st.session_state.get("lab.device", state.device)
    run = safe_run(state.model_name, state.image_key, device)
    base = model.get_submodule(state.layer)
    ratios = [] if _hidden("ratio") else ratio_choices(base)
    kernels = [] if _hidden("kernel") else KERNEL_CHOICES
    # one slider moved at a time, one notch, then two, ...: r and k take turns
    by_ratio = [(ratio, state.kernel) for ratio in _nearest_first(ratios, state.ratio)]
    by_kernel = [(state.ratio, kernel) for kernel in _nearest_first(kernels, state.kernel)]
    turns = (by_ratio, by_kernel) if first == "ratio" else (by_kernel, by_ratio)
    settings = [rk for pair in itertools.zip_longest(*turns) for rk in pair if rk is not None]
    settings = [rk for rk in settings if not effective_block(dataclasses.replace(state, ratio=rk[0], kernel=rk[1]))[3]]
    return _variant_steps(base, card.trained, run.traces[state.layer].x, run.device, settings, figures)


def _nearest_first(values: list[int], current: int) -> list[int]:
    """``values`` other than ``current``, by distance from it along the slider (ties: lower first)."""
    if current not in values:
        return []
    at = values.index(current)
    return [values[i] for i in sorted(range(len(values)), key=lambda i: (abs(i - at), i)) if i != at]


def _variant_steps(base: CBAM, trained: bool, x: torch.Tensor, device: str, settings: list[tuple[int, int]],
                   figures: Callable[[TimedTrace, CBAM], Iterable[plots.Plot]]) -> Iterator[None]:
    """The prefetcher's work, one step per ``next()``: for each (r, k), the block as ``cached_block``
    builds it, traced as ``cached_block_trace`` does, then each of the page's figures into the PNG cache."""
    for ratio, kernel in settings:
        block = _block_with(base, trained, ratio, kernel).block
        timed = _trace_block(block, x, device)
        yield
        for figure in figures(timed, block):
            plot_png(figure)
            yield


def show_image_error() -> None:
    """Why the last file was refused, at the top of the page, until a good image replaces it."""
    error = st.session_state.get("lab.image_error")
    if error:
        st.error(f"That file could not be used. {error} The previous image is still shown.", icon=":material/error:")


def show_block_notes(state: LabState, choice: BlockChoice) -> None:
    if choice.variant is not None:
        st.success(f"r = {state.ratio}, k = {state.kernel}: showing the trained variant “{zoo.get_card(choice.variant).title}”, "
                   "a network trained with these settings (its own features and learned weights), not a freshly "
                   "initialised block.")
    if not state.card.trained:
        st.info("This network is untrained: the block's weights are random, so what you see is the mechanism, "
                "not learned attention.")
    for note in choice.notes:
        st.warning(note)


def show_timings(result: TimedTrace) -> None:
    parts = " · ".join(f"{label}: {ms:.2f} ms" for label, ms in result.milliseconds.items())
    st.caption(f"Measured on {result.device.upper()}: {parts}")


def first(t: torch.Tensor | None) -> torch.Tensor | None:
    """The first sample of a batch-first tensor."""
    return None if t is None else t[0]


# Last, once per server process: everything imported so far lives as long as the process, and the
# garbage collector need not walk it again on every full collection (see memory.freeze_loaded_objects).
memory.freeze_loaded_objects()
