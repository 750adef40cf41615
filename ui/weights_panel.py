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

from cbam import i18n, imagenet, usercode, zoo
from cbam.checkpoints import CheckpointError
from cbam.i18n import t
from ui import cache
from ui.state import lab, mirrored

MAX_UPLOAD_MIB = imagenet.MAX_DOWNLOAD_BYTES // 2**20
UPLOAD_TYPES = ["pth", "tar", "zip", "pt", "bin"]


def close() -> None:
    state = lab()
    state.weights_panel, state.weights_error = "", None


def _download() -> None:
    bar = st.progress(0.0, text=t("wp.downloading"))

    def progress(done: int, total: int | None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        bar.progress(fraction, text=t("wp.progress", done=done / 2**20)
                                    + (t("wp.of_mib", total=total / 2**20) if total else t("wp.mib")))

    state = lab()
    try:
        imagenet.download_weights(progress=progress)
    except imagenet.WeightsError as error:
        state.weights_error = t("wp.failed", error=error)
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
        state.weights_error = t("wp.bad", name=upload.name, reason=error)
        return
    name = cache.new_session_model_name()
    state.session_models[name] = (network, dataclasses.replace(card, name=name, title=f"{card.title}: {upload.name}",
                                                               input_size=input_size))
    close()
    state.model = name
    st.rerun()


def _imagenet_text() -> None:
    st.markdown(t("wp.imagenet_h"))
    st.markdown(t("wp.imagenet_text", file=imagenet.PYTORCHCV_FILE_NAME, env=imagenet.ENV_VAR))


def _upload_text() -> None:
    st.markdown(t("wp.upload_h"))
    st.markdown(t("wp.upload_text"))


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
            if c1.button(t("wp.download"), key="imagenet.download", type="primary"):
                _download()
            input_size = imagenet.INPUT_SIZE
            label = t("wp.or_upload")
        else:
            input_size = int(c1.number_input(
                t("wp.input_size"), 32, 1024, step=32, **mirrored("upload_input_size"), help=t("wp.input_help")))
            label = t("wp.file")
        upload = c2.file_uploader(label, type=UPLOAD_TYPES, key=f"{prefix}.upload", max_upload_size=MAX_UPLOAD_MIB)
        if upload is not None and upload.file_id != state.weights_upload_id:
            state.weights_upload_id = upload.file_id
            _adopt_upload(upload, input_size)
        if st.button(t("wp.not_now"), key=f"{prefix}.dismiss"):
            close()
            st.rerun()
        if state.weights_error:
            # worded again in this run's language, so a language switch reaches it too
            error_slot.error(usercode.one_line(i18n.again(state.weights_error)), icon=":material/error:")
