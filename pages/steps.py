"""Step by step: the ten steps of CBAM one at a time, each with its equation, its live numbers and a
paragraph; Next / Back (or the ← / → keys), or a click on the diagram, moves between them."""

import streamlit as st

from cbam.i18n import t
from cbam.views import Chart
from cbam.views import steps as views
from ui import cache, page, show
from ui.state import lab

state, timed, choice = page.block_page("psteps.title")
tr, block = timed.trace, choice.block
available = views.available(block)
if lab().step not in available:
    lab().step = available[0] if lab().step < available[0] else available[-1]
st.query_params["step"] = str(lab().step + 1)  # the lesson link sends the class to this step


def move(delta: int) -> None:
    at = available.index(lab().step)
    lab().step = available[min(len(available) - 1, max(0, at + delta))]


def jumped() -> None:
    """A click on a box of the diagram."""
    points = show.selection("steps.diagram", "step")
    if points and int(points[0]["step"]) in available:
        lab().step = int(points[0]["step"])


current = lab().step
show.chart(views.diagram(current), key="steps.diagram", download=False, on_select=jumped)
back, where, forward = st.columns([1, 3, 1])
back.button(t("psteps.back"), icon=":material/arrow_back:", shortcut="Left", on_click=move, args=(-1,),
            disabled=current == available[0], key="steps.back", width="stretch")
forward.button(t("psteps.next"), icon=":material/arrow_forward:", shortcut="Right", on_click=move, args=(1,),
               disabled=current == available[-1], key="steps.next", width="stretch")
where.caption(t("psteps.where", n=available.index(current) + 1, total=len(available), layer=state.layer))

step = views.STEPS[current]
st.header(f"{current + 1} · {step.title}")
st.latex(step.equation)
st.markdown(step.explanation)
st.info(views.numbers(current, tr, block), icon=":material/calculate:")
for index, view in enumerate(show.build(views.step_views, current, tr, block,
                                        cache.photo(state.image_key, lab().image_bytes)) or []):
    key = f"steps.{step.key}.{index}"
    if isinstance(view, Chart):
        show.chart(view, key=key)
    else:
        show.picture(view, key=key, width=min(640, max(384, view.rgb.shape[1])))
