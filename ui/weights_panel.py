"""Weights this app does not have yet, in one panel of two kinds (``Lab.weights_panel``):

* "imagenet": CBAM-ResNet-50 (ImageNet) was chosen but its weights are not on this machine: say why,
  offer the download, an upload, or the environment variable;
* "upload": "Upload weights…" was chosen in the Model select: a CBAM-ResNet-18/34/50/101 file in the
  authors', pytorchcv's, timm's or CBAM Lab's layout.

Either way an uploaded file is read as tensors only (``cbam.checkpoints.load`` through
``cbam.usercode.model_from_weights``, never unpickled as code); its layout and depth are read from its
keys, and the network becomes a model of this session (``Lab.session_models``), selected. A file that
cannot be used gives an ``st.error`` naming it, and the previous model stays selected.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from cbam import imagenet, usercode, zoo
from cbam.checkpoints import CheckpointError
from ui import cache
from ui.state import lab, mirrored

MAX_UPLOAD_MIB = imagenet.MAX_DOWNLOAD_BYTES // 2**20
UPLOAD_TYPES = ["pth", "tar", "zip", "pt", "bin"]


def close() -> None:
    state = lab()
    state.weights_panel, state.weights_error = "", None


def _download() -> None:
    bar = st.progress(0.0, text="Downloading the ImageNet weights…")

    def progress(done: int, total: int | None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        bar.progress(fraction, text=f"Downloading the ImageNet weights: {done / 2**20:.0f}"
                                    + (f" of {total / 2**20:.0f} MiB" if total else " MiB"))

    state = lab()
    try:
        imagenet.download_weights(progress=progress)
    except imagenet.WeightsError as error:
        state.weights_error = str(error)
        bar.empty()
        return
    close()
    state.model = zoo.IMAGENET_MODEL
    st.rerun()


def _adopt_upload(upload, input_size: int) -> None:
    """Uploaded weights become a model of this session, selected; or an error, and nothing changes."""
    state = lab()
    try:
        network, card = usercode.model_from_weights(upload.getvalue())
    except (CheckpointError, ValueError, imagenet.WeightsError) as error:
        reason = usercode.one_line(error).rstrip(".")
        state.weights_error = (f"{upload.name} could not be used as CBAM-ResNet weights: {reason}. "
                               "The previous model stays selected.")
        return
    name = cache.new_session_model_name()
    state.session_models[name] = (network, dataclasses.replace(card, name=name, title=f"{card.title}: {upload.name}",
                                                               input_size=input_size))
    close()
    state.model = name
    st.rerun()


def _imagenet_text() -> None:
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


def _upload_text() -> None:
    st.markdown("#### Upload the weights of a CBAM-ResNet")
    st.markdown(
        "CBAM-ResNet-18, -34, -50 or -101 in the authors' layout (Jongchan/attention-module's checkpoint), "
        "pytorchcv's (`cbam_resnet*`), timm's (`resnet18/34/50` built with `block_args={\"attn_layer\": \"cbam\"}`) "
        "or CBAM Lab's. The layout and the depth are read from the file's keys; the file is read as tensors "
        "only, never run. The network becomes a model of this session (nobody else sees it); the current "
        "model stays selected until it loads."
    )


def show(kind: str) -> None:
    """The panel of ``kind`` ("imagenet" or "upload"), at the top of the page."""
    state = lab()
    prefix = "imagenet" if kind == "imagenet" else "weights"
    with st.container(border=True):
        if kind == "imagenet":
            _imagenet_text()
        else:
            _upload_text()
        error_slot = st.empty()  # filled last, so a failure of this very run shows too
        c1, c2 = st.columns([1, 2])
        if kind == "imagenet":
            if c1.button("Download the weights", key="imagenet.download", type="primary"):
                _download()
            input_size = imagenet.INPUT_SIZE
            label = "Or upload a weights file"
        else:
            input_size = int(c1.number_input(
                "Input size (pixels)", 32, 1024, step=32, **mirrored("upload_input_size"),
                help="Images are resized to this square. 224 for ImageNet weights; the network takes any size."))
            label = "Weights file"
        upload = c2.file_uploader(label, type=UPLOAD_TYPES, key=f"{prefix}.upload", max_upload_size=MAX_UPLOAD_MIB)
        if upload is not None and upload.file_id != state.weights_upload_id:
            state.weights_upload_id = upload.file_id
            _adopt_upload(upload, input_size)
        if st.button("Not now", key=f"{prefix}.dismiss"):
            close()
            st.rerun()
        if state.weights_error:
            error_slot.error(state.weights_error, icon=":material/error:")
