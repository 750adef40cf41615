"""Networks with CBAM blocks.

``cbam_resnet18/34/50/101`` follow the authors' code (Jongchan/attention-module,
MODELS/model_resnet.py): torchvision's ResNet with one CBAM block at the end of every residual
branch, after the branch's last BatchNorm and before the addition of the shortcut::

    out = relu( CBAM(bn(conv(...))) + shortcut(x) )

The blocks are torchvision's own ``BasicBlock`` and ``Bottleneck``, so every other key of the
state dict is torchvision's (``conv1``, ``layer1.0.bn2``, ``fc``...). The CBAM blocks default to
the authors' variant (MLP with bias, [max; avg], BatchNorm after the 7×7 conv), which is the
layout both published ImageNet checkpoints use.

``cbam_smallnet`` is a small plain CNN for 64–128 px images, with a CBAM block closing each of
its four stages (or none, for the no-attention baseline). The bundled trained models use it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .modules import CBAM

__all__ = [
    "CBAMBasicBlock",
    "CBAMBottleneck",
    "cbam_resnet18",
    "cbam_resnet34",
    "cbam_resnet50",
    "cbam_resnet101",
    "SmallCBAMNet",
    "cbam_smallnet",
]


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


# --------------------------------------------------------------------------------------------
# A small network for small images
# --------------------------------------------------------------------------------------------


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCBAMNet(nn.Module):
    """A four-stage CNN for 64–128 px RGB images.

    stem: 3×3 conv to ``widths[0]``; each stage i: a stride-2 3×3 conv to ``widths[i]``, a 3×3 conv,
    then a CBAM block (``stages.i.cbam``; ``nn.Identity`` in the baseline); finally global average
    pooling and a linear classifier. A 96 px input gives 48, 24, 12 and 6 px feature maps.

    Args:
        num_classes: number of output classes.
        widths: channels of the four stages.
        attention: False builds the no-attention baseline (same network, no CBAM blocks).
        head_norm: LayerNorm on the pooled feature vector, before the classifier. It makes the
            logits blind to the overall scale of the last stage's output, so the last CBAM block's
            spatial mask cannot serve as a mere gain (saturating at 1 everywhere) and is left with
            its real job: choosing *where*. The trained models of the zoo use it.
        last_stride: the stride of the last stage's first conv. 2 (default) halves the map as every
            stage does (a 6×6 last map at 96 px); 1 keeps the third stage's resolution (12×12 at
            96 px), so the last CBAM block's spatial mask has cells of 8 px instead of 16.
        cbam_options: passed to ``CBAM.paper`` for every block (reduction_ratio, kernel_size,
            arrangement, pool_types, ...).
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        attention: bool = True,
        head_norm: bool = False,
        last_stride: int = 2,
        **cbam_options: Any,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.cbam_options = dict(cbam_options)
        self.stem = _conv_bn_relu(3, widths[0])
        stages = []
        c_in = widths[0]
        for i, width in enumerate(widths):
            stage = nn.Sequential()
            stride = last_stride if i == len(widths) - 1 else 2
            stage.add_module("down", _conv_bn_relu(c_in, width, stride=stride))
            stage.add_module("conv", _conv_bn_relu(width, width))
            stage.add_module("cbam", CBAM.paper(width, **cbam_options) if attention else nn.Identity())
            stages.append(stage)
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_norm = nn.LayerNorm(c_in) if head_norm else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head_norm(torch.flatten(self.pool(self.features(x)), 1)))


def cbam_smallnet(
    num_classes: int = 10,
    attention: bool = True,
    head_norm: bool = False,
    last_stride: int = 2,
    **cbam_options: Any,
) -> SmallCBAMNet:
    """The small network of ``SmallCBAMNet``; ``attention=False`` gives the baseline."""
    return SmallCBAMNet(
        num_classes=num_classes, attention=attention, head_norm=head_norm, last_stride=last_stride, **cbam_options
    )
