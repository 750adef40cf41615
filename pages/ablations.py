"""Ablations: the paper's design choices, re-run on the shapes task with several training seeds."""

import streamlit as st

from cbam import zoo
from cbam.samples import ASSETS
from cbam.views import network as views
from ui import page, show

page.current()
st.title("Ablations: does CBAM's design hold up here?")
results = zoo.ablation_results()
st.markdown(
    "The paper justifies its design on ImageNet with ResNet-50: **average + max** pooling for channel attention "
    "beats either alone (Table 1), a **7×7** spatial kernel beats 3×3 (Table 2), and **channel first, then "
    "spatial** beats spatial-first and parallel (Table 3). We re-ran each comparison on our small network and the "
    f"shapes task: every row trained with seeds {', '.join(map(str, results['rows'][0]['seeds']))} "
    f"({results['recipe']['epochs']} epochs × {results['recipe']['steps_per_epoch']} steps × "
    f"{results['recipe']['batch_size']} images), evaluated on {results['evaluation']['samples']:,} held-out images."
)

table = [
    {
        "axis": r["axis"],
        "setting": r["value"],
        "accuracy (%)": f"{100 * r['accuracy']['mean']:.1f} ± {100 * r['accuracy']['std']:.1f}",
        "pointing game, last block (%)": f"{100 * r['pointing_game']['mean']:.1f} ± {100 * r['pointing_game']['std']:.1f}",
        "mass on target (%)": f"{100 * r['mass_on_target']['mean']:.1f} ± {100 * r['mass_on_target']['std']:.1f}",
        "seeds": len(r["seeds"]),
    }
    for r in results["rows"]
]
st.dataframe(table, hide_index=True, width="stretch")
st.caption("The baseline has no attention mask: its pointing game and mass on target come from Grad-CAM of the last stage.")

metric = st.radio("Plot", ["accuracy", "pointing_game", "mass_on_target"], horizontal=True, key="ablations.metric",
                  format_func=lambda m: m.replace("_", " "))
show.chart(views.ablation_bars, results["rows"], metric, key=f"ablation_{metric}")

st.header("Where we agree with the paper, and where not")
doc = (ASSETS.parent / "docs" / "ablations.md").read_text(encoding="utf-8")
start = doc.find("## What agrees with the paper")
st.markdown(doc[start:].split("\n", 1)[1] if start >= 0 else "See docs/ablations.md.")
