"""What the pages compute, cached: models, decoded images, network runs, block traces.

Models are shared by every session and never changed by one: a GPU gets its own copy
(``model_on``), and blocks rebuilt for another r or k are new objects (``explore.block_with``).
The bounds keep a server within a memory budget: with CBAM-ResNet-50 the largest entries are a
model (113 MB), a network run (22 MB), a fresh block of layer4 at r = 1 (34 MB) and a block trace (7 MB).
"""

from __future__ import annotations

import copy
import io
import os
import uuid

import numpy as np
import streamlit as st
import torch
from PIL import Image

from cbam import explore, images, zoo
from cbam.explore import BlockChoice, NetworkRun, TimedTrace
from cbam.modules import CBAM
from cbam.views import overlay
from ui import own_model
from ui.state import lab

THREADS = int(os.environ.get("CBAM_LAB_TORCH_THREADS", "1"))


def set_threads() -> None:
    """One intra-op thread for this script run's computations (``CBAM_LAB_TORCH_THREADS`` overrides).

    Sessions already run in parallel, each script run in a new thread, and OpenMP's thread count is
    a per-thread setting: a new thread that asks for two starts a team of its own and then waits for
    a core another session holds. On the 2-core build machine a slider move took 90 ms with two
    threads and 26 ms with one; a CBAM-ResNet-50 run 0.9-1.4 s against 0.15 s."""
    if torch.get_num_threads() != THREADS:
        torch.set_num_threads(THREADS)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _zoo_model(name: str) -> tuple[torch.nn.Module, zoo.ModelCard]:
    return zoo.load_model(name)


def model(name: str) -> tuple[torch.nn.Module, zoo.ModelCard]:
    """A model of the zoo or the server's own (--model-code; both shared by every session), or one this
    session made (Training Lab, uploads)."""
    own = lab().session_models
    if name in own:
        return own[name]
    server = own_model.loaded()
    if server is not None and name == server.name:
        return server.model, server.card
    return _zoo_model(name)


def in_zoo(name: str) -> bool:
    """Whether ``name`` is a bundled model (not the server's own, not one of this session's)."""
    return name in {card.name for card in zoo.model_cards()}


def new_session_model_name() -> str:
    """A name no other session uses: the shared caches are keyed by model name."""
    return f"session-{uuid.uuid4().hex[:12]}"


@st.cache_data(max_entries=8, max_size="32MB", show_spinner=False)
def decode(image_bytes: bytes) -> tuple[np.ndarray, str]:
    """Decode untrusted bytes; returns the RGB pixels and a description. Raises images.ImageError."""
    image = images.load_image(image_bytes)
    return np.asarray(image), images.describe(image)


@st.cache_data(max_entries=8, max_size="16MB", show_spinner=False)
def photo(image_key: str, _image_bytes: bytes) -> np.ndarray:
    """The photo at its own shape, long side at most 512 px: what overlays are drawn on."""
    return overlay.display_photo(images.load_image(_image_bytes))


@st.cache_data(max_entries=16, max_size="8MB", show_spinner=False)
def thumbnail(image_key: str, _image_bytes: bytes) -> bytes:
    """The sidebar's picture of the image: a JPEG of the photo as overlays show it, encoded once."""
    buffer = io.BytesIO()
    Image.fromarray(photo(image_key, _image_bytes)).save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


@st.cache_data(max_entries=16, max_size="8MB", show_spinner=False)
def _input(image_key: str, _image_bytes: bytes, size: int, mean: tuple, std: tuple) -> tuple[torch.Tensor, np.ndarray]:
    image = images.load_image(_image_bytes)
    return images.to_tensor(image, size, mean, std), images.tensor_to_display(image, size)


def model_input(model_name: str, image_key: str) -> tuple[torch.Tensor, np.ndarray]:
    """This session's image as the named model's input (1, 3, s, s), and the s×s pixels it was made from."""
    card = model(model_name)[1]
    return _input(image_key, lab().image_bytes, card.input_size, card.mean, card.std)


@st.cache_resource(max_entries=2, show_spinner="Copying the model to the device…")
def _device_copy(model_name: str, device: str) -> torch.nn.Module:
    return copy.deepcopy(model(model_name)[0]).to(device)


def model_on(model_name: str, device: str) -> torch.nn.Module:
    """The model on ``device``. Sessions share the CPU model; a GPU gets its own copy, so that one
    session choosing CUDA never moves the model under another session running on the CPU."""
    return model(model_name)[0] if device == "cpu" else _device_copy(model_name, device)


@st.cache_resource(max_entries=2, show_spinner="Running the network…")
def run(model_name: str, image_key: str, device: str) -> NetworkRun:
    x, _ = model_input(model_name, image_key)
    # Every page needs each block's input F (the step-by-step pages trace the block on it) and its
    # two attention maps; the other intermediates are dropped to keep the cache small.
    return explore.run_network(model_on(model_name, device), x, device, keep=("x", "channel_weights", "spatial_mask"))


@st.cache_resource(max_entries=4, show_spinner=False)
def block(model_name: str, layer: str, ratio: int, kernel: int) -> BlockChoice:
    """The block with r and k (a seeded copy where they are not its own; see ``explore.block_with``)."""
    network, card = model(model_name)
    return explore.block_with(network.get_submodule(layer), ratio, kernel, seed=0, block_is_trained=card.trained)


@st.cache_resource(max_entries=4, show_spinner=False)
def block_trace(model_name: str, image_key: str, layer: str, ratio: int, kernel: int, device: str) -> TimedTrace:
    x = run(model_name, image_key, device).traces[layer].x
    chosen = block(model_name, layer, ratio, kernel).block
    if device != "cpu":  # the block may be shared by every session: trace a copy of it on the device
        chosen = copy.deepcopy(chosen)
    return explore.timed_trace(chosen, x, device)


@st.cache_resource(max_entries=2, show_spinner=False)
def comparison(kind: str, model_name: str, image_key: str, layer: str, ratio: int, kernel: int) -> dict:
    """F'' of the block in each arrangement (kind="arrangements") or published form (kind="variants")."""
    x = block_trace(model_name, image_key, layer, ratio, kernel, "cpu").trace.x
    chosen = block(model_name, layer, ratio, kernel).block
    blocks = explore.arrangements_of(chosen) if kind == "arrangements" else explore.variants_of(chosen)
    return explore.outputs_of(blocks, x)


@st.cache_resource(max_entries=8, show_spinner="Computing Grad-CAM…")
def grad_cam(model_name: str, image_key: str, class_idx: int) -> explore.GradCamView:
    """Grad-CAM of a copy of the model: it hooks the model's last stage, and the shared model is never changed.
    Raises ValueError when the network has no layer Grad-CAM can use (the message says why)."""
    x, _ = model_input(model_name, image_key)
    return explore.grad_cam_view(copy.deepcopy(model(model_name)[0]), x, class_idx)


def block_of(model_name: str, layer: str) -> CBAM:
    return model(model_name)[0].get_submodule(layer)


def keep_session_model(name: str, network: torch.nn.Module, config, history: list[dict], finished: bool) -> None:
    """Keep a Training Lab model for this session (a copy, on the CPU, in eval mode), with a card
    saying how it was trained and, once finished, its accuracy on held-out images."""
    from cbam import data, metrics

    own = lab().session_models
    network = copy.deepcopy(network).cpu().eval()
    last = history[-1] if history else {}
    held_out = metrics.evaluate_model(network, samples=200, image_size=config.image_size)["accuracy"] if finished else None
    what = "CBAM" if config.attention else "no attention"
    score = f"{held_out:.0%} on 200 held-out images" if held_out is not None else f"stopped after epoch {last.get('epoch', 0)}"
    number = len(own) + (0 if name in own else 1)
    card = zoo.ModelCard(
        name=name,
        title=f"Trained here #{number}: {what}, r={config.reduction_ratio}, k={config.kernel_size} ({score})",
        description=f"{config.epochs} epochs × {config.steps_per_epoch} steps of {config.batch_size} images, "
                    f"{config.arrangement}, seed {config.seed}; training accuracy of the last epoch "
                    f"{last.get('accuracy', 0):.1%}.",
        trained=True, input_size=config.image_size, mean=data.MEAN, std=data.STD, class_names=data.CLASS_NAMES,
        metrics={"accuracy": held_out} if held_out is not None else {}, config=config.to_dict(),
        cbam_options=config.cbam_options(),
    )
    own[name] = (network, card)
