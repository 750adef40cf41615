"""cbam.usercode.model_from_weights: the CBAM-ResNet a weights file belongs to, from its keys alone.

The state dicts come from randomly initialised networks of each layout: the authors' (re-implemented
in test_compat.py), pytorchcv's and timm's (the packages), and CBAM Lab's own.
"""

from __future__ import annotations

import io

import pytest
import torch
from test_compat import official_resnet, randomize_

from cbam import CBAM, cbam_blocks
from cbam.checkpoints import CheckpointError
from cbam.models import cbam_resnet18
from cbam.usercode import model_from_weights

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py



def _timm(depth: int):
    timm = pytest.importorskip("timm")
    return timm.create_model(f"resnet{depth}", pretrained=False, block_args={"attn_layer": "cbam"})


def _pytorchcv(depth: int):
    return getattr(pytest.importorskip("pytorchcv.models.cbamresnet"), f"cbam_resnet{depth}")(pretrained=False)


def _same_logits(ours: torch.nn.Module, reference: torch.nn.Module, size: int = 96) -> None:
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        expected = reference.eval()(x)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-4 * max(1.0, float(expected.abs().max())))


@pytest.mark.parametrize(
    "make, depth, layout",
    [
        (lambda: official_resnet(18), 18, "official"),
        (lambda: _pytorchcv(34), 34, "pytorchcv"),
        (lambda: _pytorchcv(50), 50, "pytorchcv"),
        (lambda: _timm(18), 18, "timm"),
        (lambda: _timm(50), 50, "timm"),
        (lambda: cbam_resnet18(num_classes=10, mlp_bias=False, kernel_size=3), 18, "cbam_lab"),
    ],
)
def test_each_layout_and_depth_is_recognised_and_loads_strictly(make, depth, layout):
    source = make()
    model, card = model_from_weights(source.state_dict())
    assert card.name == f"{layout}-cbam-resnet{depth}" and card.title.startswith(f"CBAM-ResNet-{depth} (")
    assert len(cbam_blocks(model)) == {18: 8, 34: 16, 50: 16}[depth] and not model.training
    if layout == "cbam_lab":
        assert model.fc.out_features == 10 and card.class_names == ()
        assert model.layer1[0].cbam.kernel_size == 3 and model.layer1[0].cbam.channel_attention.fc1.bias is None
    else:
        assert len(card.class_names) == 1000 and card.input_size == 224


@pytest.mark.parametrize(  # the authors' and pytorchcv's networks end with AvgPool2d(7): 224 px only
    "make, size", [(lambda: _timm(18), 96), (lambda: _pytorchcv(18), 224), (lambda: official_resnet(18), 224)]
)
def test_the_network_built_from_weights_gives_the_sources_logits(make, size):
    source = randomize_(make(), seed=3)
    model, _ = model_from_weights(source.state_dict())
    _same_logits(model, source, size=size)


def test_timm_weights_build_timms_own_variant():
    model, _ = model_from_weights(_timm(18).state_dict())
    block: CBAM = model.layer3[1].cbam
    assert block.channel_attention.fc1.bias is None and block.spatial_attention.pool_order == "avg-max"


def test_a_file_as_bytes_and_a_training_checkpoint_are_read():
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in official_resnet(18).state_dict().items()}},
               buffer)
    model, card = model_from_weights(buffer.getvalue())
    assert card.name == "official-cbam-resnet18"


def test_what_is_not_a_cbam_resnet_of_a_known_depth_is_refused():
    torchvision = pytest.importorskip("torchvision")
    with pytest.raises(CheckpointError, match="ResNet without CBAM"):
        model_from_weights(torchvision.models.resnet18().state_dict())
    state = cbam_resnet18().state_dict()
    shallow = {k: v for k, v in state.items() if not k.startswith("layer4.1.")}
    with pytest.raises(CheckpointError, match=r"\(2, 2, 2, 1\) basic blocks.*none of CBAM-ResNet-18"):
        model_from_weights(shallow)


def test_in_chinese_the_model_code_errors_read_in_chinese(tmp_path, monkeypatch):
    import re

    from test_i18n import english_words

    from cbam import i18n, usercode

    monkeypatch.chdir(tmp_path)  # short paths: tmp_path's own words are English
    (tmp_path / "net.py").write_text("from torch import nn\n\ndef plain():\n    return nn.Linear(2, 2)\n\n"
                                     "def number():\n    return 3\n")
    with i18n.use("zh"):
        for spec in ("no-colon", "nowhere.py:build", "net.py:buld", "net.py:number", "net.py:plain"):
            with pytest.raises(usercode.ModelCodeError) as error:
                usercode.network_from_code(spec)
            message = str(error.value)
            assert re.search(r"[\u4e00-\u9fff]", message) and not english_words(message), message
    assert i18n.again(error.value).startswith("the network of net.py:plain has no CBAM block")
