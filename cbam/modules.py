"""CBAM: Convolutional Block Attention Module (Woo, Park, Lee, Kweon; ECCV 2018, arXiv 1807.06521).

Given an intermediate feature map F of shape (B, C, H, W), CBAM infers a 1D channel attention map
Mc of shape (B, C, 1, 1) and a 2D spatial attention map Ms of shape (B, 1, H, W), and refines F
in two steps (paper, Eq. 1):

    F'  = Mc(F)  ⊗ F        channel attention: *what* is meaningful
    F'' = Ms(F') ⊗ F'       spatial attention: *where* it is

where ⊗ is element-wise multiplication, broadcasting Mc along the spatial axes and Ms along the
channel axis.

This file is the single source of the math. ``forward`` computes it; ``cbam.trace`` records the
intermediates of that very computation: while a module is being traced, ``_record_of(module)`` gives
it a dictionary to put each tensor it computes into.
There is no second copy of the equations for display.

Three well-known versions of CBAM differ in small ways, and every difference is an option here:

=====================  ================  ==========================  =====================
option                 paper (Eq. 2, 3)  authors' code (Jongchan)    blog version (seed)
=====================  ================  ==========================  =====================
MLP                    W1(ReLU(W0 ·))    Linear layers with bias     1×1 convs, no bias
spatial pooled maps    [avg; max]        [max; avg]                  [avg; max]
spatial conv           7×7               7×7 conv + BatchNorm        3×3 default (or 7×7)
=====================  ================  ==========================  =====================

Use ``CBAM.paper(C)``, ``CBAM.authors(C)`` or ``CBAM.blog(C)`` to get each one in a line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from . import fast

__all__ = [
    "CBAM",
    "ChannelAttention",
    "SpatialAttention",
    "CHANNEL_POOLS",
    "ARRANGEMENTS",
    "hidden_width",
]

Arrangement = Literal["channel-spatial", "spatial-channel", "parallel"]

# While cbam.trace runs, each traced module finds the dictionary it should fill here, by its identity.
# A ContextVar belongs to one thread (and one asyncio task), so two users tracing one shared model at
# the same time each fill their own record, and the model itself is never modified.
_RECORDS: ContextVar[dict[int, dict] | None] = ContextVar("cbam_trace_records", default=None)


def _record_of(module: nn.Module) -> dict | None:
    """The record ``module`` fills while it is being traced in this thread, else None."""
    records = _RECORDS.get()
    return None if records is None else records.get(id(module))


ARRANGEMENTS: tuple[str, ...] = ("channel-spatial", "spatial-channel", "parallel")


# --------------------------------------------------------------------------------------------
# Channel pooling: squeeze each (H, W) plane of F to one number.
# --------------------------------------------------------------------------------------------


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    """F^c_avg: the mean of each channel over all positions, shape (B, C)."""
    return x.mean(dim=(2, 3))


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    """F^c_max: the maximum of each channel over all positions, shape (B, C)."""
    return x.amax(dim=(2, 3))


def _lp_pool(x: torch.Tensor) -> torch.Tensor:
    """The authors' 'lp' pool: the L2 norm of each channel over all positions, shape (B, C)."""
    return torch.linalg.vector_norm(x, ord=2, dim=(2, 3))


def _lse_pool(x: torch.Tensor) -> torch.Tensor:
    """The authors' 'lse' pool: log-sum-exp of each channel over all positions (a soft max), shape (B, C)."""
    return torch.logsumexp(x.flatten(2), dim=2)


CHANNEL_POOLS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "avg": _avg_pool,
    "max": _max_pool,
    "lp": _lp_pool,
    "lse": _lse_pool,
}


def hidden_width(channels: int, reduction_ratio: int) -> int:
    """Width of the shared MLP's hidden layer: ``max(1, channels // reduction_ratio)``.

    The paper writes C/r. Like the authors' code we round down, but never to zero: with
    C < r the blog version's ``C // r`` is 0, an MLP with no hidden units whose output is always 0,
    so every channel weight would be sigmoid(0) = 0.5 whatever the input. We keep one hidden unit.
    """
    _check_positive_int("channels", channels)
    _check_positive_int("reduction_ratio", reduction_ratio)
    return max(1, channels // reduction_ratio)


def _clock(t: torch.Tensor) -> float:
    """``time.perf_counter()`` once the work queued on ``t``'s device is done (tracing only)."""
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    return time.perf_counter()


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_finite(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"expected a feature map of shape (B, C, H, W), got shape {tuple(x.shape)}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise ValueError("the input contains non-finite values (NaN or inf)")


# --------------------------------------------------------------------------------------------
# Channel attention
# --------------------------------------------------------------------------------------------


class ChannelAttention(nn.Module):
    """Channel attention (paper, Eq. 2)::

        Mc(F) = σ( MLP(AvgPool(F)) + MLP(MaxPool(F)) )
              = σ( W1(ReLU(W0(F^c_avg))) + W1(ReLU(W0(F^c_max))) )

    W0 ∈ R^{C/r × C} and W1 ∈ R^{C × C/r} are shared by both descriptors. ``forward`` returns
    F' = Mc(F) ⊗ F.

    Args:
        channels: C, the number of input channels.
        reduction_ratio: r; the hidden layer has ``hidden_width(C, r)`` units.
        pool_types: which spatial poolings feed the shared MLP; their outputs are summed.
            "avg" and "max" are the paper's; "lp" (L2 norm) and "lse" (log-sum-exp) are the
            authors' extra options.
        mlp_bias: whether W0 and W1 have biases (the authors' Linear layers do; the paper's
            equation and the blog's 1×1 convolutions do not).
    """

    def __init__(
        self,
        channels: int,
        reduction_ratio: int = 16,
        pool_types: Sequence[str] = ("avg", "max"),
        mlp_bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction_ratio)
        pool_types = tuple(pool_types)
        if not pool_types:
            raise ValueError("pool_types must name at least one pooling")
        unknown = [p for p in pool_types if p not in CHANNEL_POOLS]
        if unknown or len(set(pool_types)) != len(pool_types):
            raise ValueError(
                f"pool_types must be distinct names from {sorted(CHANNEL_POOLS)}, got {list(pool_types)}"
            )
        self.channels = channels
        self.reduction_ratio = reduction_ratio
        self.pool_types = pool_types
        # The shared MLP: C -> C/r -> C. W0 is `fc1`, W1 is `fc2`.
        self.fc1 = nn.Linear(channels, hidden, bias=mlp_bias)
        self.fc2 = nn.Linear(hidden, channels, bias=mlp_bias)

    @property
    def hidden_channels(self) -> int:
        return self.fc1.out_features

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Mc(F) as a (B, C) tensor of channel weights in (0, 1)."""
        # Every pooled descriptor goes through the *same* MLP, so stack them and run it once.
        descriptors = torch.stack([CHANNEL_POOLS[p](x) for p in self.pool_types])  # (P, B, C)
        hidden = F.relu(self.fc1(descriptors))  # (P, B, C/r)
        outputs = self.fc2(hidden)  # (P, B, C)
        logits = outputs.sum(dim=0)  # (B, C): MLP(avg) + MLP(max)
        channel_weights = torch.sigmoid(logits)
        record = _record_of(self)
        if record is not None:
            for pool, d, h, o in zip(self.pool_types, descriptors, hidden, outputs):
                record[f"{pool}_pool"] = d
                record[f"mlp_hidden_{pool}"] = h
                record[f"mlp_{pool}"] = o
            record["channel_logits"] = logits
            record["channel_weights"] = channel_weights
        return channel_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        record = _record_of(self)
        start = _clock(x) if record is not None else 0.0
        out = x * self.weights(x)[:, :, None, None]
        if record is not None:  # while tracing: how long this step took (read by explore.timed_trace)
            record.setdefault("milliseconds", {})["channel attention"] = (_clock(out) - start) * 1000
        return out

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, reduction_ratio={self.reduction_ratio}, "
            f"hidden={self.hidden_channels}, pool_types={list(self.pool_types)}"
        )


# --------------------------------------------------------------------------------------------
# Spatial attention
# --------------------------------------------------------------------------------------------


class SpatialAttention(nn.Module):
    """Spatial attention (paper, Eq. 3)::

        Ms(F) = σ( f^{k×k}([AvgPool(F); MaxPool(F)]) ) = σ( f^{k×k}([F^s_avg; F^s_max]) )

    Here the poolings run *across channels*: F^s_avg and F^s_max are (B, 1, H, W) maps holding,
    at each position, the mean and the maximum over the C channels. f^{k×k} is a convolution
    from those 2 maps to 1, padded to keep H × W. ``forward`` returns Ms(F) ⊗ F.

    Args:
        kernel_size: k, any positive odd integer (the paper uses 7).
        pool_order: "avg-max" (paper, blog) or "max-avg" (authors' code): the order of the two
            maps fed to the convolution; it only permutes the kernel's input channels.
        batch_norm: BatchNorm after the convolution (authors' code).
        padding: how the convolution pads its 2 input maps: "zeros" (the paper's and the authors'
            code) or "replicate" (repeats the border values). A deviation from the paper, for small
            maps: on a 6×6 map a 7×7 kernel with zero padding sees a different amount of padding
            at every position, so the mask can learn a fixed positional pattern; with "replicate"
            there is no artificial zero border to key on.
    """

    def __init__(
        self,
        kernel_size: int = 7,
        pool_order: Literal["avg-max", "max-avg"] = "avg-max",
        batch_norm: bool = False,
        padding: Literal["zeros", "replicate"] = "zeros",
    ) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd integer (1, 3, 5, 7, ...) so the mask keeps the "
                f"input's size, got {kernel_size!r}"
            )
        if pool_order not in ("avg-max", "max-avg"):
            raise ValueError(f"pool_order must be 'avg-max' or 'max-avg', got {pool_order!r}")
        if padding not in ("zeros", "replicate"):
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
        self.kernel_size = kernel_size
        self.pool_order = pool_order
        self.padding = padding
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False, padding_mode=padding)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01) if batch_norm else None

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Ms(F) as a (B, 1, H, W) mask in (0, 1)."""
        spatial_avg = x.mean(dim=1, keepdim=True)  # F^s_avg
        spatial_max = x.amax(dim=1, keepdim=True)  # F^s_max
        maps = (spatial_avg, spatial_max) if self.pool_order == "avg-max" else (spatial_max, spatial_avg)
        logits = self.conv(torch.cat(maps, dim=1))
        if self.bn is not None:
            logits = self.bn(logits)
        spatial_mask = torch.sigmoid(logits)
        record = _record_of(self)
        if record is not None:
            record.update(
                spatial_avg=spatial_avg,
                spatial_max=spatial_max,
                spatial_logits=logits,
                spatial_mask=spatial_mask,
            )
        return spatial_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        record = _record_of(self)
        start = _clock(x) if record is not None else 0.0
        out = x * self.mask(x)
        if record is not None:
            record.setdefault("milliseconds", {})["spatial attention"] = (_clock(out) - start) * 1000
        return out

    def extra_repr(self) -> str:
        extra = "" if self.padding == "zeros" else f", padding={self.padding!r}"
        return f"kernel_size={self.kernel_size}, pool_order={self.pool_order!r}{extra}"


# --------------------------------------------------------------------------------------------
# CBAM
# --------------------------------------------------------------------------------------------


class CBAM(nn.Module):
    """Channel attention, then spatial attention (paper, Eq. 1)::

        F'  = Mc(F)  ⊗ F
        F'' = Ms(F') ⊗ F'

    Args:
        channels: C.
        reduction_ratio: r of the channel MLP (default 16, the paper's).
        kernel_size: k of the spatial convolution (default 7, the paper's).
        arrangement: "channel-spatial" (the paper's, and its best in Table 3), "spatial-channel"
            (F' = Ms(F) ⊗ F, F'' = Mc(F') ⊗ F'), or "parallel" (both maps from F:
            F'' = Mc(F) ⊗ Ms(F) ⊗ F).
        pool_types, mlp_bias: see ``ChannelAttention``.
        spatial_pool_order, spatial_batch_norm: see ``SpatialAttention``.
        spatial_padding: ``SpatialAttention``'s ``padding``: "zeros" (the paper's, default) or
            "replicate" (a deviation from the paper, for small maps).
        spatial: False drops the spatial module (the authors' ``no_spatial``; channel attention only).

    Dispatch: ``forward`` below is the reference path, the equations written out, and it is what
    training and ``cbam.trace`` run. When no autograd graph is needed (grad mode off, or nothing
    requires grad), the block is not being traced, and its configuration is one ``cbam.fast``
    implements (channel-spatial or channel only, avg/max pools, BatchNorm in eval mode; a CPU input
    of at least ``cbam.fast.CPU_MIN_ELEMENTS`` values, or CUDA with Triton), ``forward`` hands the input
    to ``cbam.fast.forward`` instead: the same numbers (to float rounding) with less memory traffic. ``cbam.fast.unsupported(block, x)`` says
    why an input takes the reference path; ``with cbam.fast.disabled():`` forces it.
    """

    def __init__(
        self,
        channels: int,
        reduction_ratio: int = 16,
        kernel_size: int = 7,
        *,
        arrangement: Arrangement = "channel-spatial",
        pool_types: Sequence[str] = ("avg", "max"),
        mlp_bias: bool = True,
        spatial_pool_order: Literal["avg-max", "max-avg"] = "avg-max",
        spatial_batch_norm: bool = False,
        spatial: bool = True,
        spatial_padding: Literal["zeros", "replicate"] = "zeros",
    ) -> None:
        super().__init__()
        if arrangement not in ARRANGEMENTS:
            raise ValueError(f"arrangement must be one of {list(ARRANGEMENTS)}, got {arrangement!r}")
        self.arrangement = arrangement
        self.channel_attention = ChannelAttention(channels, reduction_ratio, pool_types, mlp_bias)
        self.spatial_attention = (
            SpatialAttention(kernel_size, spatial_pool_order, spatial_batch_norm, spatial_padding)
            if spatial
            else None
        )

    # One-line presets ---------------------------------------------------------------------------

    @classmethod
    def paper(cls, channels: int, reduction_ratio: int = 16, kernel_size: int = 7, **kwargs) -> CBAM:
        """As Eq. 2 and 3 of the paper: bias-free MLP W1(ReLU(W0 ·)), [avg; max], 7×7 conv, no BatchNorm."""
        kwargs = {"mlp_bias": False, "spatial_pool_order": "avg-max", "spatial_batch_norm": False, **kwargs}
        return cls(channels, reduction_ratio, kernel_size, **kwargs)

    @classmethod
    def authors(cls, channels: int, reduction_ratio: int = 16, kernel_size: int = 7, **kwargs) -> CBAM:
        """As Jongchan/attention-module's MODELS/cbam.py: MLP with bias, [max; avg], 7×7 conv + BatchNorm."""
        kwargs = {"mlp_bias": True, "spatial_pool_order": "max-avg", "spatial_batch_norm": True, **kwargs}
        return cls(channels, reduction_ratio, kernel_size, **kwargs)

    @classmethod
    def blog(cls, channels: int, reduction_ratio: int = 16, kernel_size: int = 3, **kwargs) -> CBAM:
        """As the blog version: bias-free 1×1-conv MLP, [avg; max], and its default 3×3 kernel (the paper uses 7)."""
        kwargs = {"mlp_bias": False, "spatial_pool_order": "avg-max", "spatial_batch_norm": False, **kwargs}
        return cls(channels, reduction_ratio, kernel_size, **kwargs)

    # The forward pass -----------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return self.channel_attention.channels

    @property
    def reduction_ratio(self) -> int:
        return self.channel_attention.reduction_ratio

    @property
    def kernel_size(self) -> int | None:
        return None if self.spatial_attention is None else self.spatial_attention.kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast.usable(self, x):  # inference only: same numbers, less memory traffic (see cbam/fast.py)
            return fast.forward(self, x)
        channel, spatial = self.channel_attention, self.spatial_attention
        if spatial is None:
            out = x_channel = channel(x)
        elif self.arrangement == "channel-spatial":
            x_channel = channel(x)  # F'  = Mc(F) ⊗ F
            out = spatial(x_channel)  # F'' = Ms(F') ⊗ F'
        elif self.arrangement == "spatial-channel":
            x_spatial = spatial(x)  # F'  = Ms(F) ⊗ F
            out = x_channel = channel(x_spatial)  # F'' = Mc(F') ⊗ F'
        else:  # parallel: both maps are computed from F itself
            channel_weights = channel.weights(x)
            spatial_mask = spatial.mask(x)
            x_channel = x * channel_weights[:, :, None, None]
            x_spatial = x * spatial_mask
            out = x_channel * spatial_mask
        record = _record_of(self)  # while tracing, the sub-modules have filled this same record
        if record is not None:
            record.update(x=x, x_channel=x_channel, out=out)
            if spatial is not None and self.arrangement != "channel-spatial":
                record["x_spatial"] = x_spatial
        return out

    def extra_repr(self) -> str:
        return f"arrangement={self.arrangement!r}"
