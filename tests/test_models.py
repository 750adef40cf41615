"""CBAM networks: the authors' placement of CBAM in ResNets, and the small network."""

import pytest
import torch
from torchvision.models import resnet18, resnet50

from cbam import CBAM, cbam_blocks
from cbam.models import CBAMBottleneck, cbam_resnet18, cbam_resnet34, cbam_resnet50, cbam_resnet101, cbam_smallnet


@pytest.mark.parametrize(
    "build, blocks, params",
    [(cbam_resnet18, 8, None), (cbam_resnet34, 16, None), (cbam_resnet50, 16, 28_089_624), (cbam_resnet101, 33, None)],
)
def test_resnet_structure(build, blocks, params):
    model = build()
    found = cbam_blocks(model)
    assert len(found) == blocks
    assert all(name.endswith(".cbam") for name, _ in found)
    if params is not None:  # pytorchcv's cbam_resnet50 has 28,089,624 parameters
        assert sum(p.numel() for p in model.parameters()) == params


def test_resnet_keys_are_torchvisions_plus_cbam():
    ours = set(cbam_resnet50().state_dict())
    theirs = set(resnet50().state_dict())
    assert theirs <= ours
    assert all(".cbam." in k for k in ours - theirs)
    assert set(cbam_resnet18().state_dict()) - set(resnet18().state_dict())


def test_cbam_sits_at_the_end_of_the_residual_branch():
    """out = relu(CBAM(bn3(...)) + shortcut): replacing CBAM by identity gives torchvision's block."""
    torch.manual_seed(0)
    model = cbam_resnet50(num_classes=10).eval()
    block = model.layer2[0]
    assert isinstance(block, CBAMBottleneck)
    x = torch.randn(1, 256, 16, 16)
    seen = {}
    block.cbam.register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    y = block(x)
    expected_input = block.bn3(block.conv3(block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))))
    torch.testing.assert_close(seen["inp"], expected_input)
    torch.testing.assert_close(y, torch.relu(seen["out"] + block.downsample(x)))


def test_resnet_cbam_options_and_authors_initialisation():
    model = cbam_resnet18(num_classes=5, reduction_ratio=8, kernel_size=3)
    cbam = model.layer1[0].cbam
    assert cbam.reduction_ratio == 8 and cbam.kernel_size == 3 and cbam.channel_attention.hidden_channels == 8
    # the authors start every spatial BatchNorm at scale 0, so every mask starts at 0.5
    for _, block in cbam_blocks(model):
        assert torch.count_nonzero(block.spatial_attention.bn.weight) == 0


def test_resnet_forward_and_backward():
    model = cbam_resnet18(num_classes=3)
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 3)
    assert model.layer4[1].cbam.channel_attention.fc1.weight.grad is not None


@pytest.mark.parametrize("size", [64, 96, 128])
def test_smallnet(size):
    model = cbam_smallnet(num_classes=7, reduction_ratio=4, kernel_size=3)
    names = [n for n, _ in cbam_blocks(model)]
    assert names == [f"stages.{i}.cbam" for i in range(4)]
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    assert all(isinstance(b, CBAM) and b.kernel_size == 3 and b.spatial_attention.bn is None for _, b in cbam_blocks(model))


def test_smallnet_baseline_has_no_attention_but_the_same_backbone():
    with_attention, baseline = cbam_smallnet(5), cbam_smallnet(5, attention=False)
    assert cbam_blocks(baseline) == []
    assert {k for k in with_attention.state_dict() if ".cbam." not in k} == set(baseline.state_dict())


def test_smallnet_last_stride():
    """last_stride=1 keeps the third stage's resolution in the last stage, with the same weights' shapes."""
    strided, unstrided = cbam_smallnet(6), cbam_smallnet(6, last_stride=1)
    assert {k: v.shape for k, v in strided.state_dict().items()} == {k: v.shape for k, v in unstrided.state_dict().items()}
    x = torch.randn(2, 3, 96, 96)
    assert strided.features(x).shape[-2:] == (6, 6)
    assert unstrided.features(x).shape[-2:] == (12, 12)
    assert unstrided(x).shape == (2, 6)


def test_the_app_and_the_small_networks_load_without_torchvision():
    """torchvision (and with it torch._dynamo) costs about a second to import: the app's first page
    and the shapes models must not wait for it; the ResNets load it on first use."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        from cbam import zoo
        from ui import cache, page, show, sidebar  # the app's Streamlit layer: imports imagenet, zoo, views
        model, card = zoo.load_model("demo")
        zoo.model_cards()
        assert "torchvision" not in sys.modules, "torchvision imported too early"
        from cbam.models import cbam_resnet18
        assert "torchvision" in sys.modules and type(cbam_resnet18()).__name__ == "ResNet"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_smallnet_min_hidden_lowers_r_only_where_the_mlp_would_be_narrower():
    def ratios_and_widths(model):
        return ([b.reduction_ratio for _, b in cbam_blocks(model)],
                [b.channel_attention.hidden_channels for _, b in cbam_blocks(model)])

    # The default keeps r = 16 in every block: the first block's MLP has one hidden unit.
    assert ratios_and_widths(cbam_smallnet(6)) == ([16, 16, 16, 16], [1, 2, 4, 8])
    assert ratios_and_widths(cbam_smallnet(6, min_hidden=4)) == ([4, 8, 16, 16], [4, 4, 4, 8])
    assert ratios_and_widths(cbam_smallnet(6, reduction_ratio=4, min_hidden=4)) == ([4, 4, 4, 4], [4, 8, 16, 32])
    assert ratios_and_widths(cbam_smallnet(6, widths=(2, 4, 8, 8), min_hidden=4)) == ([1, 1, 2, 2], [2, 4, 4, 4])
    # Every block is still the paper's CBAM with the other options as given.
    for _, block in cbam_blocks(cbam_smallnet(6, min_hidden=4, kernel_size=3)):
        assert block.channel_attention.fc1.bias is None and block.kernel_size == 3
    with pytest.raises(ValueError, match="min_hidden"):
        cbam_smallnet(6, min_hidden=0)
