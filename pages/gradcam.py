"""Grad-CAM, after the paper's Figure 4: where a network with CBAM and one without look."""

import streamlit as st

from cbam import cbam_blocks, zoo
from cbam.views import network as views
from ui import cache, page, show
from ui.state import lab

state = page.current()
st.title("Grad-CAM: where does the network look?")
page.fit_note(state)
st.markdown(
    "Grad-CAM (Selvaraju et al., 2017) weights the last convolutional stage's feature maps by how much each one "
    "raises the score of a class, and keeps the positive part: a map of the evidence for that class. The CBAM paper "
    "(Figure 4) shows Grad-CAM of ResNet-50 with and without CBAM on the same images: with CBAM the maps cover the "
    "object better and the target class gets a higher probability. Here the same comparison runs on your image."
)


def partner(card: zoo.ModelCard) -> str | None:
    """The model to compare with: the no-attention baseline for a CBAM model of the same task, and back."""
    other = "demo" if card.name == "baseline" else "baseline"
    try:
        other_card = zoo.get_card(other)
    except zoo.UnknownModelError:
        return None
    return other if other_card.class_names == card.class_names and other != card.name else None


names = [state.model_name] + ([partner(state.card)] if partner(state.card) else [])
run = page.network_run(state)
class_names = page.class_names(state.card, run.probabilities.shape[-1])  # indices when the names are unknown
predicted = int(run.probabilities[0].argmax())
# The labels as a dict's lookup, not a lambda: Streamlit keeps a widget's format_func in the session,
# and a lambda would keep this page's globals (the models below) alive with it.
labels = {i: name + (" (predicted)" if i == predicted else "") for i, name in enumerate(class_names)}
class_idx = st.selectbox("Class to explain", range(len(class_names)), index=predicted, format_func=labels.get,
                         key="gradcam.class")
if not state.card.trained:
    st.info("This network is untrained: its Grad-CAM shows where random features respond, not learned evidence.")

photo = cache.photo(state.image_key, lab().image_bytes)
columns = st.columns(len(names))
for column, name in zip(columns, names):
    with column:
        model, card = cache.model(name)
        _, pixels = cache.model_input(name, state.image_key)
        st.subheader(("With CBAM: " if cbam_blocks(model) else "Without attention: ") + card.title)
        try:
            view = cache.grad_cam(name, state.image_key, int(class_idx))
        except ValueError as error:
            st.error(f"Grad-CAM cannot be computed for this network: {error}.", icon=":material/error:")
            continue
        st.metric(f"P({class_names[class_idx]})", f"{float(view.probabilities[class_idx]):.1%}")
        show.picture(show.build(views.grad_cam, photo, view.heat, pixels=pixels,
                                title=f"Grad-CAM for '{class_names[class_idx]}'"), key=f"gradcam_{name}")
        h, w = view.size
        st.caption(f"Grad-CAM of layer `{view.layer}` ({h}×{w} positions).")
st.caption(page.photo_note(state, 1).split(" One feature-map pixel")[0])
if len(names) == 1:
    st.caption("A side-by-side comparison needs a network without attention trained on the same task; "
               "the bundled shapes models have one (the baseline).")
