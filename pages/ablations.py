"""Ablations: the paper's design choices, re-run on the shapes task with several training seeds."""

import streamlit as st

from cbam import zoo
from cbam.i18n import language, t, term
from cbam.samples import ASSETS
from cbam.views import network as views
from ui import page, show

page.current()


def metric_label(metric: str) -> str:
    return t(f"metric.{metric}")


st.title(t("pab.title"))
results = zoo.ablation_results()
st.markdown(t("pab.intro", seeds=", ".join(map(str, results["rows"][0]["seeds"])), epochs=results["recipe"]["epochs"],
              steps=results["recipe"]["steps_per_epoch"], batch=results["recipe"]["batch_size"],
              samples=results["evaluation"]["samples"]))

table = [
    {
        t("pab.axis"): term("axis", r["axis"]),
        t("pab.setting"): term("abl", r["value"]),
        t("pab.accuracy"): f"{100 * r['accuracy']['mean']:.1f} ± {100 * r['accuracy']['std']:.1f}",
        t("pab.pointing"): f"{100 * r['pointing_game']['mean']:.1f} ± {100 * r['pointing_game']['std']:.1f}",
        t("pab.mass"): f"{100 * r['mass_on_target']['mean']:.1f} ± {100 * r['mass_on_target']['std']:.1f}",
        t("pab.seeds"): len(r["seeds"]),
    }
    for r in results["rows"]
]
st.dataframe(table, hide_index=True, width="stretch")
st.caption(t("pab.baseline"))
st.caption(t("pab.knobs"))

metric = st.radio(t("pab.plot"), ["accuracy", "pointing_game", "mass_on_target"], horizontal=True, key="ablations.metric",
                  format_func={m: metric_label(m) for m in ("accuracy", "pointing_game", "mass_on_target")}.get)
show.chart(views.ablation_bars, results["rows"], metric, key=f"ablation_{metric}")

st.header(t("pab.claims_h"))
st.markdown(t("pab.claims_intro", metric=metric_label(metric)))
st.table(views.paper_claims(results["rows"], metric))

st.header(t("pab.agree"))
if language() == "en":
    doc = (ASSETS.parent / "docs" / "ablations.md").read_text(encoding="utf-8")
    start = doc.find("## What agrees with the paper")
    st.markdown(doc[start:].split("\n", 1)[1] if start >= 0 else t("pab.see"))
else:  # the discussion (docs/ablations.md) is not translated yet: a summary and where to read it
    st.markdown(t("pab.summary"))
