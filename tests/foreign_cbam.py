"""CBAM as other people write it, for the tests of ``cbam.adopt``: our own code, after the public forms.

* the blog version (the project's seed, /work/shared/seed/cbam-blog-summary.md): ``BlogCBAM``;
* the authors' MODELS/cbam.py (github.com/Jongchan/attention-module): ``AuthorsCBAM``, with its
  ``pool_types`` (avg, max, lp, lse) and ``no_spatial`` options, Flatten + Linear MLP and a
  [max; mean] ``ChannelPool`` feeding a 7×7 conv + BatchNorm(eps 1e-5, momentum 0.01);
* the common tutorial: ``ChannelAttention(in_planes, ratio)`` whose forward returns the *weights*
  (or, in a second form, their product with x), ``SpatialAttention(kernel_size)`` with ``conv1``, and a
  ResNet ``BasicBlock`` holding them as ``ca`` and ``sa`` and applying them itself.

timm's ``CbamModule`` and pytorchcv's ``CbamBlock`` are the installed packages themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.blog_cbam import BlogChannelAttention


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BatchNorm statistics (the authors initialise nothing random in the gates' BN)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            for p in m.parameters(recurse=False):
                if p.dim() >= 2:
                    gain = 4.0 if isinstance(m, nn.Conv2d) and m.out_channels == 1 else 1.0
                    p.copy_(torch.randn(p.shape, generator=gen) * gain / p[0].numel() ** 0.5)
                else:
                    p.copy_(0.3 + 0.4 * torch.rand(p.shape, generator=gen))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.num_batches_tracked.fill_(7)
    return model


# --------------------------------------------------------------------------------------------
# The blog version (its channel attention as benchmarks/blog_cbam.py writes it; its spatial attention
# here takes any odd k, where the blog allows 3 and 7)
# --------------------------------------------------------------------------------------------


class BlogSpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([torch.mean(x, dim=1, keepdim=True), torch.max(x, dim=1, keepdim=True)[0]], dim=1)
        return self.sigmoid(self.conv1(pooled)) * x


class BlogCBAM(nn.Module):
    def __init__(self, in_channels: int, ratio: int = 16, kernel_size: int = 3) -> None:
        super().__init__()
        self.channelattention = BlogChannelAttention(in_channels, ratio)
        self.spatialattention = BlogSpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatialattention(self.channelattention(x))


# --------------------------------------------------------------------------------------------
# The authors' MODELS/cbam.py
# --------------------------------------------------------------------------------------------


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


class ChannelGate(nn.Module):
    def __init__(self, gate_channels: int, reduction_ratio: int = 16, pool_types=("avg", "max")) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            Flatten(),
            nn.Linear(gate_channels, gate_channels // reduction_ratio),
            nn.ReLU(),
            nn.Linear(gate_channels // reduction_ratio, gate_channels),
        )
        self.pool_types = list(pool_types)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.size(2), x.size(3))
        total = None
        for pool_type in self.pool_types:
            if pool_type == "avg":
                pooled = F.avg_pool2d(x, size, stride=size)
            elif pool_type == "max":
                pooled = F.max_pool2d(x, size, stride=size)
            elif pool_type == "lp":
                pooled = F.lp_pool2d(x, 2, size, stride=size)
            else:  # "lse"
                flat = x.view(x.size(0), x.size(1), -1)
                peak, _ = torch.max(flat, dim=2, keepdim=True)
                pooled = peak + (flat - peak).exp().sum(dim=2, keepdim=True).log()
            raw = self.mlp(pooled)
            total = raw if total is None else total + raw
        return x * torch.sigmoid(total).unsqueeze(2).unsqueeze(3).expand_as(x)


class ChannelPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), dim=1)


class BasicConv(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int, padding: int, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=1e-5, momentum=0.01, affine=True)
        self.relu = nn.ReLU() if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.relu is None else self.relu(x)


class SpatialGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.compress = ChannelPool()
        self.spatial = BasicConv(2, 1, 7, padding=3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.spatial(self.compress(x)))


class AuthorsCBAM(nn.Module):
    def __init__(self, gate_channels: int, reduction_ratio: int = 16, pool_types=("avg", "max"),
                 no_spatial: bool = False) -> None:
        super().__init__()
        self.ChannelGate = ChannelGate(gate_channels, reduction_ratio, pool_types)
        self.no_spatial = no_spatial
        if not no_spatial:
            self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_out = self.ChannelGate(x)
        return x_out if self.no_spatial else self.SpatialGate(x_out)


# --------------------------------------------------------------------------------------------
# The tutorial: ca and sa inside a ResNet BasicBlock
# --------------------------------------------------------------------------------------------


class TutorialChannelAttention(nn.Module):
    """``mlp``: "fc1" (fc1, relu1, fc2), "fc" or "shared_MLP" (a Sequential); ``product``: return
    sigmoid(...) * x instead of the weights."""

    def __init__(self, in_planes: int, ratio: int = 16, mlp: str = "fc1", product: bool = False) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.product = product
        self.style = mlp
        if mlp == "fc1":
            self.fc1 = nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False)
            self.relu1 = nn.ReLU()
            self.fc2 = nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False)
        else:
            setattr(self, mlp, nn.Sequential(nn.Conv2d(in_planes, in_planes // ratio, 1, bias=False), nn.ReLU(),
                                             nn.Conv2d(in_planes // ratio, in_planes, 1, bias=False)))
        self.sigmoid = nn.Sigmoid()

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        if self.style == "fc1":
            return self.fc2(self.relu1(self.fc1(x)))
        return getattr(self, self.style)(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.sigmoid(self.mlp(self.avg_pool(x)) + self.mlp(self.max_pool(x)))
        return weights * x if self.product else weights


class TutorialSpatialAttention(nn.Module):
    def __init__(self, kernel_size: int = 7, product: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.product = product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        mask = self.sigmoid(self.conv1(torch.cat([avg_out, max_out], dim=1)))
        return mask * x if self.product else mask


class TutorialBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, mlp: str = "fc1", product: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.ca = TutorialChannelAttention(planes, mlp=mlp, product=product)
        self.sa = TutorialSpatialAttention(product=product)
        self.product = product
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.product:
            out = self.sa(self.ca(out))
        else:
            out = self.ca(out) * out
            out = self.sa(out) * out
        return self.relu(out + residual)
