"""Time of every matplotlib figure the views offer as a PNG: build the figure, then encode it.

    python benchmarks/bench_plots.py                    # median ms per figure, this checkout
    python benchmarks/bench_plots.py --against HEAD     # before (cbam/plots.py at HEAD) / after
    python benchmarks/bench_plots.py --against HEAD --clock cpu   # CPU time: on a busy machine

With ``--against REV`` the plots module of that git revision is loaded beside the checkout's and
both are timed in interleaved rounds (before, after, before, ...), so a busy machine slows them
alike; "×" is after / before.

Each builder of ``cbam.plots`` that a view (``cbam/views/``) draws on "Download PNG" is called
with the arguments the view passes, on two sizes of input:

* demo   : the shapes model's blocks, C = 128 on 12×12 maps, a 96×96 photo;
* resnet : CBAM-ResNet-50, C = 256 on 56×56 maps (layer1), vectors of C = 2048 (layer4),
           16 blocks for the network-wide figures, a 224×224 photo.

One timing is ``figure_to_png(builder(...))`` at the default 120 dpi: what a click costs. The
first call of each case is a warm-up (fonts, colormaps); the median of ``--repeats`` follows.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cbam import plots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

RESNET50_BLOCKS = [(256, 56)] * 3 + [(512, 28)] * 4 + [(1024, 14)] * 6 + [(2048, 7)] * 3


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-a))).astype(np.float32)


def cases(plots: ModuleType, size: str) -> dict[str, Callable[[], object]]:
    """name -> a call of the builder of ``plots`` with the arguments of its view, on inputs of ``size``."""
    rng = np.random.default_rng(0)
    if size == "demo":
        channels, side, vector, photo_side, hidden, last_side = 128, 12, 128, 96, 8, 3
        blocks = [(32, 24), (64, 12), (128, 12)]
    else:
        channels, side, vector, photo_side, hidden, last_side = 256, 56, 2048, 224, 128, 7
        blocks = RESNET50_BLOCKS
    x = np.maximum(rng.standard_normal((channels, side, side)), 0).astype(np.float32)
    weights = _sigmoid(rng.standard_normal(channels))
    x_channel = x * weights[:, None, None]
    spatial_logits = rng.standard_normal((side, side)).astype(np.float32) * 3
    mask = _sigmoid(spatial_logits)
    out = x_channel * mask
    logits = rng.standard_normal(vector).astype(np.float32) * 2
    photo = rng.integers(0, 256, (photo_side, photo_side, 3), dtype=np.uint8)
    order = np.argsort(-weights)
    most, least = [int(c) for c in order[:4]], [int(c) for c in order[-4:]]
    block_masks = {f"layer{i}.cbam": _sigmoid(rng.standard_normal((s, s))) for i, (_, s) in enumerate(blocks)}
    block_weights = {f"layer{i}.cbam": _sigmoid(rng.standard_normal(c)) for i, (c, _) in enumerate(blocks)}
    history = [{"epoch": e, "loss": 2 / (e + 1), "accuracy": 0.5 + e / 70, "val_accuracy": 0.45 + e / 70,
                "val_loss": 2.2 / (e + 1)} for e in range(1, 31)]
    rows = [{"name": "reference", "axis": "reference", "value": "-", "accuracy": {"mean": 0.95, "std": 0.01}}]
    rows += [{"name": f"{axis}-{v}", "axis": axis, "value": v, "accuracy": {"mean": 0.9 + 0.01 * i, "std": 0.02}}
             for axis in ("attention", "pooling", "kernel") for i, v in enumerate(("a", "b", "c"))]
    return {
        "feature_grid": lambda: plots.feature_grid(x, most + least, weights=weights, ncols=4),
        "pooled_descriptors": lambda: plots.pooled_descriptors(logits.clip(0), np.abs(logits) + 1),
        "mlp_branches": lambda: plots.mlp_branches(rng.random(hidden), rng.random(hidden), logits, -logits),
        "channel_weights": lambda: plots.channel_weights(logits, _sigmoid(logits), sort=True),
        "channel_before_after": lambda: plots.channel_before_after(x, x_channel, most[:2], weights),
        "spatial_pools": lambda: plots.spatial_pools(x.mean(0), x.max(0)),
        "spatial_kernel": lambda: plots.spatial_kernel(rng.standard_normal((2, 7, 7)).astype(np.float32)),
        "spatial_mask": lambda: plots.spatial_mask(spatial_logits, mask),
        "mask_overlay": lambda: plots.mask_overlay(photo, mask, alpha=0.55, kernel_size=7, at=(2, 3)),
        "step_changes": lambda: plots.step_changes(x, x_channel, out),
        "compare_outputs": lambda: plots.compare_outputs({"paper": out, "authors": out * 0.9, "blog": out + 0.1}),
        "layer_masks_grid": lambda: plots.layer_masks_grid(photo, block_masks, alpha=0.55),
        "channel_weights_heatmap": lambda: plots.channel_weights_heatmap(block_weights),
        "heat_overlay": lambda: plots.heat_overlay(photo, spatial_logits[:last_side, :last_side]),  # last stage
        "training_curves": lambda: plots.training_curves(history, title="Training loss and accuracy"),
        "ablation_bars": lambda: plots.ablation_bars(rows, "accuracy"),
    }


def revision_plots(revision: str) -> ModuleType:
    """``cbam/plots.py`` as it is at ``revision``, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{revision}:cbam/plots.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"plots_at_{revision}", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{revision}:cbam/plots.py", "exec"), module.__dict__)
    return module


def median_ms(builds: list[tuple[ModuleType, Callable[[], object]]], repeats: int,
              clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Median ms of ``module.figure_to_png(build())`` for each (module, build), timed in turns."""
    times: list[list[float]] = [[] for _ in builds]
    for module, build in builds:  # warm-up
        module.figure_to_png(build())
    for _ in range(repeats):
        for index, (module, build) in enumerate(builds):
            gc.collect()  # the previous figure's garbage is not this one's cost
            start = clock()
            module.figure_to_png(build())
            times[index].append(clock() - start)
    return [1000 * statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=["demo", "resnet"], choices=["demo", "resnet"])
    parser.add_argument("--only", nargs="+", help="names of the figures to time (default: all)")
    parser.add_argument("--against", metavar="REV", help="also time cbam/plots.py of this git revision")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a busy machine)")
    args = parser.parse_args()

    modules = [revision_plots(args.against), plots] if args.against else [plots]
    labels = ["before", "after"] if args.against else ["ms"]
    header = f"{'figure':<25}" + "".join(f"{size + ' ' + label:>14}" for size in args.sizes for label in labels)
    if args.against:
        header += "".join(f"{size + ' ×':>10}" for size in args.sizes)
    what = f"cbam/plots.py at {args.against} (before) and in the checkout (after)" if args.against else "cbam/plots.py"
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"median {args.clock} ms per figure, build + figure_to_png at 120 dpi, {args.repeats} repeats; {what}")
    print(header)
    names = [n for n in cases(plots, "demo") if not args.only or n in args.only]
    for name in names:
        cells, ratios = [], []
        for size in args.sizes:
            medians = median_ms([(m, cases(m, size)[name]) for m in modules], args.repeats, clock)
            cells += [f"{ms:14.0f}" for ms in medians]
            if args.against:
                ratios.append(f"{medians[1] / medians[0]:10.2f}")
        print(f"{name:<25}" + "".join(cells) + "".join(ratios), flush=True)


if __name__ == "__main__":
    main()
