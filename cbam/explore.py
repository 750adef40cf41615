"""What the app (and a notebook) needs to explore one CBAM block: no Streamlit here, no second copy
of the math — everything shown comes from ``cbam.trace`` of a real module.

The flow the app follows:

1. ``run_network(model, x)`` runs the network once and keeps the trace of every CBAM block.
2. The user picks a block. Its input F (``trace.x``) is what the step-by-step pages work on.
3. ``block_with(block, reduction_ratio=r, kernel_size=k)`` gives the block itself when r and k are
   its own, and otherwise a block of the same kind with those settings: the parts that still fit are
   copied from the trained block, the others freshly initialised from a fixed seed, and the result
   says which.
4. ``timed_trace(block, F)`` traces that block on F and times its two steps on the chosen device.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import i18n
from .modules import ARRANGEMENTS, CBAM, _check_finite, hidden_width
from .trace import CBAMTrace, trace, trace_all

__all__ = [
    "NetworkRun",
    "BlockChoice",
    "run_network",
    "block_with",
    "block_config",
    "timed_trace",
    "sensible_ratios",
    "kernel_sizes",
    "ranked_channels",
    "channel_computation",
    "variants_of",
    "silent_mlp",
    "arrangements_of",
    "outputs_of",
    "relative_change",
    "rows_to_csv",
    "trace_npz",
    "grad_cam_view",
    "GradCamView",
    "available_devices",
    "feature_stride",
]


# --------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------


def available_devices() -> list[str]:
    """"cpu", plus "cuda" and "mps" when this machine has them."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# --------------------------------------------------------------------------------------------
# The whole network
# --------------------------------------------------------------------------------------------


@dataclass
class NetworkRun:
    """One forward pass of a network: its logits and the trace of each CBAM block, on the CPU.

    ``changes`` holds, per block, ‖F'' − F‖ / ‖F‖, computed before any trace field was dropped."""

    logits: torch.Tensor
    traces: dict[str, CBAMTrace]
    seconds: float
    device: str
    changes: dict[str, float] = field(default_factory=dict)

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.softmax(self.logits.float(), dim=-1)


def _to_cpu(t: CBAMTrace, keep: tuple[str, ...] | None = None) -> CBAMTrace:
    """A detached CPU copy of a trace; with ``keep``, the tensor fields not named there become None."""
    moved = {}
    for name, value in vars(t).items():
        if isinstance(value, torch.Tensor):
            moved[name] = value.detach().cpu() if keep is None or name in keep else None
        elif name == "extra_pools" and value and keep is None:
            moved[name] = {p: {k: v.detach().cpu() for k, v in parts.items()} for p, parts in value.items()}
        elif name == "extra_pools":
            moved[name] = None
        else:
            moved[name] = value
    return CBAMTrace(**moved)


@torch.no_grad()  # not inference_mode: its tensors could not be traced again with autograd on
def run_network(
    model: nn.Module, x: torch.Tensor, device: str | torch.device = "cpu", keep: tuple[str, ...] | None = None
) -> NetworkRun:
    """Run ``model`` on ``x`` once on ``device``; traces come back on the CPU, detached.

    ``keep`` names the trace fields to keep (e.g. ``("x", "channel_weights", "spatial_mask")``);
    the others are dropped, which matters for a cache of ResNet-50 runs. None keeps them all."""
    device = torch.device(device)
    model = model.to(device)
    x = x.to(device)
    _synchronize(device)
    start = time.perf_counter()
    logits, traces = trace_all(model, x)
    _synchronize(device)
    seconds = time.perf_counter() - start
    changes = {name: relative_change(t.x, t.out) for name, t in traces.items()}
    return NetworkRun(logits.detach().cpu(), {k: _to_cpu(v, keep) for k, v in traces.items()}, seconds, str(device), changes)


def feature_stride(image_size: int, feature_size: int) -> float:
    """Image pixels per feature-map pixel (e.g. 224 / 14 = 16)."""
    return image_size / max(1, feature_size)


# --------------------------------------------------------------------------------------------
# One block, with the user's r and k
# --------------------------------------------------------------------------------------------


def block_config(block: CBAM) -> dict:
    """The constructor arguments that rebuild a block of the same kind."""
    spatial = block.spatial_attention
    return dict(
        channels=block.channels,
        reduction_ratio=block.reduction_ratio,
        kernel_size=spatial.kernel_size if spatial is not None else 7,
        arrangement=block.arrangement,
        pool_types=block.channel_attention.pool_types,
        mlp_bias=block.channel_attention.fc1.bias is not None,
        spatial_pool_order=spatial.pool_order if spatial is not None else "avg-max",
        spatial_batch_norm=spatial is not None and spatial.bn is not None,
        spatial=spatial is not None,
        spatial_padding=spatial.padding if spatial is not None else "zeros",
    )


@dataclass
class BlockChoice:
    """The block the step-by-step pages show, and where its weights came from."""

    block: CBAM
    trained_mlp: bool  # the MLP is the network's own (False: freshly initialised for this r)
    trained_conv: bool  # the spatial convolution is the network's own (False: fresh for this k)
    seed: int = 0
    reasons: list[tuple[str, dict]] = field(default_factory=list)  # each note's catalogue key and values
    variant: str | None = None  # set by the app when a trained variant network is shown instead

    @property
    def is_original(self) -> bool:
        return self.trained_mlp and self.trained_conv

    @property
    def notes(self) -> list[str]:
        """What was freshly initialised, in words of the current language (the app caches a choice for
        every session, whatever its language)."""
        return [i18n.t(key, **values) for key, values in self.reasons]


def block_with(
    block: CBAM,
    reduction_ratio: int | None = None,
    kernel_size: int | None = None,
    seed: int = 0,
    block_is_trained: bool = True,
) -> BlockChoice:
    """``block`` itself when r and k are its own; otherwise a copy with the given r and k.

    The copy keeps every part whose shape did not change (the MLP when only k changes, the spatial
    convolution and BatchNorm when only r changes); the parts that must change are initialised
    with PyTorch's default initialisation under ``torch.manual_seed(seed)``, so the same settings
    always give the same numbers. ``notes`` says in words what happened.
    """
    config = block_config(block)
    r = config["reduction_ratio"] if reduction_ratio is None else reduction_ratio
    k = config["kernel_size"] if kernel_size is None else kernel_size
    same_mlp = hidden_width(block.channels, r) == block.channel_attention.hidden_channels
    same_conv = block.spatial_attention is None or k == block.spatial_attention.kernel_size
    if same_mlp and same_conv and r == block.reduction_ratio:
        return BlockChoice(block, block_is_trained, block_is_trained, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = CBAM(**{**config, "reduction_ratio": r, "kernel_size": k})
    fresh.to(next(block.parameters()).device).train(block.training)
    reasons = []
    if same_mlp:
        fresh.channel_attention.load_state_dict(block.channel_attention.state_dict())
    else:
        reasons.append(("explore.note.ratio", {"r": r, "hidden": fresh.channel_attention.hidden_channels,
                                               "own": block.channel_attention.hidden_channels, "seed": seed}))
    if block.spatial_attention is not None:
        if same_conv:
            fresh.spatial_attention.load_state_dict(block.spatial_attention.state_dict())
        else:
            if fresh.spatial_attention.bn is not None:  # keep the trained normalisation
                fresh.spatial_attention.bn.load_state_dict(block.spatial_attention.bn.state_dict())
            reasons.append(("explore.note.kernel", {"k": k, "own": block.spatial_attention.kernel_size, "seed": seed}))
    return BlockChoice(fresh, block_is_trained and same_mlp, block_is_trained and same_conv, seed, reasons)


@dataclass
class TimedTrace:
    trace: CBAMTrace
    milliseconds: dict[str, float]  # "channel attention", "spatial attention", "whole block"
    device: str


@torch.no_grad()  # not inference_mode: its tensors could not be traced again with autograd on
def timed_trace(block: CBAM, x: torch.Tensor, device: str | torch.device = "cpu", repeats: int = 3) -> TimedTrace:
    """Trace ``block`` on ``x`` on ``device``; the times of its steps are the best of ``repeats`` traces.

    The modules measure their own steps while traced (``CBAMTrace.milliseconds``), so nothing is
    attached to the block: many sessions may time one shared block at once. A block on another
    device than ``device`` must be a copy the caller owns (it is moved there). The traced tensors
    come back on the CPU.
    """
    device = torch.device(device)
    block = block.to(device)
    x = x.to(device)
    best: dict[str, float] = {}
    result = None
    for _ in range(max(1, repeats)):
        result = trace(block, x)
        for label, ms in (result.milliseconds or {}).items():
            best[label] = min(best.get(label, float("inf")), ms)
    order = ("channel attention", "spatial attention", "whole block")
    return TimedTrace(_to_cpu(result), {label: best[label] for label in order if label in best}, str(device))


# --------------------------------------------------------------------------------------------
# Slider ranges and small summaries
# --------------------------------------------------------------------------------------------


def sensible_ratios(channels: int) -> list[int]:
    """Reduction ratios worth offering for C channels: powers of two from 1 up to C (hidden width ≥ 1).

    Each gives a distinct hidden width C // r, from C (no reduction) down to 1.
    """
    ratios, r = [], 1
    while r <= channels:
        ratios.append(r)
        r *= 2
    return ratios


def kernel_sizes(max_size: int = 11) -> list[int]:
    """The odd kernel sizes 1, 3, ..., max_size."""
    return list(range(1, max_size + 1, 2))


def ranked_channels(channel_weights: torch.Tensor, n: int) -> tuple[list[int], list[int]]:
    """The ``n`` most and ``n`` least attended channels (indices), given Mc of shape (C,) or (1, C)."""
    w = channel_weights.reshape(-1)
    order = torch.argsort(w, descending=True).tolist()
    n = min(n, len(order))
    return order[:n], order[::-1][:n]


def channel_computation(block: CBAM, t: CBAMTrace, channel: int, sample: int = 0) -> dict[str, float]:
    """The numbers of Eq. 2 for one channel c, from the trace: F^c_avg, F^c_max, MLP outputs,
    their sum, and Mc_c = σ(sum). Values of poolings the block does not use are left out."""
    def value(tensor: torch.Tensor) -> float:
        return float(tensor[sample, channel].detach())

    numbers: dict[str, float] = {}
    for pool in ("avg", "max"):
        pooled = getattr(t, f"{pool}_pool")
        if pooled is not None:
            numbers[f"{pool}_pool"] = value(pooled)
            numbers[f"mlp_{pool}"] = value(getattr(t, f"mlp_{pool}"))
    numbers["channel_logit"] = value(t.channel_logits)
    numbers["channel_weight"] = value(t.channel_weights)
    numbers["hidden_width"] = block.channel_attention.hidden_channels
    return numbers


def silent_mlp(t: CBAMTrace, sample: int = 0) -> bool:
    """True when every hidden unit of the shared MLP is 0 (ReLU off) for every pooled descriptor of
    this sample: the MLP then outputs its output bias alone (0 without bias), whatever the input, so
    the channel weights carry no information about it (with no bias, all of them are σ(0) = 0.5)."""
    hidden = [h[sample] for h in (t.mlp_hidden_avg, t.mlp_hidden_max) if h is not None]
    hidden += [parts["mlp_hidden"][sample] for parts in (t.extra_pools or {}).values()]
    return bool(hidden) and all(not bool(h.detach().any()) for h in hidden)


def variants_of(block: CBAM, styles: tuple[str, ...] = ("paper", "authors", "blog")) -> dict[str, CBAM]:
    """The same block in the paper's, the authors' and the blog's form, sharing its weights.

    Each variant gets the block's MLP weights (biases where it has them, zero otherwise) and its
    spatial kernel (input channels swapped for the other pool order); the authors' BatchNorm is the
    block's own if it has one, otherwise an identity (mean 0, variance 1, scale 1, shift 0). What
    then differs between the outputs is the structure alone: bias, pool order, normalisation.
    Kernel size and r are the block's own (the blog's default k = 3 is not applied).
    """
    config = block_config(block)
    source_ca, source_sa = block.channel_attention, block.spatial_attention
    out = {}
    for style in styles:
        variant = getattr(CBAM, style)(
            block.channels,
            config["reduction_ratio"],
            config["kernel_size"],
            arrangement=block.arrangement,
            pool_types=config["pool_types"],
        ).to(next(block.parameters()).device)
        ca = variant.channel_attention
        with torch.no_grad():
            ca.fc1.weight.copy_(source_ca.fc1.weight)
            ca.fc2.weight.copy_(source_ca.fc2.weight)
            for mine, theirs in ((ca.fc1, source_ca.fc1), (ca.fc2, source_ca.fc2)):
                if mine.bias is not None:
                    mine.bias.copy_(theirs.bias if theirs.bias is not None else torch.zeros_like(mine.bias))
            if source_sa is not None:
                sa = variant.spatial_attention
                kernel = source_sa.conv.weight
                if sa.pool_order != source_sa.pool_order:
                    kernel = kernel.flip(1)  # [avg; max] <-> [max; avg]
                sa.conv.weight.copy_(kernel)
                if sa.bn is not None and source_sa.bn is not None:
                    sa.bn.load_state_dict(source_sa.bn.state_dict())
                elif sa.bn is not None:
                    sa.bn.reset_parameters()
                    sa.bn.reset_running_stats()
        out[style] = variant.eval()
    return out


def arrangements_of(block: CBAM) -> dict[str, CBAM]:
    """The block in each of the three arrangements, all sharing its weights (eval mode)."""
    out = {}
    for arrangement in ARRANGEMENTS:
        variant = CBAM(**{**block_config(block), "arrangement": arrangement})
        variant.load_state_dict(block.state_dict())
        out[arrangement] = variant.to(next(block.parameters()).device).eval()
    return out


@torch.no_grad()  # not inference_mode: its tensors could not be traced again with autograd on
def outputs_of(blocks: dict[str, CBAM], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each block's output F'' on the same input, first sample, on the CPU."""
    _check_finite(x)
    return {name: block(x)[0].cpu() for name, block in blocks.items()}


class GradCamView(NamedTuple):
    """What ``grad_cam_view`` returns."""

    heat: torch.Tensor  # (h, w), at the layer's resolution
    probabilities: torch.Tensor  # (classes,)
    class_idx: int
    layer: str  # the qualified name of the layer Grad-CAM looked at
    size: tuple[int, int]  # (h, w) of that layer's output


def grad_cam_view(model: nn.Module, x: torch.Tensor, class_idx: int | None = None) -> GradCamView:
    """Grad-CAM of ``model`` on one image ``x`` (1, 3, H, W) at its default layer (``gradcam.target_layer``:
    ``layer4``, ``stages[-1]`` or, in any other network, its last feature map before the classifier), for
    ``class_idx`` (default: the predicted class).

    Raises:
        ValueError: the model does not return class scores (1, classes), or no layer fits (the message
            says why).
    """
    from .gradcam import grad_cam, target_layer

    device = next(model.parameters()).device
    x = x.to(device)
    with torch.no_grad():
        logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"Grad-CAM needs class scores of shape (1, classes); the network returns {shape}")
    probabilities = torch.softmax(logits.float(), dim=-1)[0].cpu()
    if class_idx is None:
        class_idx = int(probabilities.argmax())
    name, layer = target_layer(model, x)
    heat = grad_cam(model, x, layer, class_idx=class_idx)[0].detach().cpu()
    return GradCamView(heat, probabilities, class_idx, name, tuple(heat.shape))


def trace_npz(t: CBAMTrace) -> bytes:
    """A trace as a compressed NumPy archive (``numpy.load`` gives one array per field, named as in
    ``CBAMTrace``; fields a block does not have are left out)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **t.arrays())
    return buffer.getvalue()


def rows_to_csv(rows: list[dict]) -> str:
    """A list of flat dicts as CSV text (columns: the union of keys, in first-seen order)."""
    import csv
    import io

    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """‖after − before‖ / ‖before‖ (0 when both are 0)."""
    denominator = torch.linalg.vector_norm(before.float())
    if denominator == 0:
        return 0.0
    return float(torch.linalg.vector_norm((after - before).float()) / denominator)


def spatial_computation(block: CBAM, t: CBAMTrace, row: int, col: int, sample: int = 0) -> dict:
    """Eq. 3 at one position (row, col), with its numbers: the 2×k×k window of the pooled maps that
    the convolution reads there (in the kernel's input order; beyond the border, the padding the
    convolution uses), the kernel, their products, the sum (the convolution's output), BatchNorm of it
    where the block has one (with its running statistics), and Ms = σ(·). ``logit`` and ``mask`` are
    read from the trace; ``check`` is |our sum (after BatchNorm) − the trace's logit|, a few 1e-7."""
    spatial = block.spatial_attention
    if spatial is None or t.spatial_mask is None:
        raise ValueError("this block has no spatial attention")
    height, width = t.spatial_mask.shape[-2:]
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"position ({row}, {col}) is outside the {height}×{width} mask")
    k, pad = spatial.kernel_size, spatial.kernel_size // 2
    maps = (t.spatial_avg, t.spatial_max) if spatial.pool_order == "avg-max" else (t.spatial_max, t.spatial_avg)
    stacked = torch.cat([m[sample : sample + 1].detach().float().cpu() for m in maps], dim=1)  # (1, 2, H, W)
    mode = "constant" if spatial.padding == "zeros" else "replicate"
    window = F.pad(stacked, (pad, pad, pad, pad), mode=mode)[0, :, row : row + k, col : col + k]  # (2, k, k)
    kernel = spatial.conv.weight.detach().float().cpu()[0]  # (2, k, k)
    products = window * kernel
    conv = float(products.double().sum())
    after = conv
    bn = spatial.bn
    if bn is not None:
        mean, var = float(bn.running_mean[0]), float(bn.running_var[0])
        scale = float(bn.weight[0].detach()) if bn.weight is not None else 1.0
        shift = float(bn.bias[0].detach()) if bn.bias is not None else 0.0
        after = (conv - mean) / math.sqrt(var + bn.eps) * scale + shift
    logit = float(t.spatial_logits[sample, 0, row, col].detach())
    return {
        "row": row, "col": col, "kernel_size": k,
        "inputs": window.numpy(), "kernel": kernel.numpy(), "products": products.numpy(),
        "input_names": tuple(spatial.pool_order.split("-")),
        "conv": conv, "batch_norm": None if bn is None else after, "logit": logit,
        "mask": float(t.spatial_mask[sample, 0, row, col].detach()), "check": abs(after - logit),
        "padding": spatial.padding,
    }
