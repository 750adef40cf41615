"""Live attention: the dead-channel and flat-mask criteria, and every shipped CBAM model passes them.

A block's channel attention is dead on an image when its channel weights are all (nearly) equal;
its spatial mask is flat when it spans almost nothing (cbam/metrics.py). The shipped models must
have neither in any block, on shapes images they never saw, on the bundled samples, and on a few
other images (cbam.samples.unseen_images).
"""

import pytest
import torch

from cbam import CBAM, data, samples, trace, zoo
from cbam.metrics import (
    DEAD_CHANNEL_STD,
    FLAT_MASK_RANGE,
    attention_health,
    attention_health_on_images,
    channel_weight_spread,
    dead_channel_attention,
    evaluate_model,
    flat_spatial_mask,
    spatial_mask_range,
)
from cbam.models import cbam_smallnet
from cbam.trace import trace_all

SHIPPED_CBAM = [card for card in zoo.model_cards() if card.weights_path is not None and card.cbam_options is not None]
HELD_OUT_SHAPES = 200


def _alternating(centre: float, deviation: float, channels: int = 4) -> torch.Tensor:
    """Channel weights centre ± deviation, alternating: their population standard deviation is ``deviation``."""
    signs = torch.tensor([1.0, -1.0]).repeat(channels // 2)
    return centre + deviation * signs


def test_channel_attention_is_dead_just_below_the_threshold_and_alive_just_above():
    weights = torch.stack([_alternating(0.5, 0.9 * DEAD_CHANNEL_STD), _alternating(0.5, 1.1 * DEAD_CHANNEL_STD)])
    # The population standard deviation: with 4 channels the sample one (÷ 3) of the first row would
    # be 0.9 · √(4/3) ≈ 1.04 times the threshold, and the row would wrongly count as alive.
    assert channel_weight_spread(weights).tolist() == pytest.approx([0.9 * DEAD_CHANNEL_STD, 1.1 * DEAD_CHANNEL_STD])
    assert dead_channel_attention(weights).tolist() == [True, False]
    assert DEAD_CHANNEL_STD == 0.01


def test_channel_spread_is_over_the_channels_of_each_image_not_over_the_batch():
    # Each image's weights are all equal (dead), but they differ from image to image.
    weights = torch.tensor([[0.5] * 8, [0.9] * 8, [0.1] * 8])
    assert dead_channel_attention(weights).tolist() == [True, True, True]
    assert dead_channel_attention(weights[:, :, None, None]).tolist() == [True, True, True]  # (B, C, 1, 1)
    lively = torch.linspace(0.1, 0.9, 8).expand(3, 8)  # the same spread weights in every image
    assert dead_channel_attention(lively).tolist() == [False, False, False]
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        dead_channel_attention(torch.rand(2, 8, 3, 3))


def test_mask_is_flat_just_below_the_threshold_and_not_just_above():
    masks = torch.full((3, 1, 12, 12), 0.7)
    masks[0, 0, 5, 7] += 0.9 * FLAT_MASK_RANGE  # one bright position, a little too faint
    masks[1, 0, 5, 7] += 1.1 * FLAT_MASK_RANGE
    masks[2, 0, 0, :] -= 1.1 * FLAT_MASK_RANGE  # a darker top row is a range too
    assert spatial_mask_range(masks).tolist() == pytest.approx([0.9 * FLAT_MASK_RANGE, 1.1 * FLAT_MASK_RANGE,
                                                                1.1 * FLAT_MASK_RANGE])
    assert flat_spatial_mask(masks).tolist() == [True, False, False]
    assert FLAT_MASK_RANGE == 0.05


def test_mask_range_is_within_each_image_not_across_the_batch():
    # Constant masks at different levels: each is flat, though the batch spans 0.1 to 0.9.
    masks = torch.tensor([0.1, 0.5, 0.9])[:, None, None, None].expand(3, 1, 6, 6)
    assert flat_spatial_mask(masks).tolist() == [True, True, True]
    assert flat_spatial_mask(masks[:, 0]).tolist() == [True, True, True]  # (B, h, w) as well


def test_attention_health_of_a_block_with_silent_mlp_and_blank_kernel():
    torch.manual_seed(0)
    block = CBAM.paper(16, reduction_ratio=4).eval()
    x = torch.rand(2, 16, 10, 10)  # a ReLU's output: non-negative
    health = attention_health(trace(block, x))
    assert health["dead_channel"].tolist() == [False, False] and health["flat_mask"].tolist() == [False, False]
    assert health["channel_std"].shape == (2,) and health["mask_range"].shape == (2,)
    with torch.no_grad():
        block.channel_attention.fc1.weight.copy_(-block.channel_attention.fc1.weight.abs())  # every ReLU off
        block.spatial_attention.conv.weight.zero_()  # Ms = σ(0) = 0.5 everywhere
    t = trace(block, x)
    assert torch.all(t.channel_weights == 0.5)
    health = attention_health(t)
    assert health["dead_channel"].tolist() == [True, True] and health["flat_mask"].tolist() == [True, True]
    channel_only = attention_health(trace(CBAM(16, spatial=False), x))
    assert channel_only["mask_range"] is None and channel_only["flat_mask"] is None


def test_evaluate_reports_the_share_of_dead_and_flat_images_per_block():
    torch.manual_seed(0)
    model = cbam_smallnet(len(data.CLASS_NAMES), reduction_ratio=4, head_norm=True).eval()
    with torch.no_grad():
        first = model.stages[0].cbam
        first.channel_attention.fc1.weight.copy_(-first.channel_attention.fc1.weight.abs())
        model.stages[2].cbam.spatial_attention.conv.weight.zero_()
    result = evaluate_model(model, samples=20, batch_size=8)
    blocks = result["attention"]
    assert blocks["stages.0.cbam"]["dead_channel_share"] == 1.0
    assert blocks["stages.2.cbam"]["flat_mask_share"] == 1.0
    # The shares are those of attention_health on the same images.
    images, _, _ = data.make_batch(20, data.EVAL_SEED)
    with torch.no_grad():
        _, traces = trace_all(model, images)
    for block, t in traces.items():
        health = attention_health(t)
        assert blocks[block]["dead_channel_share"] == pytest.approx(health["dead_channel"].float().mean().item())
        assert blocks[block]["flat_mask_share"] == pytest.approx(health["flat_mask"].float().mean().item())


def test_attention_health_on_images_names_the_images_that_kill_a_block():
    torch.manual_seed(0)
    block_model = cbam_smallnet(6, reduction_ratio=4).eval()
    inputs = {"noise": torch.randn(1, 3, 64, 64), "grey": torch.zeros(1, 3, 64, 64)}
    with torch.no_grad():
        block_model.stages[1].cbam.spatial_attention.conv.weight.zero_()
    found = attention_health_on_images(block_model, inputs)
    assert list(found) == [f"stages.{i}.cbam" for i in range(4)]
    assert found["stages.1.cbam"]["flat_mask"] == ["noise", "grey"]
    assert found["stages.1.cbam"]["min_mask_range"] == 0.0


def test_unseen_images_are_rgb_and_the_same_every_time():
    first, again = samples.unseen_images(), samples.unseen_images()
    assert len(first) >= 4
    bundled = {s.file for s in samples.sample_images()}
    for name, picture in first.items():
        assert picture.mode == "RGB" and min(picture.size) >= 96 and name not in bundled
        assert picture.tobytes() == again[name].tobytes()
    inputs = samples.probe_inputs(96, data.MEAN, data.STD)
    assert set(inputs) == bundled | set(first)
    assert all(x.shape == (1, 3, 96, 96) for x in inputs.values())


@pytest.mark.parametrize("card", SHIPPED_CBAM, ids=lambda c: c.name)
def test_no_shipped_block_is_dead_or_flat_on_samples_other_images_or_held_out_shapes(card):
    model, _ = zoo.load_model(card.name)
    inputs = samples.probe_inputs(card.input_size, card.mean, card.std)
    shapes, _, _ = data.make_batch(HELD_OUT_SHAPES, data.EVAL_SEED + 1, card.input_size)  # never trained on
    inputs.update({f"held-out shape {i}": x[None] for i, x in enumerate(shapes)})
    found = attention_health_on_images(model, inputs)
    assert len(found) == 4
    problems = {block: {k: v for k, v in health.items() if k in ("dead_channel", "flat_mask") and v}
                for block, health in found.items()}
    assert not any(problems.values()), f"{card.name}: {problems}"
