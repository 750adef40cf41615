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

Live or dead attention, per image and per CBAM block (``attention_health``). A block's attention
says nothing about an image when

* its channel attention is *dead*: the channel weights Mc of that image are all (nearly) equal, their
  standard deviation over the C channels (population, ``correction=0``) below
  ``DEAD_CHANNEL_STD`` = 0.01. This is what happens when every hidden ReLU of the shared MLP is off
  for both pooled descriptors: the MLP outputs 0 (the paper's MLP has no bias), and every weight is
  σ(0) = 0.5. With C = 16 and r = 16 the MLP has a single hidden unit, and one negative
  pre-activation is enough;
* its spatial mask is *flat*: the mask Ms of that image spans less than ``FLAT_MASK_RANGE`` = 0.05
  (max − min over its h × w positions), so it scales every position alike: saturated at 1 (or 0),
  or a nearly constant value. A mask whose peak is 5 % above its floor is already hard to see on the
  Spatial attention page.

``evaluate_model`` reports, for every block, the share of images for which each happens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .gradcam import default_target_layer, grad_cam
from .trace import CBAMTrace, cbam_blocks, trace_all

__all__ = [
    "accuracy",
    "pointing_hits",
    "pointing_game",
    "mass_on_target",
    "attention_scores",
    "evaluate_model",
    "DEAD_CHANNEL_STD",
    "FLAT_MASK_RANGE",
    "channel_weight_spread",
    "spatial_mask_range",
    "dead_channel_attention",
    "flat_spatial_mask",
    "attention_health",
    "attention_health_on_images",
]

# Below these, a block's attention is dead (channel) or flat (spatial) for that image; see the module docstring.
DEAD_CHANNEL_STD = 0.01
FLAT_MASK_RANGE = 0.05


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


def channel_weight_spread(channel_weights: torch.Tensor) -> torch.Tensor:
    """Per image, the standard deviation of the channel weights Mc over the channels, (B,) floats.

    ``channel_weights``: Mc as (B, C) (``CBAMTrace.channel_weights``) or (B, C, 1, 1). The population
    standard deviation (divided by C, not C − 1).
    """
    weights = channel_weights.detach().float().cpu()
    if weights.dim() == 4 and weights.shape[2:] == (1, 1):
        weights = weights[:, :, 0, 0]
    if weights.dim() != 2:
        raise ValueError(f"expected channel weights of shape (B, C) or (B, C, 1, 1), got {tuple(weights.shape)}")
    return weights.std(dim=1, correction=0)


def spatial_mask_range(spatial_mask: torch.Tensor) -> torch.Tensor:
    """Per image, max − min of the spatial mask Ms over its positions, (B,) floats.

    ``spatial_mask``: Ms as (B, 1, h, w) (``CBAMTrace.spatial_mask``) or (B, h, w).
    """
    maps = _as_maps(spatial_mask).flatten(1)
    return maps.amax(dim=1) - maps.amin(dim=1)


def dead_channel_attention(channel_weights: torch.Tensor) -> torch.Tensor:
    """Per image, whether the channel attention is dead: Mc's spread below ``DEAD_CHANNEL_STD``, (B,) bool."""
    return channel_weight_spread(channel_weights) < DEAD_CHANNEL_STD


def flat_spatial_mask(spatial_mask: torch.Tensor) -> torch.Tensor:
    """Per image, whether the spatial mask is flat: Ms's range below ``FLAT_MASK_RANGE``, (B,) bool."""
    return spatial_mask_range(spatial_mask) < FLAT_MASK_RANGE


def attention_health(trace: CBAMTrace) -> dict[str, torch.Tensor | None]:
    """Whether one block's attention is alive on each image of its trace (see the module docstring).

    Returns ``{"channel_std", "dead_channel", "mask_range", "flat_mask"}``: (B,) tensors of the
    channel weights' spread and whether it is dead, the spatial mask's range and whether it is flat.
    The spatial entries are None for a block without spatial attention.
    """
    has_mask = trace.spatial_mask is not None
    return {
        "channel_std": channel_weight_spread(trace.channel_weights),
        "dead_channel": dead_channel_attention(trace.channel_weights),
        "mask_range": spatial_mask_range(trace.spatial_mask) if has_mask else None,
        "flat_mask": flat_spatial_mask(trace.spatial_mask) if has_mask else None,
    }


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

    For a network with CBAM blocks: ``{block path: {"pointing_game", "mass_on_target", "map_size",
    "dead_channel_share", "flat_mask_share"}}`` for every block with spatial attention, from its
    spatial mask; the last two are the shares of the batch's images for which the block's channel
    attention is dead or its mask flat (``attention_health``). For a network without: the first three
    scores of Grad-CAM at ``default_target_layer(model)`` for the true labels, under the key
    ``"grad_cam:<layer path>"``.
    """
    if cbam_blocks(model):
        with torch.no_grad():
            logits, traces = trace_all(model, images)
        scores = {}
        for name, t in traces.items():
            if t.spatial_mask is None:
                continue
            health = attention_health(t)
            scores[name] = {
                **_scores(t.spatial_mask, target_masks, tolerance),
                "dead_channel_share": health["dead_channel"].float().mean().item(),
                "flat_mask_share": health["flat_mask"].float().mean().item(),
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
    are averages over all images (batches are weighted by their size). The blocks of a CBAM network
    also have ``"dead_channel_share"`` and ``"flat_mask_share"``: the share of the images on which
    that block's channel attention is dead or its spatial mask flat (``attention_health``).
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
            total = sums.setdefault(block, {})
            for key, value in block_scores.items():
                if key != "map_size":
                    total[key] = total.get(key, 0.0) + value * n
            total["map_size"] = block_scores["map_size"]
    attention = {
        block: {key: (value if key == "map_size" else value / seen) for key, value in total.items()}
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


def attention_health_on_images(model: nn.Module, images: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Which named images kill each CBAM block's attention (see ``attention_health``).

    ``images``: {name: a (1, 3, H, W) model input} (e.g. ``cbam.images.to_tensor`` of a photo). Returns
    ``{block: {"dead_channel": [names], "flat_mask": [names], "min_channel_std", "min_mask_range"}}``
    for every block of ``model`` with spatial attention, the last two the smallest values over the images.
    """
    model.eval()
    found: dict[str, dict] = {}
    for name, x in images.items():
        with torch.no_grad():
            _, traces = trace_all(model, x)
        for block, t in traces.items():
            if t.spatial_mask is None:
                continue
            health = attention_health(t)
            entry = found.setdefault(block, {"dead_channel": [], "flat_mask": [],
                                             "min_channel_std": math.inf, "min_mask_range": math.inf})
            if health["dead_channel"].any():
                entry["dead_channel"].append(name)
            if health["flat_mask"].any():
                entry["flat_mask"].append(name)
            entry["min_channel_std"] = min(entry["min_channel_std"], health["channel_std"].min().item())
            entry["min_mask_range"] = min(entry["min_mask_range"], health["mask_range"].min().item())
    return found
