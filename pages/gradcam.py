"""Grad-CAM, after the paper's Figure 4: where a network with CBAM and one without look."""

import streamlit as st

from cbam import cbam_blocks, zoo
from cbam.i18n import t
from cbam.views import network as views
from ui import cache, page, show, sidebar
from ui.state import lab

state = page.current()
st.title(t("pgc.title"))
page.fit_note(state)
st.markdown(t("pgc.intro"))


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
labels = {i: name + (t("pgc.predicted") if i == predicted else "") for i, name in enumerate(class_names)}
class_idx = st.selectbox(t("pgc.class"), range(len(class_names)), index=predicted, format_func=labels.get,
                         key="gradcam.class")
if not state.card.trained:
    st.info(t("pgc.untrained"))

photo = cache.photo(state.image_key, lab().image_bytes)
columns = st.columns(len(names))
for column, name in zip(columns, names):
    with column:
        model, card = cache.model(name)
        _, pixels = cache.model_input(name, state.image_key)
        st.subheader((t("pgc.with") if cbam_blocks(model) else t("pgc.without")) + sidebar.card_title(card))
        try:
            view = cache.grad_cam(name, state.image_key, int(class_idx))
        except ValueError as error:
            st.error(t("pgc.error", error=error), icon=":material/error:")
            continue
        st.metric(f"P({class_names[class_idx]})", f"{float(view.probabilities[class_idx]):.1%}")
        show.picture(show.build(views.grad_cam, photo, view.heat, pixels=pixels,
                                title=t("pgc.for", name=class_names[class_idx])), key=f"gradcam_{name}")
        h, w = view.size
        st.caption(t("pgc.layer", layer=view.layer, h=h, w=w))
st.caption(page.photo_note(state))
if len(names) == 1:
    st.caption(t("pgc.alone"))
