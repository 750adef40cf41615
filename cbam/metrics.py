"""How good a network is, and whether its attention falls on the object that decides the class.

Scores of an attention map ``A`` (h × w, at the resolution of the layer it comes from) against the
target's binary mask ``T`` (H × W, at the image's resolution), for one image:

Pointing game (Zhang et al., ECCV 2016). Take the position of A's maximum, the cell (i, j)
(the first one in row-major order on ties). Map it to the image's pixel grid: the cell covers image
rows ``[i·H/h, (i+1)·H/h)`` and columns ``[j·W/w, (j+1)·W/w)``; its centre pixel is
``(floor((i + 0.5)·H/h), floor((j + 0.5)·W/w))``. It is a hit if that pixel is on the target
(T is True there) or, with a tolerance of t px, if some target pixel lies within Euclidean distance
t of it. The default tolerance is 0 px. The score is the share of images that are hits.
(For the last block of the small net at 96 px, h = w = 6: each cell is 16 × 16 px, and the
centre pixel is (16 i + 8, 16 j + 8).)

Mass on target, the overlap score. Upsample A bilinearly to H × W (``align_corners=False``),
subtract its minimum so that a flat map carries no mass, and take the share of what is left that
lies on the target: ``Σ (A − min A)·T / Σ (A − min A)``. 1.0 means all of the map's excess over
its minimum is on the target; a map that ignores the target scores about the target's share of the
image, reported alongside as ``target_area`` (the chance level; about 0.05 here). A flat map
(max = min) scores 0.

For CBAM networks the maps are each block's spatial mask Ms (``cbam.trace_all``); for networks
without CBAM, Grad-CAM maps of the last stage for the true class (``cbam.gradcam``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .gradcam import default_target_layer, grad_cam
from .trace import cbam_blocks, trace_all

__all__ = [
    "accuracy",
    "pointing_hits",
    "pointing_game",
    "mass_on_target",
    "attention_scores",
    "evaluate_model",
]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows of ``logits`` (N, classes) whose argmax is the label."""
    return (logits.argmax(dim=1) == labels.to(logits.device)).float().mean().item()


def _as_maps(maps: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) or (B, h, w) to (B, h, w) float on the CPU."""
    maps = maps.detach().float().cpu()
    if maps.dim() == 4:
        if maps.shape[1] != 1:
            raise ValueError(f"expected one map per image, got shape {tuple(maps.shape)}")
        maps = maps[:, 0]
    if maps.dim() != 3:
        raise ValueError(f"expected maps of shape (B, h, w) or (B, 1, h, w), got {tuple(maps.shape)}")
    return maps


def pointing_hits(maps: torch.Tensor, target_masks: torch.Tensor, tolerance: float = 0.0) -> torch.Tensor:
    """Per image, whether the map's maximum points at the target (see the module docstring).

    Args:
        maps: attention maps (B, h, w) or (B, 1, h, w), any resolution.
        target_masks: bool (B, H, W) target masks at the image's resolution.
        tolerance: in image pixels (Euclidean); 0 means the centre pixel itself must be on the target.

    Returns: a bool tensor (B,).
    """
    maps = _as_maps(maps)
    targets = target_masks.detach().cpu().bool()
    if len(maps) != len(targets):
        raise ValueError(f"{len(maps)} maps but {len(targets)} target masks")
    b, h, w = maps.shape
    height, width = targets.shape[1:]
    flat_index = maps.reshape(b, -1).argmax(dim=1)  # first maximum in row-major order
    rows, cols = flat_index // w, flat_index % w
    ys = torch.floor((rows + 0.5) * height / h).long().clamp(0, height - 1)
    xs = torch.floor((cols + 0.5) * width / w).long().clamp(0, width - 1)
    hits = targets[torch.arange(b), ys, xs]
    if tolerance > 0:
        for k in torch.nonzero(~hits).flatten().tolist():
            target_ys, target_xs = torch.nonzero(targets[k], as_tuple=True)
            if len(target_ys):
                distance = torch.hypot((target_ys - ys[k]).float(), (target_xs - xs[k]).float()).min()
                hits[k] = bool(distance <= tolerance)
    return hits


def pointing_game(maps: torch.Tensor, target_masks: torch.Tensor, tolerance: float = 0.0) -> float:
    """Share of images whose map's maximum points at the target (see ``pointing_hits``)."""
    return pointing_hits(maps, target_masks, tolerance).float().mean().item()


def mass_on_target(maps: torch.Tensor, target_masks: torch.Tensor) -> torch.Tensor:
    """Per image, the share of the map's mass above its minimum that lies on the target, (B,) floats.

    The maps are upsampled bilinearly to the masks' size first (see the module docstring).
    """
    maps = _as_maps(maps)
    targets = target_masks.detach().cpu().float()
    upsampled = F.interpolate(maps[:, None], size=targets.shape[1:], mode="bilinear", align_corners=False)[:, 0]
    excess = upsampled - upsampled.amin(dim=(1, 2), keepdim=True)
    total = excess.sum(dim=(1, 2))
    on_target = (excess * targets).sum(dim=(1, 2))
    return torch.where(total > 0, on_target / total.clamp_min(1e-12), torch.zeros_like(total))


def _scores(maps: torch.Tensor, target_masks: torch.Tensor, tolerance: float) -> dict:
    return {
        "pointing_game": pointing_game(maps, target_masks, tolerance),
        "mass_on_target": mass_on_target(maps, target_masks).mean().item(),
        "map_size": list(_as_maps(maps).shape[1:]),
    }


def attention_scores(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, target_masks: torch.Tensor, tolerance: float = 0.0
) -> tuple[torch.Tensor, dict[str, dict]]:
    """Logits, and the attention scores of one batch.

    For a network with CBAM blocks: ``{block path: {"pointing_game", "mass_on_target", "map_size"}}``
    for every block with spatial attention, from its spatial mask. For a network without: the same
    scores of Grad-CAM at ``default_target_layer(model)`` for the true labels, under the key
    ``"grad_cam:<layer path>"``.
    """
    if cbam_blocks(model):
        with torch.no_grad():
            logits, traces = trace_all(model, images)
        scores = {
            name: _scores(t.spatial_mask, target_masks, tolerance)
            for name, t in traces.items()
            if t.spatial_mask is not None
        }
        return logits, scores
    layer = default_target_layer(model)
    layer_name = next(name for name, m in model.named_modules() if m is layer)
    maps = grad_cam(model, images, layer, class_idx=labels)
    with torch.no_grad():
        logits = model(images)
    return logits, {f"grad_cam:{layer_name}": _scores(maps, target_masks, tolerance)}


def evaluate_model(
    model: nn.Module,
    samples: int = 2000,
    seed: int = data.EVAL_SEED,
    image_size: int = data.DEFAULT_SIZE,
    batch_size: int = 200,
    tolerance: float = 0.0,
    device: str | torch.device = "cpu",
) -> dict:
    """Accuracy and attention scores of ``model`` (in eval mode) on images 0..samples-1 of stream ``seed``.

    Returns ``{"accuracy", "samples", "seed", "image_size", "tolerance_px", "target_area",
    "attention": {block: {"pointing_game", "mass_on_target", "map_size"}}}``; the attention scores
    are averages over all images (batches are weighted by their size).
    """
    model.eval()
    correct, area_sum, seen = 0.0, 0.0, 0
    sums: dict[str, dict] = {}
    for start in range(0, samples, batch_size):
        n = min(batch_size, samples - start)
        images, labels, masks = data.make_batch(n, seed, image_size, start=start)
        logits, scores = attention_scores(model, images.to(device), labels.to(device), masks, tolerance)
        correct += accuracy(logits, labels) * n
        area_sum += masks.float().mean(dim=(1, 2)).sum().item()
        seen += n
        for block, block_scores in scores.items():
            total = sums.setdefault(block, {"pointing_game": 0.0, "mass_on_target": 0.0})
            total["pointing_game"] += block_scores["pointing_game"] * n
            total["mass_on_target"] += block_scores["mass_on_target"] * n
            total["map_size"] = block_scores["map_size"]
    attention = {
        block: {
            "pointing_game": total["pointing_game"] / seen,
            "mass_on_target": total["mass_on_target"] / seen,
            "map_size": total["map_size"],
        }
        for block, total in sums.items()
    }
    return {
        "accuracy": correct / seen if seen else math.nan,
        "samples": seen,
        "seed": seed,
        "image_size": image_size,
        "tolerance_px": tolerance,
        "target_area": area_sum / seen if seen else math.nan,
        "attention": attention,
    }
