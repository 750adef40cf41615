"""Full CBAM: F → F' → F'', the three arrangements, and the paper / authors / blog variants."""

import pandas as pd
import streamlit as st

from cbam import explore
from cbam.i18n import t
from cbam.views import network as views
from ui import page, show

state, timed, choice = page.block_page("pfull.title")
tr = timed.trace


def named(outputs: dict) -> dict:
    """The arrangements' and variants' names in the current language."""
    return {t(f"variant.{name}"): value for name, value in outputs.items()}


page.show_timings(timed)
st.download_button(t("pfull.download"), lambda: explore.trace_npz(tr), file_name=f"cbam_trace_{state.layer}.npz",
                   mime="application/octet-stream", on_click="ignore",
                   help=t("pfull.download_help"))

c1, c2, c3 = st.columns(3)
c1.metric("‖F' − F‖ / ‖F‖", f"{explore.relative_change(tr.x, tr.x_channel):.1%}", help=t("pfull.help_c"))
c2.metric("‖F'' − F'‖ / ‖F'‖", f"{explore.relative_change(tr.x_channel, tr.out):.1%}", help=t("pfull.help_s"))
c3.metric("‖F'' − F‖ / ‖F‖", f"{explore.relative_change(tr.x, tr.out):.1%}", help=t("pfull.help_all"))
left, right = show.columns("changes", [1, 2])
with left:
    show.chart(views.step_changes, tr, key="step_changes")
with right:
    show.chart(views.channel_energy, tr, key="channel_energy", download=False)



def differences(outputs: dict) -> None:
    """max |difference| between every pair of outputs: a small static table (cheaper to draw than a grid)."""
    rows = views.output_differences(outputs)
    table = {row[""]: {k: "—" if v is None else f"{v:.3g}" for k, v in row.items() if k} for row in rows}
    st.table(pd.DataFrame.from_dict(table, orient="index"))


st.header(t("pfull.h_arr"))
st.markdown(t("pfull.t_arr"))
arrangements = named(page.comparison("arrangements", state))
show.chart(views.compare_outputs, arrangements, title=t("pfull.arr_title"), key="arrangements")
st.caption(t("pfull.maxdiff"))
differences(arrangements)

st.header(t("pfull.h_var"))
st.markdown(t("pfull.t_var"))
variants = named(page.comparison("variants", state))
show.chart(views.compare_outputs, variants, title=t("pfull.var_title"), key="variants")
differences(variants)
