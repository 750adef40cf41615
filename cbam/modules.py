"""CBAM: Convolutional Block Attention Module (Woo, Park, Lee, Kweon; ECCV 2018, arXiv 1807.06521).

Given an intermediate feature map F of shape (B, C, H, W), CBAM infers a 1D channel attention map
Mc of shape (B, C, 1, 1) and a 2D spatial attention map Ms of shape (B, 1, H, W), and refines F
in two steps (paper, Eq. 1):

    F'  = Mc(F)  ⊗ F        channel attention: *what* is meaningful
    F'' = Ms(F') ⊗ F'       spatial attention: *where* it is

where ⊗ is element-wise multiplication, broadcasting Mc along the spatial axes and Ms along the
channel axis.

This file is the single source of the math. ``forward`` computes it; ``cbam.trace`` records the
intermediates of that very computation by handing the module a dictionary to fill (``_record``).
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

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CBAM",
    "ChannelAttention",
    "SpatialAttention",
    "CHANNEL_POOLS",
    "ARRANGEMENTS",
    "hidden_width",
]

Arrangement = Literal["channel-spatial", "spatial-channel", "parallel"]
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

    _record: dict | None = None  # set only by cbam.trace while it runs

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
        if self._record is not None:
            for pool, d, h, o in zip(self.pool_types, descriptors, hidden, outputs):
                self._record[f"{pool}_pool"] = d
                self._record[f"mlp_hidden_{pool}"] = h
                self._record[f"mlp_{pool}"] = o
            self._record["channel_logits"] = logits
            self._record["channel_weights"] = channel_weights
        return channel_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)[:, :, None, None]

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
    """

    _record: dict | None = None

    def __init__(
        self,
        kernel_size: int = 7,
        pool_order: Literal["avg-max", "max-avg"] = "avg-max",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be a positive odd integer (1, 3, 5, 7, ...) so the mask keeps the "
                f"input's size, got {kernel_size!r}"
            )
        if pool_order not in ("avg-max", "max-avg"):
            raise ValueError(f"pool_order must be 'avg-max' or 'max-avg', got {pool_order!r}")
        self.kernel_size = kernel_size
        self.pool_order = pool_order
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
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
        if self._record is not None:
            self._record.update(
                spatial_avg=spatial_avg,
                spatial_max=spatial_max,
                spatial_logits=logits,
                spatial_mask=spatial_mask,
            )
        return spatial_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, pool_order={self.pool_order!r}"


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
        spatial: False drops the spatial module (the authors' ``no_spatial``; channel attention only).
    """

    _record: dict | None = None

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
    ) -> None:
        super().__init__()
        if arrangement not in ARRANGEMENTS:
            raise ValueError(f"arrangement must be one of {list(ARRANGEMENTS)}, got {arrangement!r}")
        self.arrangement = arrangement
        self.channel_attention = ChannelAttention(channels, reduction_ratio, pool_types, mlp_bias)
        self.spatial_attention = (
            SpatialAttention(kernel_size, spatial_pool_order, spatial_batch_norm) if spatial else None
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
        rec = self._record
        channel, spatial = self.channel_attention, self.spatial_attention
        if rec is not None:  # while tracing, both sub-modules write into this block's record
            channel._record = rec
            if spatial is not None:
                spatial._record = rec
        try:
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
        finally:
            if rec is not None:  # leave the sub-modules exactly as they were
                del channel._record
                if spatial is not None:
                    del spatial._record
        if rec is not None:
            rec.update(x=x, x_channel=x_channel, out=out)
            if spatial is not None and self.arrangement != "channel-spatial":
                rec["x_spatial"] = x_spatial
        return out

    def extra_repr(self) -> str:
        return f"arrangement={self.arrangement!r}"
