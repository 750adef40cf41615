"""A small CBAM network, written the way the blog writes CBAM: an example for ``--model-code``.

    streamlit run app.py -- --model-code docs/examples/my_cbam_net.py:build --input-size 128
    python -m cbam models --model-code docs/examples/my_cbam_net.py:build

CBAM Lab imports this file and calls ``build()``, which returns an ``nn.Module``. Its CBAM blocks need
not be ``cbam.CBAM``: CBAM Lab finds them by their structure and checks each on numbers (``cbam.adopt``).
The weights here are random (seed 0), so the attention is not learned; load trained weights in ``build()``
or with ``--weights FILE``.
"""

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Mc = σ(MLP(AvgPool(F)) + MLP(MaxPool(F))), the MLP as two 1×1 convolutions; returns Mc ⊗ F."""

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, channels // ratio, 1, bias=False), nn.ReLU(inplace=True),
                                nn.Conv2d(channels // ratio, channels, 1, bias=False))
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.fc(self.avg_pool(x)) + self.fc(self.max_pool(x))) * x


class SpatialAttention(nn.Module):
    """Ms = σ(conv7×7([mean over channels; max over channels])); returns Ms ⊗ F'."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return self.sigmoid(self.conv1(pooled)) * x


class CBAM(nn.Module):
    def __init__(self, channels: int, ratio: int = 8, kernel_size: int = 7) -> None:
        super().__init__()
        self.channelattention = ChannelAttention(channels, ratio)
        self.spatialattention = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatialattention(self.channelattention(x))


def stage(inputs: int, outputs: int) -> nn.Sequential:
    """A 3×3 convolution with stride 2, BatchNorm, ReLU, then CBAM."""
    return nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(outputs),
                         nn.ReLU(inplace=True), CBAM(outputs))


def build(num_classes: int = 10) -> nn.Module:
    """Four stages (16, 32, 64, 128 channels; a 128 px image gives maps of 64, 32, 16 and 8 positions)
    and a linear classifier, with random weights (seed 0)."""
    torch.manual_seed(0)
    net = nn.Sequential(stage(3, 16), stage(16, 32), stage(32, 64), stage(64, 128),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.out_channels > 1:  # as torchvision initialises ResNets
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # running statistics: the plain average over the batches below
    # Untrained, BatchNorm's running statistics are 0 and 1, and the features fade stage by stage. A few
    # random images set them, so that every stage's features have unit scale, as in a trained network.
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(8, 3, 128, 128))
    return net.eval()
