"""The cluttered-shapes task the bundled models were trained on, with examples."""

import io

import streamlit as st
from PIL import Image

from cbam import data
from cbam.i18n import t
from cbam.views import network as views
from ui import page, show, sidebar

state = page.current()


def shape(name: str) -> str:
    """A class of the shapes task in the current language."""
    return t(f"shape.{name}")


st.title(t("pshapes.title"))
st.markdown(t("pshapes.intro", classes=", ".join(shape(c) for c in data.CLASS_NAMES)))
with st.expander(t("pshapes.how")):
    st.markdown(t("pshapes.how_text", low=data.N_DISTRACTORS[0], high=data.N_DISTRACTORS[1],
                  heldout=data.HELDOUT_SEED_START, eval=data.EVAL_SEED))


@st.fragment
def examples() -> None:
    sidebar.apply_language()  # a fragment's rerun runs only this function
    c1, c2 = st.columns(2)
    seed = c1.number_input(t("pshapes.seed"), 0, 10**9, value=int(data.EVAL_SEED), key="shapes.seed")
    start = c2.number_input(t("pshapes.first"), 0, 10**6, value=0, step=12, key="shapes.start")
    samples = data.make_samples(12, int(seed), start=int(start))
    st.markdown(t("pshapes.examples"))
    pictures = views.masks_on_images([s.image for s in samples], [s.mask.astype("float32") for s in samples],
                                     [f"#{int(start) + i} · {shape(s.class_name)}" for i, s in enumerate(samples)], alpha=0.0)
    masks = views.masks_on_images([s.image for s in samples], [s.mask.astype("float32") for s in samples],
                                  [t("pshapes.target_mask")] * len(samples), alpha=0.6)
    columns = st.columns(6)
    for index, (picture, mask) in enumerate(zip(pictures, masks)):
        with columns[(2 * index) % 6]:
            show.picture(picture)
        with columns[(2 * index + 1) % 6]:
            show.picture(mask)
    chosen = st.selectbox(t("pshapes.explore"), range(12),
                          format_func={i: f"#{int(start) + i} · {shape(s.class_name)}" for i, s in enumerate(samples)}.get,
                          key="shapes.pick")
    if st.button(t("pshapes.use"), key="shapes.use"):
        buffer = io.BytesIO()
        Image.fromarray(samples[chosen].image).save(buffer, format="PNG")
        sidebar.use_image(buffer.getvalue(), t("pshapes.label", seed=int(seed), i=int(start) + chosen,
                                               name=shape(samples[chosen].class_name)))
        st.rerun()


examples()
