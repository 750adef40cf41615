"""The cluttered-shapes task the bundled models were trained on, with examples."""

import io

import streamlit as st
from PIL import Image

from cbam import data
from cbam.views import network as views
from ui import page, show, sidebar

state = page.current()
st.title("The shapes task: where attention has a right answer")
st.markdown(
    "Attention computed with random weights teaches nothing, and on a photo nobody can say where a network *should* "
    "look. So CBAM Lab's own models learn a task where the answer is known: each image holds **one red object** among "
    "distractors in other colours, and the class is **the shape of the red object** "
    f"({', '.join(data.CLASS_NAMES)}). The distractors use the same shapes, so the network must find the red object "
    "to answer. Every image comes with the target's mask; it is never used for training, only to check afterwards "
    "whether the learned spatial attention points at the target (the *pointing game*)."
)
with st.expander("How an image is made"):
    st.markdown(
        f"1. A grey, slightly coloured background with two faint stripe patterns and a few thin lines in distractor colours.\n"
        f"2. {data.N_DISTRACTORS[0]}–{data.N_DISTRACTORS[1]} distractor shapes in green, blue, yellow, cyan, purple or white, "
        "at random sizes, positions and rotations.\n"
        "3. The red target, drawn last, so its mask is exactly the pixels it covers.\n"
        "4. Gaussian pixel noise over everything.\n\n"
        f"Image *i* of a stream with seed *s* is drawn from its own generator, so it is the same on every machine. "
        f"Training streams use seeds below {data.HELDOUT_SEED_START:,}; evaluation uses seed {data.EVAL_SEED:,} and up, "
        "which no training run sees."
    )


@st.fragment
def examples() -> None:
    c1, c2 = st.columns(2)
    seed = c1.number_input("Seed", 0, 10**9, value=int(data.EVAL_SEED), key="shapes.seed")
    start = c2.number_input("First image", 0, 10**6, value=0, step=12, key="shapes.start")
    samples = data.make_samples(12, int(seed), start=int(start))
    st.markdown("**Cluttered shapes: the class is the shape of the red object** (right: its target mask, "
                "used only for scoring)")
    pictures = views.masks_on_images([s.image for s in samples], [s.mask.astype("float32") for s in samples],
                                     [f"#{int(start) + i} · {s.class_name}" for i, s in enumerate(samples)], alpha=0.0)
    masks = views.masks_on_images([s.image for s in samples], [s.mask.astype("float32") for s in samples],
                                  ["target mask"] * len(samples), alpha=0.6)
    columns = st.columns(6)
    for index, (picture, mask) in enumerate(zip(pictures, masks)):
        with columns[(2 * index) % 6]:
            show.picture(picture)
        with columns[(2 * index + 1) % 6]:
            show.picture(mask)
    chosen = st.selectbox("Explore one of these on the other pages", range(12),
                          format_func=lambda i: f"#{int(start) + i} · {samples[i].class_name}", key="shapes.pick")
    if st.button("Use this image", key="shapes.use"):
        buffer = io.BytesIO()
        Image.fromarray(samples[chosen].image).save(buffer, format="PNG")
        sidebar.use_image(buffer.getvalue(), f"Shapes seed {int(seed)} #{int(start) + chosen} ({samples[chosen].class_name})")
        st.rerun()


examples()
