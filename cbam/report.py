"""Everything the app shows for one image, written to a folder: ``python -m cbam inspect IMAGE --out DIR``.

For one CBAM block (``--layer``, default the last) with the user's r and k (rebuilt as in the app:
``explore.block_with``), it writes the step-by-step figures as PNG, the block's trace as NPZ (field
names as in ``cbam.CBAMTrace``), the layer-by-layer figures of the whole network and its
per-block statistics as CSV, and a JSON summary. The figures come from ``cbam.plots``, the
numbers from ``cbam.trace``: the same code the app runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

from . import explore, i18n, images, plots, zoo
from .modules import CBAM

__all__ = ["inspect_image", "block_figures", "channel_plots", "spatial_plots", "step_changes_plot", "network_figures",
           "block_statistics"]


def channel_plots(t, *, sort: bool = True, compare: list[int] | None = None) -> dict[str, plots.Plot]:
    """The figures of the Channel attention page for the trace ``t``, not drawn yet, by file stem.

    ``sort``: Mc sorted by weight; ``compare``: the channels of F' shown beside F (default: the two
    most and the least attended; an empty list leaves that figure out)."""
    weights = t.channel_weights[0]
    most, least = explore.ranked_channels(weights, 8)
    if compare is None:
        compare = most[:2] + least[:1]
    found = {
        "most_and_least": plots.plot(
            plots.feature_grid, t.x[0], most + least, weights=weights, ncols=max(1, len(most)),
            title=i18n.t("report.grid.title"),
        ),
        "descriptors": plots.plot(plots.pooled_descriptors, _first(t.avg_pool), _first(t.max_pool)),
        "mlp": plots.plot(plots.mlp_branches, _first(t.mlp_hidden_avg), _first(t.mlp_hidden_max), _first(t.mlp_avg),
                          _first(t.mlp_max)),
        "channel_weights": plots.plot(plots.channel_weights, t.channel_logits[0], weights, sort=sort),
    }
    if compare:
        found["before_after"] = plots.plot(plots.channel_before_after, t.x[0], t.x_channel[0], compare, weights)
    return found


def spatial_plots(block: CBAM, t, pixels, *, alpha: float = 0.55, cmap: str = plots.UNIT_CMAP,
                  window: bool = True) -> dict[str, plots.Plot]:
    """The figures of the Spatial attention page for the trace ``t`` of ``block``, not drawn yet, by
    file stem (none without spatial attention). ``pixels``: the image the mask is drawn over;
    ``window``: mark the k×k window at the mask's maximum."""
    spatial = block.spatial_attention
    if spatial is None or t.spatial_mask is None:
        return {}
    stride = explore.feature_stride(pixels.shape[0], t.spatial_mask.shape[-2])
    return {
        "spatial_pools": plots.plot(plots.spatial_pools, t.spatial_avg[0], t.spatial_max[0]),
        "kernel": plots.plot(plots.spatial_kernel, spatial.conv.weight.detach(), pool_order=spatial.pool_order),
        "spatial_mask": plots.plot(plots.spatial_mask, t.spatial_logits[0], t.spatial_mask[0]),
        "mask_overlay": plots.plot(plots.mask_overlay, pixels, t.spatial_mask[0, 0], alpha=alpha, cmap=cmap,
                                   kernel_size=spatial.kernel_size if window else None,
                                   feature_stride=stride if window else None),
    }


def step_changes_plot(t) -> plots.Plot:
    """The first figure of the Full CBAM page: F, F' and F'' side by side."""
    return plots.plot(plots.step_changes, t.x[0], t.x_channel[0], t.out[0])


def block_figures(block: CBAM, t, pixels, *, alpha: float = 0.55) -> dict[str, Figure]:
    """The figures of the Channel attention and Spatial attention pages and F → F' → F'', drawn, by file stem."""
    described = {**channel_plots(t), "step_changes": step_changes_plot(t), **spatial_plots(block, t, pixels, alpha=alpha)}
    return {stem: figure.draw() for stem, figure in described.items()}


def network_figures(run: explore.NetworkRun, pixels, *, alpha: float = 0.55) -> dict[str, Figure]:
    """The figures of the Layer by layer page."""
    masks = {name: t.spatial_mask[0, 0] for name, t in run.traces.items() if t.spatial_mask is not None}
    figures = {"channel_heatmap": plots.channel_weights_heatmap({n: t.channel_weights[0] for n, t in run.traces.items()})}
    if masks:
        figures["layer_masks"] = plots.layer_masks_grid(pixels, masks, alpha=alpha)
    return figures


def block_statistics(run: explore.NetworkRun) -> list[dict]:
    """One row per CBAM block: its size, and the range of its channel weights and spatial mask."""
    rows = []
    for name, t in run.traces.items():
        w = t.channel_weights[0]
        row = {"block": name, "C": t.x.shape[1], "H×W": f"{t.x.shape[2]}×{t.x.shape[3]}",
               "Mc mean": round(float(w.mean()), 3), "Mc min": round(float(w.min()), 3),
               "Mc max": round(float(w.max()), 3), "‖F''−F‖/‖F‖": round(run.changes[name], 3)}
        if t.spatial_mask is not None:
            m = t.spatial_mask[0, 0]
            row.update({"Ms mean": round(float(m.mean()), 3), "Ms min": round(float(m.min()), 3),
                        "Ms max": round(float(m.max()), 3)})
        rows.append(row)
    return rows


def _first(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t[0]


def inspect_image(
    image: str | Path | bytes,
    out_dir: str | Path,
    *,
    model_name: str = "demo",
    model: nn.Module | None = None,
    card: zoo.ModelCard | None = None,
    layer: str | None = None,
    ratio: int | None = None,
    kernel: int | None = None,
    device: str = "cpu",
    alpha: float = 0.55,
) -> dict:
    """Write every figure, the trace and the statistics for ``image`` to ``out_dir``; return the summary.

    The network is the zoo's ``model_name``, or ``model`` (already built, its CBAM blocks ``cbam.CBAM``,
    e.g. after ``cbam.adopt``) described by ``card``: a ``zoo.ModelCard`` whose ``input_size``,
    ``mean`` and ``std`` prepare the image and whose ``name``, ``title``, ``trained`` and
    ``class_names`` (used when they number as many as the outputs) fill the summary.

    Raises ``images.ImageError`` for an unusable image, ``zoo.UnknownModelError`` for an unknown
    model and ``ValueError`` for a layer the model does not have, or a model without a card.
    """
    picture = images.load_image(image)
    if model is None:
        model, card = zoo.load_model(model_name)
    elif card is None:
        raise ValueError("inspect_image(model=...) needs the card that describes it (card=...)")
    else:
        model_name = card.name
    x = images.to_tensor(picture, card.input_size, card.mean, card.std)
    pixels = images.tensor_to_display(picture, card.input_size)
    run = explore.run_network(model, x, device)
    if not run.traces:
        raise ValueError(f"{card.title} has no CBAM blocks to inspect")
    layer = layer or list(run.traces)[-1]
    if layer not in run.traces:
        raise ValueError(f"{model_name} has no CBAM block {layer!r}; its blocks are: {', '.join(run.traces)}")
    choice = explore.block_with(model.get_submodule(layer), ratio, kernel, block_is_trained=card.trained)
    timed = explore.timed_trace(choice.block, run.traces[layer].x, device)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, figure in {**block_figures(choice.block, timed.trace, pixels, alpha=alpha),
                         **network_figures(run, pixels, alpha=alpha)}.items():
        (out / f"{stem}.png").write_bytes(plots.figure_to_png(figure))
        written.append(f"{stem}.png")
    (out / "trace.npz").write_bytes(explore.trace_npz(timed.trace))
    rows = block_statistics(run)
    (out / "blocks.csv").write_text(explore.rows_to_csv(rows), encoding="utf-8")

    top5 = []
    if run.logits.dim() == 2:  # (1, classes); a network that returns feature maps has no classes to rank
        classes = run.probabilities.shape[-1]
        top = run.probabilities[0].topk(min(5, classes))
        names = card.class_names if len(card.class_names) == classes else tuple(str(i) for i in range(classes))
        top5 = [{"class": names[i], "probability": round(p, 4)} for p, i in zip(top.values.tolist(), top.indices.tolist())]
    summary = {
        "image": str(image) if not isinstance(image, bytes) else "<bytes>",
        "image_size": list(picture.size),
        "model": model_name,
        "model_title": card.title,
        "trained": card.trained,
        "layer": layer,
        "reduction_ratio": choice.block.reduction_ratio,
        "kernel_size": choice.block.kernel_size,
        "hidden_width": choice.block.channel_attention.hidden_channels,
        "block_weights": "learned" if choice.is_original else "partly freshly initialised (seed 0)",
        "notes": choice.notes,
        "device": timed.device,
        "milliseconds": timed.milliseconds,
        "top5": top5,
        "blocks": rows,
        "files": [*written, "trace.npz", "blocks.csv", "summary.json"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
