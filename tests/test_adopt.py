"""cbam.adopt: other implementations' CBAM blocks become cbam.CBAM in place, with the same outputs.

Every test compares the network's outputs before and after on random weights (and BatchNorm
statistics), so a wrong option (pool order, bias, arrangement) cannot go unnoticed.
"""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
from foreign_cbam import (
    AuthorsCBAM,
    BlogCBAM,
    TutorialBasicBlock,
    TutorialSpatialAttention,
    randomize_,
)
from test_i18n import NAMES, english_words
from torch import nn

from cbam import CBAM, AdoptError, AdoptWarning, adopt, i18n, trace_all
from cbam.adopt import ChannelPiece, SpatialPiece

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py



def _x(channels: int, size: tuple[int, int] = (9, 11), batch: int = 2, seed: int = 3) -> torch.Tensor:
    return torch.randn(batch, channels, *size, generator=torch.Generator().manual_seed(seed))


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def assert_adopted_same(model: nn.Module, x: torch.Tensor, expected: dict[str, str]) -> nn.Module:
    """adopt() reports ``expected``, leaves cbam.CBAM at those names and keeps the outputs."""
    before = _outputs(model, x)
    assert adopt(model) == expected
    for name in expected:
        assert isinstance(model.get_submodule(name), CBAM), name
    after = _outputs(model, x)
    assert before.std() > 1e-3
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5 * max(1.0, float(before.abs().max())))
    return model


def test_the_blog_block_becomes_the_blog_preset():
    model = randomize_(nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), BlogCBAM(32, ratio=8, kernel_size=7)))
    assert_adopted_same(model, _x(3), {"1": "blog"})
    block = model[1]
    assert block.channel_attention.fc1.bias is None and block.spatial_attention.bn is None
    assert block.spatial_attention.pool_order == "avg-max" and block.kernel_size == 7 and block.reduction_ratio == 8


@pytest.mark.parametrize("pool_types", [("avg", "max"), ("avg", "max", "lp", "lse"), ("max",)])
def test_the_authors_block_keeps_pool_types_bias_order_and_batchnorm(pool_types):
    model = randomize_(nn.Sequential(AuthorsCBAM(64, 16, pool_types), nn.ReLU()), seed=1)
    theirs = model[0].SpatialGate.spatial.bn
    assert_adopted_same(model, _x(64), {"0": "authors"})
    block = model[0]
    assert block.channel_attention.pool_types == pool_types
    assert block.spatial_attention.pool_order == "max-avg" and block.channel_attention.fc1.bias is not None
    ours = block.spatial_attention.bn
    assert torch.equal(ours.running_var, theirs.running_var) and torch.equal(ours.running_mean, theirs.running_mean)
    assert int(ours.num_batches_tracked) == 7 and ours.momentum == 0.01


def test_the_authors_channel_only_block_has_no_spatial_attention():
    model = randomize_(nn.Sequential(AuthorsCBAM(32, 8, no_spatial=True)), seed=2)
    assert_adopted_same(model, _x(32), {"0": "authors"})
    assert model[0].spatial_attention is None


def test_an_untrained_authors_block_gets_the_pool_order_from_its_structure():
    # The authors initialise the spatial BatchNorm's scale to 0: every mask is then sigmoid(bias), the
    # same for either order of the pooled maps. The random-weight copy still tells them apart.
    model = randomize_(nn.Sequential(AuthorsCBAM(32, 8)), seed=3)
    nn.init.zeros_(model[0].SpatialGate.spatial.bn.weight)
    assert_adopted_same(model, _x(32), {"0": "authors"})
    assert model[0].spatial_attention.pool_order == "max-avg"


@pytest.mark.parametrize("mlp_bias", [False, True])
def test_timm_cbam_module_with_and_without_mlp_bias(mlp_bias):
    from timm.layers.cbam import CbamModule

    model = randomize_(nn.Sequential(nn.Conv2d(3, 48, 1), CbamModule(48, rd_ratio=1 / 8, mlp_bias=mlp_bias)), seed=4)
    assert_adopted_same(model, _x(3), {"1": "timm"})
    block = model[1]
    assert (block.channel_attention.fc1.bias is not None) == mlp_bias
    assert block.spatial_attention.pool_order == "avg-max" and block.spatial_attention.bn is not None


def test_a_timm_cbam_resnet_gives_the_same_logits():
    timm = pytest.importorskip("timm")
    model = randomize_(timm.create_model("resnet18", pretrained=False, block_args={"attn_layer": "cbam"}), seed=5)
    x = _x(3, (64, 64), batch=1)
    expected = {f"layer{i}.{j}.se": "timm" for i in range(1, 5) for j in range(2)}
    assert_adopted_same(model, x, expected)


def test_a_pytorchcv_cbam_resnet_gives_the_same_logits():
    cbamresnet = pytest.importorskip("pytorchcv.models.cbamresnet")
    model = randomize_(cbamresnet.cbam_resnet18(pretrained=False), seed=6)
    expected = {f"features.stage{i}.unit{j}.cbam": "pytorchcv" for i in range(1, 5) for j in (1, 2)}
    assert_adopted_same(model, _x(3, (224, 224), batch=1), expected)
    assert model.features.stage1.unit1.cbam.spatial_attention.pool_order == "max-avg"


@pytest.mark.parametrize("mlp", ["fc1", "fc", "shared_MLP"])
@pytest.mark.parametrize("product", [False, True])
def test_the_tutorial_block_in_two_parts_is_adopted_with_pieces(mlp, product):
    model = randomize_(nn.Sequential(TutorialBasicBlock(16, 32, stride=2, mlp=mlp, product=product)), seed=7)
    assert_adopted_same(model, _x(16, (20, 20)), {"0.cbam": "tutorial"})
    block = model[0]
    assert isinstance(block.ca, ChannelPiece) and isinstance(block.sa, SpatialPiece)
    assert block.ca.returns == ("product" if product else "weights")
    # the weights live once, under the block's own name
    keys = list(model.state_dict())
    assert "0.cbam.channel_attention.fc1.weight" in keys and not any(k.startswith(("0.ca.", "0.sa.")) for k in keys)


def test_a_traced_tutorial_block_records_what_its_network_computed():
    model = randomize_(nn.Sequential(TutorialBasicBlock(8, 16, mlp="fc1")), seed=8).eval()
    adopt(model)
    x = _x(8, (12, 10))
    logits, traces = trace_all(model, x)
    assert torch.equal(logits, _outputs(model, x))
    t = traces["0.cbam"]
    assert t.x.shape == (2, 16, 12, 10) and t.spatial_mask.shape == (2, 1, 12, 10)
    torch.testing.assert_close(t.x_channel, t.x * t.channel_weights[:, :, None, None], rtol=0, atol=0)
    torch.testing.assert_close(t.out, t.x_channel * t.spatial_mask, rtol=0, atol=0)


def test_blocks_already_cbam_are_reported_and_a_second_adopt_changes_nothing():
    model = randomize_(nn.Sequential(CBAM.paper(16), BlogCBAM(16), TutorialBasicBlock(16, 16)), seed=9)
    first = adopt(model)
    assert first == {"0": "cbam", "1": "blog", "2.cbam": "tutorial"}
    state = copy.deepcopy(model.state_dict())
    assert adopt(model) == dict.fromkeys(first, "cbam")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()) and state.keys() == model.state_dict().keys()


def test_a_shared_block_is_replaced_everywhere_by_one_cbam():
    shared = BlogCBAM(16, 4)
    model = randomize_(nn.Sequential(shared, nn.Conv2d(16, 16, 1), shared), seed=10)
    assert_adopted_same(model, _x(16), {"0": "blog"})
    assert model[0] is model[2]


def test_train_mode_device_and_dtype_are_kept():
    model = randomize_(nn.Sequential(AuthorsCBAM(16, 4)), seed=11).double().train()
    adopt(model)
    block = model[0]
    assert block.training and block.channel_attention.fc1.weight.dtype == torch.float64
    assert block.spatial_attention.bn.running_var.dtype == torch.float64


# --------------------------------------------------------------------------------------------
# What is not CBAM, or not this CBAM: warnings, and all or nothing
# --------------------------------------------------------------------------------------------


class SingleConvChannelGate(nn.Module):
    """A 'channel attention' without hidden layer: sigmoid(conv1x1(avg) + conv1x1(max))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x.mean((2, 3), keepdim=True)) + self.conv(x.amax((2, 3), keepdim=True)))


class SingleConvCBAM(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channel = SingleConvChannelGate(channels)
        self.spatial = TutorialSpatialAttention(7, product=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


def test_a_channel_gate_without_hidden_layer_is_left_untouched_with_a_warning():
    model = nn.Sequential(SingleConvCBAM(16), BlogCBAM(16, 4))
    with pytest.warns(AdoptWarning, match=r"left 0 \(SingleConvCBAM\) untouched.*single Conv2d \(16 → 16\) with no hidden"):
        assert adopt(model) == {"1": "blog"}
    assert isinstance(model[0], SingleConvCBAM)


def test_timm_light_cbam_is_left_untouched_with_a_warning():
    from timm.layers.cbam import LightCbamModule

    model = nn.Sequential(LightCbamModule(32))
    with pytest.warns(AdoptWarning, match="takes one map"):
        assert adopt(model) == {}
    assert isinstance(model[0], LightCbamModule)


class TanhGateCBAM(BlogCBAM):
    """Structurally the blog's block, but its channel gate is tanh, not sigmoid: no option matches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca = self.channelattention
        x = x * torch.tanh(ca.fc(ca.avg_pool(x)) + ca.fc(ca.max_pool(x)))
        return self.spatialattention(x)


def test_a_block_whose_numbers_match_no_option_stops_everything():
    model = randomize_(nn.Sequential(BlogCBAM(16, 4), TanhGateCBAM(16, 4), TutorialBasicBlock(16, 16)), seed=12)
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(AdoptError, match=r"changed nothing: 1 CBAM-like block.*1 \(TanhGateCBAM\): no option"):
        adopt(model)
    assert [type(m) for m in model] == [BlogCBAM, TanhGateCBAM, TutorialBasicBlock]
    assert isinstance(model[2].ca, nn.Module) and not hasattr(model[2], "cbam")
    assert model.state_dict().keys() == state.keys()


class BatchOfOneSkips(BlogCBAM):
    """Computes CBAM on the probe (a batch of 2), but nothing for a batch of 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[0] == 1 else super().forward(x)


def test_a_whole_model_probe_that_changes_undoes_every_replacement():
    model = randomize_(nn.Sequential(BlogCBAM(16, 4), TutorialBasicBlock(16, 16), BatchOfOneSkips(16, 4)), seed=13)
    with pytest.raises(AdoptError, match="output on the probe differs"):
        adopt(model, probe=_x(16, batch=1))
    assert [type(m) for m in model] == [BlogCBAM, TutorialBasicBlock, BatchOfOneSkips]
    assert not hasattr(model[1], "cbam") and not isinstance(model[1].ca, ChannelPiece)
    # without that block, the probe agrees
    del model[2]
    assert adopt(model, probe=_x(16, batch=1)) == {"0": "blog", "1.cbam": "tutorial"}


def test_the_model_itself_must_not_be_the_block():
    with pytest.raises(AdoptError, match="the model itself is a CBAM block"):
        adopt(BlogCBAM(16, 4))
    with pytest.raises(TypeError):
        adopt("resnet")


def test_networks_without_cbam_give_an_empty_dict_and_no_warning():
    torchvision = pytest.importorskip("torchvision")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert adopt(torchvision.models.resnet18()) == {}


# --------------------------------------------------------------------------------------------
# In Chinese: the warnings and errors a researcher reads beside their own model
# --------------------------------------------------------------------------------------------


def _reads_chinese(message: str) -> bool:
    """Chinese, and no English words besides the names tests/test_i18n.py allows (code in backticks)."""
    return bool(re.search(r"[\u4e00-\u9fff]", message)) and not english_words(message) - NAMES


class WideSpatialCBAM(BlogCBAM):
    """The blog's block with a spatial convolution that has a bias and pads by reflection: no option fits."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, 4, 7)
        self.spatialattention.conv1 = nn.Conv2d(2, 1, 7, padding=3, padding_mode="reflect")


def test_in_chinese_a_module_left_untouched_is_named_in_a_chinese_warning():
    with i18n.use("zh"), pytest.warns(AdoptWarning) as caught:
        assert adopt(nn.Sequential(SingleConvCBAM(16), WideSpatialCBAM(16))) == {}
    messages = [str(w.message) for w in caught if issubclass(w.category, AdoptWarning)]
    assert len(messages) == 2
    for message in messages:
        assert _reads_chinese(message), message
    assert "`SingleConvCBAM`" in messages[0] and "16 → 16" in messages[0]


def test_in_chinese_a_block_that_fails_its_check_stops_everything_with_a_chinese_error():
    model = randomize_(nn.Sequential(BlogCBAM(16, 4), TanhGateCBAM(16, 4)), seed=12)
    with i18n.use("zh"):
        with pytest.raises(AdoptError) as error:
            adopt(model)
        assert _reads_chinese(str(error.value)), str(error.value)
        with pytest.raises(AdoptError) as itself:
            adopt(BlogCBAM(16, 4))
        assert _reads_chinese(str(itself.value)), str(itself.value)
    assert "`TanhGateCBAM`" in str(error.value)
    assert i18n.again(error.value).startswith("cbam.adopt changed nothing: 1 CBAM-like block(s)")


def test_a_warning_raised_in_english_reads_chinese_when_worded_again():
    with pytest.warns(AdoptWarning) as caught:
        adopt(nn.Sequential(WideSpatialCBAM(16)))
    note = next(w.message.args[0] for w in caught if issubclass(w.category, AdoptWarning))
    assert note.startswith("cbam.adopt left 0 (WideSpatialCBAM) untouched") and "has a bias" in note
    with i18n.use("zh"):
        again = i18n.again(note)
    assert _reads_chinese(again), again
    assert "偏置" in again and "`'reflect'`" in again
    assert i18n.again(note) == note  # and English again in English
