"""Lesson links: the URL carries the sample, model, layer, r, k, device, opacity and guided step, and can hide controls.

``/spatial?sample=cat.jpg&model=demo&layer=stages.3.cbam&r=16&k=7&alpha=0.55&hide=model,ratio``
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from cbam import i18n, samples, zoo
from cbam.i18n import t
from ui import own_model
from ui.state import lab

# Controls a lesson link can hide from students (``?hide=model,layer``); their sidebar labels are
# the catalogue's "links.hide.<name>".
HIDEABLE = ("image", "model", "device", "layer", "ratio", "kernel")
# The query parameters a lesson link carries (the page is the URL's path; ``step`` only on /steps,
# where the page writes it).
PARAMS = ("sample", "model", "layer", "r", "k", "device", "alpha", "hide", "step", "lang")


def hide_label(name: str) -> str:
    return t(f"links.hide.{name}")


def read_language() -> None:
    """Before the first run's navigation: a lesson link's ``lang`` (``?lang=zh``), once per session."""
    state = lab()
    if not state.url_read and st.query_params.get("lang") in i18n.LANGUAGES:
        state.lang = st.query_params["lang"]


def hidden(name: str) -> bool:
    return name in lab().hidden


def read(set_image) -> None:
    """Once per session: adopt the state a lesson link carries. Unknown or invalid values are ignored
    (with a note), so a stale link still opens. ``set_image(bytes, label)`` adopts a sample."""
    state = lab()
    if state.url_read:
        return
    state.url_read = True
    params, ignored = st.query_params, []
    if "sample" in params:
        try:
            sample = samples.get_sample(params["sample"])
            state.sample, state.source = sample.file, "Sample image"
            set_image(sample.path.read_bytes(), sample.title)
        except KeyError:
            ignored.append("sample")
    if "model" in params:
        server = own_model.loaded()  # the server's own model (--model-code) travels; a session's cannot
        if params["model"] in {c.name for c in zoo.model_cards()} | ({server.name} if server else set()):
            state.model = params["model"]
        else:
            ignored.append("model")
    if "device" in params:
        state.device = params["device"]  # checked against this machine's devices later
    if "layer" in params:
        state.layer = params["layer"]  # checked against the model's blocks later
    for name in ("r", "k"):
        if name in params:
            try:
                setattr(state, "url_ratio" if name == "r" else "url_kernel", int(params[name]))
            except ValueError:
                ignored.append(name)
    if "alpha" in params:
        try:
            state.alpha = min(1.0, max(0.0, float(params["alpha"])))
        except ValueError:
            ignored.append("alpha")
    if "step" in params:
        try:
            state.step = max(0, int(params["step"]) - 1)  # checked against the block's steps by the page
        except ValueError:
            ignored.append("step")
    if "lang" in params:
        if params["lang"] in i18n.LANGUAGES:
            state.lang = params["lang"]
        else:
            ignored.append("lang")
    if "hide" in params:
        state.hidden = tuple(h for h in params["hide"].split(",") if h in HIDEABLE)
    if ignored:
        state.url_note = t("links.ignored", names=", ".join(ignored))


def write(model_name: str, layer: str, ratio: int, kernel: int, device: str) -> None:
    """Keep the URL's query parameters equal to what is on screen, so the address bar is a lesson link."""
    state = lab()
    wanted = {"model": model_name, "device": device, "alpha": f"{state.alpha:.2f}"}
    if layer:
        wanted.update(layer=layer, r=str(ratio), k=str(kernel))
    if state.source == "Sample image":
        wanted["sample"] = state.sample
    if state.lang != i18n.DEFAULT:
        wanted["lang"] = state.lang
    if state.hidden:
        wanted["hide"] = ",".join(state.hidden)
    for key in [k for k in st.query_params if k in PARAMS and k not in wanted]:
        del st.query_params[key]  # other parameters (e.g. Streamlit's own ?embed=true) are left alone
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def link(hide: tuple[str, ...] = ()) -> str:
    """The address of this view, optionally hiding some controls for students."""
    params = {k: v for k, v in st.query_params.to_dict().items() if k != "hide"}
    if hide:
        params["hide"] = ",".join(hide)
    parts = urlsplit(st.context.url or "http://localhost:8501/")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params), ""))


def share_box() -> None:
    with st.sidebar.expander(t("links.share"), icon=":material/link:"):
        hide = st.multiselect(t("links.hide_label"), list(HIDEABLE), format_func={h: hide_label(h) for h in HIDEABLE}.get, key="w.share_hide")
        st.code(link(tuple(hide)), language=None, wrap_lines=True)
        st.caption(t("links.copy") + ("" if lab().source == "Sample image" else t("links.copy_upload")))
