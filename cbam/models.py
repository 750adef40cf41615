"""Networks with CBAM blocks.

``cbam_resnet18/34/50/101`` follow the authors' code (Jongchan/attention-module,
MODELS/model_resnet.py): torchvision's ResNet with one CBAM block at the end of every residual
branch (see ``cbam/resnet.py``, loaded on first use: importing torchvision takes about a second).

``cbam_smallnet`` is a small plain CNN for 64–128 px images, with a CBAM block closing each of
its four stages (or none, for the no-attention baseline). The bundled trained models use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .modules import CBAM

if TYPE_CHECKING:  # for readers and type checkers; at run time __getattr__ below loads them
    from .resnet import CBAMBasicBlock, CBAMBottleneck, cbam_resnet18, cbam_resnet34, cbam_resnet50, cbam_resnet101

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

_RESNET_NAMES = frozenset(__all__[:6])  # the names cbam/resnet.py defines


def __getattr__(name: str) -> Any:
    """The ResNet names, from ``cbam.resnet`` on first use (``from cbam.models import cbam_resnet50``)."""
    if name in _RESNET_NAMES:
        from . import resnet

        return getattr(resnet, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        min_hidden: the fewest hidden units any block's shared MLP may have. Each block's reduction
            ratio is the largest r' ≤ r that leaves at least that many, ``r' = min(r, C // min_hidden)``
            (at least 1): with r = 16 and ``min_hidden=4`` the four blocks of widths 16, 32, 64, 128
            get r' = 4, 8, 16, 16 and hidden widths 4, 4, 4, 8 instead of 1, 2, 4, 8. The default 1 keeps
            r everywhere (the paper's rule, C // r rounded up to 1). Each block is still a plain
            ``CBAM.paper(C, r')``: its ``reduction_ratio`` is the r' it was built with.
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
        min_hidden: int = 1,
        **cbam_options: Any,
    ) -> None:
        super().__init__()
        if isinstance(min_hidden, bool) or not isinstance(min_hidden, int) or min_hidden < 1:
            raise ValueError(f"min_hidden must be a positive integer, got {min_hidden!r}")
        self.attention = attention
        self.min_hidden = min_hidden
        self.cbam_options = dict(cbam_options)
        self.stem = _conv_bn_relu(3, widths[0])
        stages = []
        c_in = widths[0]
        for i, width in enumerate(widths):
            stage = nn.Sequential()
            stride = last_stride if i == len(widths) - 1 else 2
            stage.add_module("down", _conv_bn_relu(c_in, width, stride=stride))
            stage.add_module("conv", _conv_bn_relu(width, width))
            stage.add_module("cbam", CBAM.paper(width, **self.block_options(width)) if attention else nn.Identity())
            stages.append(stage)
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_norm = nn.LayerNorm(c_in) if head_norm else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)

    def block_options(self, channels: int) -> dict[str, Any]:
        """The options of the CBAM block closing a stage of ``channels`` channels (see ``min_hidden``)."""
        ratio = self.cbam_options.get("reduction_ratio", 16)
        return {**self.cbam_options, "reduction_ratio": max(1, min(ratio, channels // self.min_hidden))}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head_norm(torch.flatten(self.pool(self.features(x)), 1)))


def cbam_smallnet(
    num_classes: int = 10,
    attention: bool = True,
    head_norm: bool = False,
    last_stride: int = 2,
    min_hidden: int = 1,
    **cbam_options: Any,
) -> SmallCBAMNet:
    """The small network of ``SmallCBAMNet``; ``attention=False`` gives the baseline."""
    return SmallCBAMNet(
        num_classes=num_classes, attention=attention, head_norm=head_norm, last_stride=last_stride,
        min_hidden=min_hidden, **cbam_options
    )
