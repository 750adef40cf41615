"""A Streamlit script for tests/test_browser.py: the feature grid of a block whose weights follow a
slider, drawn as SVG (so the browser test can read the panel headers), with its title and the names the
panel headers should show written below it."""

import sys
from pathlib import Path

import streamlit as st
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: run from its own folder, the script sees only tests/apps

from cbam import CBAM, trace
from cbam.views import channel

seed = st.slider("seed", 0, 5, 0)
torch.manual_seed(seed)
block = CBAM(16, reduction_ratio=4, kernel_size=3).eval()
with torch.no_grad():
    chart = channel.feature_grid(trace(block, torch.randn(1, 16, 8, 8)))
spec = {**chart.streamlit_spec(), "usermeta": {"embedOptions": {"renderer": "svg"}}}
with st.container(key="view-grid"):
    st.vega_lite_chart(spec, key="grid", width="content")
table = chart.table()
names = [str(table["label"][table["panel"] == p][0]) for p in sorted(set(table["panel"].tolist()))]
st.code("\n".join([chart.spec["title"], *names]))  # the chart's own title, then each panel's
