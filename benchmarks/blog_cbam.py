"""The blog version of CBAM, written out as the blog describes it: the baseline the benchmarks beat.

See /work/shared/seed/cbam-blog-summary.md (the project's seed). This is our own code following
that description, module for module, so that the timings compare against what students run:

* channel attention: ``AdaptiveAvgPool2d(1)`` and ``AdaptiveMaxPool2d(1)``, a shared MLP made of two
  bias-free 1×1 convolutions with a ReLU between, ``sigmoid(fc(avg) + fc(max)) * x``;
* spatial attention: ``mean`` and ``max`` over the channels, concatenated as [mean; max], a bias-free
  k×k convolution, ``sigmoid(conv1(...)) * x``;
* channel attention first, then spatial attention on its output.

The blog's class cannot be instantiated as printed (its ``super()`` call names a class that does not
exist); that one line is fixed here. ``from_cbam`` copies the weights of a ``cbam.CBAM`` block built
with ``CBAM.blog`` (or any bias-free, [avg; max], no-BatchNorm block), so both give the same outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from cbam import CBAM


class BlogChannelAttention(nn.Module):
    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Sequential(
            nn.Conv2d(in_channels, in_channels // ratio, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels // ratio, in_channels, 1, bias=False),
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg_out = self.fc(self.avg_pool(x))
        max_out = self.fc(self.max_pool(x))
        return self.sigmoid(avg_out + max_out) * x


class BlogSpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        assert kernel_size in (3, 7), "kernel size must be 3 or 7"
        padding = 3 if kernel_size == 7 else 1
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=padding, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        attention = self.sigmoid(self.conv1(torch.cat([avg_out, max_out], dim=1)))
        return attention * x


class BlogCBAM(nn.Module):
    def __init__(self, in_channels: int, ratio: int = 16, kernel_size: int = 3) -> None:
        super().__init__()  # the blog's super(CBAM_Block, self) names a class that does not exist
        self.channelattention = BlogChannelAttention(in_channels, ratio)
        self.spatialattention = BlogSpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channelattention(x)
        x = self.spatialattention(x)
        return x

    @classmethod
    def from_cbam(cls, block: CBAM) -> BlogCBAM:
        """A blog block holding the weights of ``block`` (our 1×1-conv-shaped copies of its Linear layers)."""
        ca, sa = block.channel_attention, block.spatial_attention
        if sa is None or block.arrangement != "channel-spatial" or ca.pool_types != ("avg", "max"):
            raise ValueError("the blog block is channel-then-spatial attention with avg and max channel pools")
        if ca.fc1.bias is not None or sa.bn is not None or sa.pool_order != "avg-max":
            raise ValueError("the blog block has a bias-free MLP, [avg; max] maps and no BatchNorm")
        ratio = block.channels // ca.hidden_channels  # the blog's hidden width is C // ratio, never max(1, ...)
        if block.channels // ratio != ca.hidden_channels:
            raise ValueError(f"no blog ratio gives a hidden width of {ca.hidden_channels} for {block.channels} channels")
        blog = cls(block.channels, ratio, sa.kernel_size)
        with torch.no_grad():
            blog.channelattention.fc[0].weight.copy_(ca.fc1.weight[:, :, None, None])
            blog.channelattention.fc[2].weight.copy_(ca.fc2.weight[:, :, None, None])
            blog.spatialattention.conv1.weight.copy_(sa.conv.weight)
        return blog.to(device=ca.fc1.weight.device, dtype=ca.fc1.weight.dtype)
