"""Networks of any shape, end to end: adopt, trace_all, the report's figures and `inspect`'s files.

3 or 16 blocks, maps from 80×80 down to 7×7, square and non-square inputs, the blog's, the authors'
and the tutorial's blocks mixed in one nn.Sequential.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from foreign_cbam import AuthorsCBAM, BlogCBAM, TutorialBasicBlock, randomize_
from torch import nn

from cbam import adopt, trace_all
from cbam.explore import run_network
from cbam.report import block_figures, block_statistics, inspect_image, network_figures
from cbam.samples import SAMPLES_DIR
from cbam.zoo import ModelCard

# Where each block sits: its map is the input's size divided by this, then, past 10×10, pooled to 7×7.
SIXTEEN = [1, 1, 2, 2, 4, 4, 4, 8, 8, 8, 8, "7", "7", "7", "7", "7"]
THREE = [1, 4, "7"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def mixed_network(layout: list, channels: int = 16) -> nn.Sequential:
    """A stem, then one block per entry of ``layout`` (blog, authors', tutorial in turn), each after
    the pooling that brings the map to its size; a linear head with 4 classes."""
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1)]
    current = 1
    for i, where in enumerate(layout):
        if where == "7":
            if current != "7":
                layers.append(nn.AdaptiveAvgPool2d(7))
        elif where != current:
            layers.append(nn.AvgPool2d(where // current))
        current = where
        kind = i % 3
        layers.append(BlogCBAM(channels, 4, 7) if kind == 0 else AuthorsCBAM(channels, 4) if kind == 1
                      else TutorialBasicBlock(channels, channels))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 4)]
    return randomize_(nn.Sequential(*layers), seed=len(layout)).eval()


def card(size: int) -> ModelCard:
    return ModelCard(name="mixed", title="a mixed network", description="test", trained=True, input_size=size,
                     mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.mark.parametrize("layout", [THREE, SIXTEEN], ids=["3 blocks", "16 blocks"])
def test_a_mixed_network_goes_through_adopt_trace_all_and_inspect(layout, tmp_path):
    model = mixed_network(layout)
    x = torch.randn(1, 3, 80, 80, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
    adopted = adopt(model, probe=x)
    assert list(adopted.values()) == [("blog", "authors", "tutorial")[i % 3] for i in range(len(layout))]
    logits, traces = trace_all(model, x)
    torch.testing.assert_close(logits, before, rtol=0, atol=1e-5)
    assert list(traces) == list(adopted)
    sizes = [t.spatial_mask.shape[-1] for t in traces.values()]
    assert sizes[0] == 80 and sizes[-1] == 7

    summary = inspect_image(SAMPLES_DIR / "cat.jpg", tmp_path, model=model, card=card(80), kernel=3)
    assert summary["model"] == "mixed" and len(summary["blocks"]) == len(layout)
    assert summary["blocks"][0]["H×W"] == "80×80" and summary["blocks"][-1]["H×W"] == "7×7"
    assert summary["layer"] == list(adopted)[-1] and summary["kernel_size"] == 3
    assert len((tmp_path / "blocks.csv").read_text().splitlines()) == len(layout) + 1
    assert (tmp_path / "layer_masks.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "summary.json").read_text())["files"][-1] == "summary.json"


def test_a_non_square_input_gives_non_square_maps_and_figures():
    model = mixed_network(THREE)
    adopt(model)
    x = torch.randn(1, 3, 48, 80)
    run = run_network(model, x)
    assert [tuple(t.spatial_mask.shape[-2:]) for t in run.traces.values()] == [(48, 80), (12, 20), (7, 7)]
    pixels = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    figures = network_figures(run, pixels)
    assert set(figures) == {"channel_heatmap", "layer_masks"}
    name = list(run.traces)[1]
    drawn = block_figures(model.get_submodule(name), run.traces[name], pixels)
    assert {"mask_overlay", "kernel", "spatial_mask"} <= set(drawn)
    assert [row["H×W"] for row in block_statistics(run)] == ["48×80", "12×20", "7×7"]


def test_the_readme_example_runs_and_plots_every_block(tmp_path, monkeypatch, capsys):
    pytest.importorskip("timm")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Other people's CBAM networks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)[1]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["traces"]) == 8 and len(namespace["fig"].axes) == 8
    assert "'layer4.1.se': 'timm'" in capsys.readouterr().out
    assert (tmp_path / "masks.png").read_bytes().startswith(b"\x89PNG")
    plt.close("all")
