"""CBAM-ResNet-50 (ImageNet) chosen but its weights are not on this machine: say why, and offer ways."""

from __future__ import annotations

import dataclasses

import streamlit as st

from cbam import imagenet, zoo
from cbam.checkpoints import CheckpointError
from ui import cache
from ui.state import lab


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
        state.imagenet_error = str(error)
        bar.empty()
        return
    state.imagenet_error, state.imagenet_panel, state.model = None, False, zoo.IMAGENET_MODEL
    st.rerun()


def _adopt_upload(upload) -> None:
    """Uploaded weights (pytorchcv's, the authors' checkpoint, or ours) become a model of this session."""
    state = lab()
    try:
        network = imagenet.build_imagenet_model(imagenet.from_uploaded_bytes(upload.getvalue()))
    except (imagenet.WeightsError, CheckpointError, ValueError) as error:
        state.imagenet_error = f"{upload.name}: {error}"
        return
    name = cache.new_session_model_name()
    card = dataclasses.replace(zoo.get_card(zoo.IMAGENET_MODEL), name=name,
                               title=f"CBAM-ResNet-50 (ImageNet, {upload.name})", build=None)
    state.session_models[name] = (network, card)
    state.model, state.imagenet_panel, state.imagenet_error = name, False, None
    st.rerun()


def show() -> None:
    state = lab()
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
            _download()
        upload = c2.file_uploader("Or upload a weights file", type=["pth", "tar", "zip", "pt"], key="imagenet.upload",
                                  max_upload_size=imagenet.MAX_DOWNLOAD_BYTES // 2**20)
        if upload is not None and upload.file_id != state.imagenet_upload_id:
            state.imagenet_upload_id = upload.file_id
            _adopt_upload(upload)
        if st.button("Not now", key="imagenet.dismiss"):
            state.imagenet_panel, state.imagenet_error = False, None
            st.rerun()
        if state.imagenet_error:
            error_slot.error(state.imagenet_error)
