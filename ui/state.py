"""A session's state: one typed object under one session-state key, each default written once.

Widgets do not own their values. Streamlit drops a widget's state on any run that does not draw it
(a page switch, a run of a page without the sidebar), and an uploaded file lives only in its
uploader; so every value lives here, the widget ``w.<name>`` is set from it before it is drawn
(``widget``), and a user's change is copied back by its ``on_change`` (``keep``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

KEY = "lab"
DEFAULT_SAMPLE = "shapes_task.png"  # the default model (the demo) learned this task: its attention means something here
DEFAULT_ALPHA = 0.55


@dataclass
class Lab:
    """Everything this browser session has chosen."""

    # The image: bytes, a key for the caches (a hash of the bytes), what to call it, why the last file was refused
    image_bytes: bytes = b""
    image_key: str = ""
    image_label: str = ""
    image_error: str | None = None  # a cbam.i18n.Text: shown worded again in the current language
    source: str = "Sample image"  # "Sample image", "Upload", "Camera", or "Generated" (the Shapes page)
    sample: str = DEFAULT_SAMPLE
    upload_id: str | None = None
    camera_id: str | None = None
    # The model, its block, and the sliders
    model: str = ""  # "" until the sidebar picks the zoo's first model
    usable_model: str = ""  # the last model whose weights were here (kept while ImageNet weights are missing)
    device: str = "cpu"
    layer: str = ""
    ratio: int = 0
    kernel: int = 0
    rk_for: tuple[str, str] = ("", "")  # the (model, layer) whose own r and k the sliders started from
    alpha: float = DEFAULT_ALPHA  # mask opacity of every overlay
    cmap: str = "magma"  # colour map of Ms over the photo
    window: bool = True  # show the k×k window over the photo
    sort: bool = True  # Mc sorted by weight
    channel: int | None = None  # the channel of "one channel, with its numbers" (None: the most attended)
    compare: list[int] | None = None  # the channels of F vs F' (None: the two most and the least attended)
    position: tuple[int, int] | None = None  # (row, col) of Ms chosen on the Spatial page (None: its peak)
    lang: str = "en"  # the language of every page (cbam/i18n.py: "en" or "zh"); lesson links carry it as lang=zh
    step: int = 0  # the step shown on the Step by step page (0: F; lesson links count from 1)
    # Lesson links
    hidden: tuple[str, ...] = ()
    url_read: bool = False
    url_note: str | None = None
    url_ratio: int | None = None
    url_kernel: int | None = None
    left_v1_mode: bool = False
    # The weights panel (ui/weights_panel.py: "imagenet", "upload" or "" when closed) and the models this
    # session made (Training Lab, uploaded weights)
    weights_panel: str = ""
    weights_error: str | None = None
    weights_upload_id: str | None = None
    upload_input_size: int = 224  # the input size of an uploaded network
    session_models: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # What app.py's sidebar computed for the page of the same run (taken once, by page.current)
    fresh: Any = None

    def pick_channel(self, channel: int, default_compare: list[int]) -> None:
        """A channel clicked in the Mc chart: it becomes the one shown with its numbers, and joins
        (or moves to the end of) the channels compared in F vs F', at most 6 of them."""
        compare = self.compare if self.compare is not None else default_compare
        self.channel = channel
        self.compare = [*[c for c in compare if c != channel], channel][-6:]


def lab() -> Lab:
    """This session's state (created with its defaults on first use)."""
    if KEY not in st.session_state:
        st.session_state[KEY] = Lab()
    return st.session_state[KEY]


def widget(name: str) -> str:
    """The key of the widget mirroring ``Lab.<name>``, set from it before the widget is drawn."""
    key = f"w.{name}"
    st.session_state[key] = getattr(lab(), name)
    return key


def keep(name: str) -> None:
    """``on_change`` of a mirrored widget: the user's value becomes the state's."""
    setattr(lab(), name, st.session_state[f"w.{name}"])


def mirrored(name: str) -> dict[str, Any]:
    """The keyword arguments that make a widget mirror ``Lab.<name>``."""
    return {"key": widget(name), "on_change": keep, "args": (name,)}
