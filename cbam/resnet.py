"""CBAM-ResNets, after the authors' code (Jongchan/attention-module, MODELS/model_resnet.py).

torchvision's ResNet with one CBAM block at the end of every residual branch, after the branch's
last BatchNorm and before the addition of the shortcut::

    out = relu( CBAM(bn(conv(...))) + shortcut(x) )

The blocks are torchvision's own ``BasicBlock`` and ``Bottleneck``, so every other key of the
state dict is torchvision's (``conv1``, ``layer1.0.bn2``, ``fc``...). The CBAM blocks default to
the authors' variant (MLP with bias, [max; avg], BatchNorm after the 7×7 conv), which is the
layout both published ImageNet checkpoints use.

Import them from ``cbam.models``; this module is loaded only when one is first asked for, because
importing torchvision costs about a second (it loads ``torch._dynamo``), which the app's first page
should not wait for when it shows a small network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .modules import CBAM

__all__ = ["CBAMBasicBlock", "CBAMBottleneck", "cbam_resnet18", "cbam_resnet34", "cbam_resnet50", "cbam_resnet101"]


class CBAMBasicBlock(BasicBlock):
    """torchvision's ``BasicBlock`` (two 3×3 convs) with CBAM after ``bn2``, before the addition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cbam = CBAM.authors(self.bn2.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.cbam(out)
        return self.relu(out + identity)


class CBAMBottleneck(Bottleneck):
    """torchvision's ``Bottleneck`` (1×1, 3×3 with the stride, 1×1) with CBAM after ``bn3``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cbam = CBAM.authors(self.bn3.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = self.cbam(out)
        return self.relu(out + identity)


def _cbam_resnet(block: type, layers: list[int], num_classes: int, cbam_options: dict) -> ResNet:
    model = ResNet(block, layers, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, (CBAMBasicBlock, CBAMBottleneck)):
            if cbam_options:  # another CBAM variant than the authors' default
                module.cbam = CBAM.authors(module.cbam.channels, **cbam_options)
            spatial = module.cbam.spatial_attention
            if spatial is not None and spatial.bn is not None:
                # As the authors initialise it: BatchNorm's scale 0, so every spatial mask starts at
                # sigmoid(0) = 0.5 and the block starts close to the plain residual block.
                nn.init.zeros_(spatial.bn.weight)
    return model


def cbam_resnet18(num_classes: int = 1000, **cbam_options: Any) -> ResNet:
    """ResNet-18 with CBAM in each of its 8 basic blocks. ``cbam_options`` go to ``CBAM.authors``."""
    return _cbam_resnet(CBAMBasicBlock, [2, 2, 2, 2], num_classes, cbam_options)


def cbam_resnet34(num_classes: int = 1000, **cbam_options: Any) -> ResNet:
    """ResNet-34 with CBAM in each of its 16 basic blocks."""
    return _cbam_resnet(CBAMBasicBlock, [3, 4, 6, 3], num_classes, cbam_options)


def cbam_resnet50(num_classes: int = 1000, **cbam_options: Any) -> ResNet:
    """ResNet-50 with CBAM in each of its 16 bottleneck blocks (paper, Table 4: 22.66% top-1 error)."""
    return _cbam_resnet(CBAMBottleneck, [3, 4, 6, 3], num_classes, cbam_options)


def cbam_resnet101(num_classes: int = 1000, **cbam_options: Any) -> ResNet:
    """ResNet-101 with CBAM in each of its 33 bottleneck blocks."""
    return _cbam_resnet(CBAMBottleneck, [3, 4, 23, 3], num_classes, cbam_options)
