"""cbam.compat: weights from the blog's CBAM block, the authors' CBAM-ResNet and pytorchcv's.

Each conversion is checked the only way that matters: the source network and ours, holding the
same (random) weights, compute the same outputs. The blog block and the authors' ResNet are
re-implemented below from the facts of their code (layouts, key names, pooling orders); pytorchcv's
networks are the installed package itself, built with ``pretrained=False`` (no network access).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cbam import CBAM, checkpoints
from cbam.compat import SEED_KEYS, SOURCES, convert_state_dict, from_seed_state_dict
from cbam.models import cbam_resnet18, cbam_resnet34, cbam_resnet50, cbam_resnet101


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# The blog version's CBAM block, as its code is described in the seed summary
# --------------------------------------------------------------------------------------------


class SeedChannelAttention(nn.Module):
    """sigmoid(fc(avgpool(x)) + fc(maxpool(x))) * x, fc = 1×1 conv, ReLU, 1×1 conv, no biases."""

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        hidden = in_channels // ratio
        self.fc = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 1, bias=False),
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.fc(self.avg_pool(x)) + self.fc(self.max_pool(x))) * x


class SeedSpatialAttention(nn.Module):
    """sigmoid(conv1(cat[mean over channels, max over channels])) * x, padding k // 2, no bias."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True)[0]], dim=1)
        return self.sigmoid(self.conv1(pooled)) * x


class SeedCBAM(nn.Module):
    """Channel attention, then spatial attention (with the post's super() typo fixed)."""

    def __init__(self, in_channels: int, ratio: int = 16, kernel_size: int = 3) -> None:
        super().__init__()
        self.channelattention = SeedChannelAttention(in_channels, ratio)
        self.spatialattention = SeedSpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatialattention(self.channelattention(x))


def _random_seed_block(channels: int, ratio: int, kernel_size: int, seed: int) -> SeedCBAM:
    block = SeedCBAM(channels, ratio, kernel_size)
    gen = _generator(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return block


@pytest.mark.parametrize(
    ("channels", "ratio", "kernel_size", "batch", "height", "width"),
    [
        (64, 16, 3, 2, 8, 8),  # the blog's defaults
        (32, 4, 7, 1, 5, 9),  # the paper's kernel, a non-square map
        (10, 3, 5, 3, 4, 4),
        (17, 5, 7, 2, 12, 6),
        (7, 1, 3, 1, 3, 3),  # no reduction
        (48, 16, 1, 4, 6, 6),  # a 1×1 spatial kernel
        (100, 15, 3, 2, 7, 7),  # r = 15 and r = 16 give the same 6 hidden units
    ],
)
def test_seed_block_matches_the_blog_module(channels, ratio, kernel_size, batch, height, width):
    reference = _random_seed_block(channels, ratio, kernel_size, seed=channels + kernel_size)
    ours = from_seed_state_dict(reference.state_dict())

    assert isinstance(ours, CBAM)
    assert ours.channels == channels
    assert ours.kernel_size == kernel_size
    assert ours.channel_attention.hidden_channels == channels // ratio
    assert channels // ours.reduction_ratio == channels // ratio
    assert ours.spatial_attention.pool_order == "avg-max"
    assert ours.spatial_attention.bn is None and ours.channel_attention.fc1.bias is None

    x = torch.randn(batch, channels, height, width, generator=_generator(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


def test_seed_ratio_is_the_largest_that_fits():
    # 64 // r == 4 for r in 13..16: the weights cannot tell them apart; the usual 16 comes back.
    reference = _random_seed_block(64, 13, 3, seed=0)
    assert from_seed_state_dict(reference.state_dict()).reduction_ratio == 16


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_seed_block_with_no_hidden_units_gives_weights_of_one_half():
    # C < r: the blog's MLP has 0 hidden units; its output is 0 and every channel weight is 0.5.
    channels, ratio, kernel_size = 8, 16, 3
    reference = _random_seed_block(channels, ratio, kernel_size, seed=3)
    state = reference.state_dict()
    assert state["channelattention.fc.0.weight"].shape == (0, channels, 1, 1)

    ours = from_seed_state_dict(state)
    assert ours.channel_attention.hidden_channels == 1
    assert ours.reduction_ratio > channels

    x = torch.randn(2, channels, 6, 5, generator=_generator(4))
    with torch.no_grad():
        assert torch.equal(ours.channel_attention.weights(x), torch.full((2, channels), 0.5))
        # PyTorch cannot run the blog's MLP with 0 channels, so apply its math directly:
        # channel step x * 0.5, then the blog's own spatial attention.
        expected = reference.spatialattention(0.5 * x)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


def _seed_state(channels: int = 16, hidden: int = 4, kernel_size: int = 3) -> dict[str, torch.Tensor]:
    return {
        "channelattention.fc.0.weight": torch.randn(hidden, channels, 1, 1),
        "channelattention.fc.2.weight": torch.randn(channels, hidden, 1, 1),
        "spatialattention.conv1.weight": torch.randn(1, 2, kernel_size, kernel_size),
    }


def _without(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (_without(_seed_state(), "spatialattention.conv1.weight"), "missing keys: spatialattention.conv1.weight"),
        ({**_seed_state(), "extra.weight": torch.zeros(1)}, "unexpected keys: extra.weight"),
        ({**_seed_state(), "channelattention.fc.2.weight": torch.randn(16, 5, 1, 1)}, "inconsistent shapes"),
        ({**_seed_state(), "channelattention.fc.2.weight": torch.randn(12, 4, 1, 1)}, "inconsistent shapes"),
        ({**_seed_state(), "channelattention.fc.0.weight": torch.randn(4, 16, 3, 3)}, "(C // r, C, 1, 1)"),
        ({**_seed_state(), "channelattention.fc.0.weight": torch.randn(4, 16)}, "4 dimensions"),
        ({**_seed_state(), "spatialattention.conv1.weight": torch.randn(1, 3, 3, 3)}, "(1, 2, k, k)"),
        ({**_seed_state(), "spatialattention.conv1.weight": torch.randn(1, 2, 3, 5)}, "(1, 2, k, k)"),
        (_seed_state(kernel_size=4), "even kernel size 4"),
        (_seed_state(channels=10, hidden=4), "no reduction ratio"),  # 10 // r is never 4
        ({**_seed_state(), "channelattention.fc.0.weight": [[1.0]]}, "must be a tensor"),
        ({**_seed_state(), "channelattention.fc.0.weight": torch.ones(4, 16, 1, 1, dtype=torch.long)}, "floating"),
    ],
)
def test_seed_malformed_dicts_are_rejected(state, message):
    with pytest.raises(ValueError) as error:
        from_seed_state_dict(state)
    assert message in str(error.value)


def test_seed_keys_are_the_blog_modules_keys():
    assert set(SeedCBAM(32).state_dict()) == set(SEED_KEYS)
    with pytest.raises(ValueError, match="state dict"):
        from_seed_state_dict([1, 2, 3])


# --------------------------------------------------------------------------------------------
# The authors' CBAM-ResNet (Jongchan/attention-module), from the facts of its code
# --------------------------------------------------------------------------------------------


class OfficialChannelGate(nn.Module):
    """mlp = Sequential(Flatten, Linear(C, C // r), ReLU, Linear(C // r, C)): keys mlp.1.*, mlp.3.*."""

    def __init__(self, channels: int, reduction_ratio: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction_ratio
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:])
        avg = F.avg_pool2d(x, size, stride=size)
        peak = F.max_pool2d(x, size, stride=size)
        scale = torch.sigmoid(self.mlp(avg) + self.mlp(peak))
        return x * scale[:, :, None, None]


class OfficialConvBN(nn.Module):
    """The authors' BasicConv as the spatial gate uses it: conv (no bias), BatchNorm, no ReLU."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class OfficialSpatialGate(nn.Module):
    """Pools across channels as [max; mean] (max first), then a 7×7 conv + BN and a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.spatial = OfficialConvBN(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compressed = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(compressed))


class OfficialCBAM(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ChannelGate = OfficialChannelGate(channels, 16)
        self.SpatialGate = OfficialSpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class OfficialBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.cbam = OfficialCBAM(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.cbam(self.bn2(self.conv2(out)))
        return F.relu(out + residual)


class OfficialBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)  # stride on the 3×3
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.cbam = OfficialCBAM(planes * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.cbam(self.bn3(self.conv3(out)))
        return F.relu(out + residual)


class OfficialResNet(nn.Module):
    """The ImageNet network of ``ResidualNet("ImageNet", depth, 1000, "CBAM")``; AvgPool2d(7) needs 224 px."""

    def __init__(self, block: type, layers: list[int], num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AvgPool2d(7)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


OFFICIAL_LAYOUTS = {
    18: (OfficialBasicBlock, [2, 2, 2, 2]),
    34: (OfficialBasicBlock, [3, 4, 6, 3]),
    50: (OfficialBottleneck, [3, 4, 6, 3]),
    101: (OfficialBottleneck, [3, 4, 23, 3]),
}
OURS = {18: cbam_resnet18, 34: cbam_resnet34, 50: cbam_resnet50, 101: cbam_resnet101}


def official_resnet(depth: int) -> OfficialResNet:
    block, layers = OFFICIAL_LAYOUTS[depth]
    return OfficialResNet(block, layers)


# --------------------------------------------------------------------------------------------
# Random weights everywhere, so that a wrong mapping cannot go unnoticed
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Random weights, biases and BatchNorm statistics (including every spatial-gate BatchNorm,
    which both sources initialise to a scale of 0), scaled so that activations stay O(1)."""
    gen = _generator(seed)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            # The spatial gates' 2 -> 1 convolution gets larger weights, so that its masks vary
            # strongly across positions and a wrong pooling order or kernel shows in the logits.
            gain = 4.0 if isinstance(module, nn.Conv2d) and module.in_channels == 2 else 1.0
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * gain / fan_in**0.5)
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.2)
        elif isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.weight.copy_(0.3 + 0.4 * torch.rand(n, generator=gen))
            module.bias.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            module.num_batches_tracked.fill_(int(torch.randint(1, 10_000, (1,), generator=gen)))
    return model.eval()


def _image(batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, 224, 224, generator=_generator(seed))


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def _assert_same_logits(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert reference.std() > 0.05, "the reference logits are nearly constant: the test would prove little"
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-4)


def _ours_with(state_dict: dict, depth: int, **cbam_options) -> nn.Module:
    return checkpoints.load_into(OURS[depth](**cbam_options), state_dict).eval()


# --------------------------------------------------------------------------------------------
# source="official"
# --------------------------------------------------------------------------------------------


def test_official_resnet50_gives_the_same_logits():
    reference = randomize_(official_resnet(50), seed=50)
    ours = _ours_with(convert_state_dict(reference.state_dict(), "official"), 50)
    x = _image(2)
    _assert_same_logits(_logits(ours, x), _logits(reference, x))


@pytest.fixture(scope="module")
def official18() -> OfficialResNet:
    return randomize_(official_resnet(18), seed=18)


def test_official_accepts_plain_prefixed_and_checkpoint_forms(official18):
    plain = official18.state_dict()
    prefixed = {f"module.{k}": v for k, v in plain.items()}  # as saved from nn.DataParallel
    container = {
        "epoch": 90,
        "arch": "resnet",
        "state_dict": prefixed,
        "best_prec1": torch.tensor(77.3),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
    }
    converted = [convert_state_dict(sd, "official") for sd in (plain, prefixed, container)]
    for other in converted[1:]:
        assert list(other) == list(converted[0])
        assert all(torch.equal(other[k], converted[0][k]) for k in other)

    x = _image(1, seed=1)
    expected = _logits(official18, x)
    for state in converted:
        _assert_same_logits(_logits(_ours_with(state, 18), x), expected)


def test_official_keys_are_mapped_as_documented(official18):
    converted = convert_state_dict(official18.state_dict(), "official")
    source = official18.state_dict()
    assert torch.equal(
        converted["layer1.0.cbam.channel_attention.fc1.weight"], source["layer1.0.cbam.ChannelGate.mlp.1.weight"]
    )
    assert torch.equal(
        converted["layer4.1.cbam.channel_attention.fc2.bias"], source["layer4.1.cbam.ChannelGate.mlp.3.bias"]
    )
    assert torch.equal(
        converted["layer2.0.cbam.spatial_attention.conv.weight"],
        source["layer2.0.cbam.SpatialGate.spatial.conv.weight"],
    )
    assert torch.equal(
        converted["layer3.1.cbam.spatial_attention.bn.running_var"],
        source["layer3.1.cbam.SpatialGate.spatial.bn.running_var"],
    )
    assert set(converted) == set(cbam_resnet18().state_dict())


def test_official_old_checkpoints_without_num_batches_tracked(official18):
    old = {k: v for k, v in official18.state_dict().items() if not k.endswith("num_batches_tracked")}
    converted = convert_state_dict(old, "official")
    counters = [k for k in converted if k.endswith("num_batches_tracked")]
    assert len(counters) == sum(isinstance(m, nn.BatchNorm2d) for m in official18.modules())
    assert all(converted[k].dtype == torch.long and int(converted[k]) == 0 for k in counters)
    x = _image(1, seed=2)
    _assert_same_logits(_logits(_ours_with(converted, 18), x), _logits(official18, x))


def test_spatial_pool_order_matters_and_is_converted(official18):
    x = _image(1, seed=3)
    expected = _logits(official18, x)
    # The same weights in a network that feeds the kernel [avg; max]: outputs far outside the
    # 1e-4 tolerance (the logits' scale is ~0.2, the spatial masks' effect on them ~1e-2)...
    as_is = convert_state_dict(official18.state_dict(), "official")
    wrong = _logits(_ours_with(as_is, 18, spatial_pool_order="avg-max"), x)
    assert (wrong - expected).abs().max() > 2e-3
    # ...unless the kernels' two input channels are swapped.
    swapped = convert_state_dict(official18.state_dict(), "official", spatial_pool_order="avg-max")
    _assert_same_logits(_logits(_ours_with(swapped, 18, spatial_pool_order="avg-max"), x), expected)


@pytest.mark.parametrize("depth", [34, 101])
def test_official_deeper_networks_load_strictly(depth):
    reference = official_resnet(depth)
    converted = convert_state_dict(reference.state_dict(), "official")
    ours = checkpoints.load_into(OURS[depth](), converted)
    assert torch.equal(
        ours.layer3[2].cbam.channel_attention.fc1.weight, reference.layer3[2].cbam.ChannelGate.mlp[1].weight
    )


def test_official_rejects_foreign_keys(official18):
    state = {**official18.state_dict(), "bam1.channel_att.gate_c.gate_c_fc_0.weight": torch.zeros(4, 64)}
    with pytest.raises(ValueError, match=r"1 key\(s\).*bam1\.channel_att\.gate_c\.gate_c_fc_0\.weight"):
        convert_state_dict(state, "official")
    # Our own key names are not the authors'.
    with pytest.raises(ValueError, match="channel_attention"):
        convert_state_dict(cbam_resnet18().state_dict(), "official")


def test_official_rejects_plain_resnet_and_cifar_variant(official18):
    plain = {k: v for k, v in official18.state_dict().items() if ".cbam." not in k}
    with pytest.raises(ValueError, match="no CBAM weights"):
        convert_state_dict(plain, "official")
    cifar = {**official18.state_dict(), "conv1.weight": torch.zeros(64, 3, 3, 3)}
    with pytest.raises(ValueError, match="CIFAR"):
        convert_state_dict(cifar, "official")


def test_unknown_source_lists_the_valid_ones(official18):
    with pytest.raises(ValueError, match="unknown source 'keras'.*official, pytorchcv, timm"):
        convert_state_dict(official18.state_dict(), "keras")
    assert set(SOURCES) == {"official", "pytorchcv", "timm"}


def test_mlp_bias_false_refuses_a_source_with_biases(official18):
    with pytest.raises(ValueError, match="bias of the authors'.*mlp_bias=False"):
        convert_state_dict(official18.state_dict(), "official", mlp_bias=False)


def test_not_a_state_dict_is_rejected():
    with pytest.raises(ValueError, match="not a state dict"):
        convert_state_dict({"epoch": 3}, "official")


# --------------------------------------------------------------------------------------------
# source="pytorchcv": the real package, no pretrained weights
# --------------------------------------------------------------------------------------------


def _pytorchcv_net(depth: int) -> nn.Module:
    cbamresnet = pytest.importorskip("pytorchcv.models.cbamresnet")
    return getattr(cbamresnet, f"cbam_resnet{depth}")(pretrained=False)


@pytest.mark.parametrize("depth", [18, 50])
def test_pytorchcv_gives_the_same_logits(depth):
    reference = randomize_(_pytorchcv_net(depth), seed=depth + 1)
    converted = convert_state_dict(reference.state_dict(), "pytorchcv")
    ours = _ours_with(converted, depth)
    x = _image(1, seed=depth)
    _assert_same_logits(_logits(ours, x), _logits(reference, x))


@pytest.mark.parametrize("depth", [34, 101])
def test_pytorchcv_deeper_networks_load_strictly(depth):
    reference = _pytorchcv_net(depth)
    ours = checkpoints.load_into(OURS[depth](), convert_state_dict(reference.state_dict(), "pytorchcv"))
    theirs = reference.features.stage3.unit3.cbam.sp_gate.conv.conv.weight
    assert torch.equal(ours.layer3[2].cbam.spatial_attention.conv.weight, theirs)


def test_pytorchcv_keys_are_renumbered_from_zero():
    reference = randomize_(_pytorchcv_net(18), seed=5)
    source = reference.state_dict()
    converted = convert_state_dict(source, "pytorchcv")
    assert torch.equal(converted["conv1.weight"], source["features.init_block.conv.conv.weight"])
    assert torch.equal(
        converted["layer2.0.downsample.0.weight"], source["features.stage2.unit1.identity_conv.conv.weight"]
    )
    assert torch.equal(converted["layer2.1.bn2.bias"], source["features.stage2.unit2.body.conv2.bn.bias"])
    assert torch.equal(converted["fc.weight"], source["output.weight"])


def test_pytorchcv_rejects_unknown_keys():
    source = _pytorchcv_net(18).state_dict()
    bad = {**source, "features.stage1.unit0.body.conv1.conv.weight": torch.zeros(1), "extra.thing": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"2 key\(s\).*unit0.*extra\.thing"):
        convert_state_dict(bad, "pytorchcv")
    with pytest.raises(ValueError, match="cannot be converted"):
        convert_state_dict(source, "official")


# --------------------------------------------------------------------------------------------
# source="timm": the real package, ResNets built with attn_layer="cbam", no pretrained weights
# --------------------------------------------------------------------------------------------


def _timm_net(depth: int) -> nn.Module:
    timm = pytest.importorskip("timm")
    return timm.create_model(f"resnet{depth}", pretrained=False, block_args={"attn_layer": "cbam"})


@pytest.mark.parametrize("depth", [18, 50])
def test_timm_gives_the_same_logits_in_the_default_network_and_in_timms_variant(depth):
    reference = randomize_(_timm_net(depth), seed=depth + 2)
    x = _image(1, seed=depth + 2)
    expected = _logits(reference, x)
    # the default cbam_resnet*: zero biases added, the kernels' [mean; max] inputs swapped to [max; mean]
    default = convert_state_dict(reference.state_dict(), "timm")
    assert not default["layer1.0.cbam.channel_attention.fc1.bias"].any()
    _assert_same_logits(_logits(_ours_with(default, depth), x), expected)
    # timm's own variant, weights unchanged
    faithful = convert_state_dict(reference.state_dict(), "timm", mlp_bias=False, spatial_pool_order="avg-max")
    assert torch.equal(faithful["layer2.1.cbam.spatial_attention.conv.weight"],
                       reference.state_dict()["layer2.1.se.spatial.conv.conv.weight"])
    ours = _ours_with(faithful, depth, mlp_bias=False, spatial_pool_order="avg-max")
    _assert_same_logits(_logits(ours, x), expected)


def test_timm_34_loads_strictly_and_foreign_timm_keys_are_named():
    source = _timm_net(34).state_dict()
    ours = checkpoints.load_into(cbam_resnet34(), convert_state_dict(source, "timm"))
    assert torch.equal(ours.layer3[5].cbam.channel_attention.fc2.weight,
                       source["layer3.5.se.channel.fc2.weight"].flatten(1))
    deep_stem = {**source, "conv1.0.weight": torch.zeros(32, 3, 3, 3)}  # resnet50d and friends
    with pytest.raises(ValueError, match=r"1 key\(s\).*conv1\.0\.weight"):
        convert_state_dict(deep_stem, "timm")
    with pytest.raises(ValueError, match="no CBAM weights"):
        convert_state_dict(pytest.importorskip("timm").create_model("resnet18").state_dict(), "timm")
