"""cbam.explore: what the app's pages are built from."""

import csv
import io

import numpy as np
import pytest
import torch

from cbam import CBAM, cbam_blocks, explore, images, samples, trace
from cbam.models import cbam_smallnet


def trained_like(block: CBAM, seed: int = 0) -> CBAM:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return block.eval()


def test_block_with_its_own_settings_is_the_block_itself():
    block = trained_like(CBAM.authors(32, 8, 7))
    choice = explore.block_with(block, 8, 7)
    assert choice.block is block and choice.is_original and choice.notes == []
    assert explore.block_with(block).block is block


def test_block_with_another_kernel_keeps_the_trained_mlp():
    block = trained_like(CBAM.authors(32, 8, 7))
    choice = explore.block_with(block, 8, 3)
    assert choice.block is not block and choice.trained_mlp and not choice.trained_conv
    assert choice.block.kernel_size == 3 and "freshly initialised" in choice.notes[0]
    assert torch.equal(choice.block.channel_attention.fc1.weight, block.channel_attention.fc1.weight)
    assert torch.equal(choice.block.spatial_attention.bn.running_var, block.spatial_attention.bn.running_var)
    x = torch.randn(1, 32, 6, 6)
    assert torch.equal(trace(choice.block, x).channel_weights, trace(block, x).channel_weights)
    # the fresh part is seeded: the same settings give the same numbers
    again = explore.block_with(block, 8, 3)
    assert torch.equal(again.block.spatial_attention.conv.weight, choice.block.spatial_attention.conv.weight)
    assert not torch.equal(explore.block_with(block, 8, 3, seed=1).block.spatial_attention.conv.weight,
                           choice.block.spatial_attention.conv.weight)


def test_block_with_another_ratio_keeps_the_trained_convolution():
    block = trained_like(CBAM.paper(32, 8, 7))
    choice = explore.block_with(block, 2, 7)
    assert choice.block.channel_attention.hidden_channels == 16 and not choice.trained_mlp and choice.trained_conv
    assert torch.equal(choice.block.spatial_attention.conv.weight, block.spatial_attention.conv.weight)
    assert choice.block.channel_attention.fc1.bias is None  # same kind of block
    # a ratio giving the same hidden width (32 // 9 == 32 // 10 == 3) keeps the MLP
    assert explore.block_with(trained_like(CBAM(32, 10)), 9, 7).trained_mlp


def test_block_with_on_untrained_block_never_claims_training():
    block = CBAM(16, 4)
    assert not explore.block_with(block, 4, 7, block_is_trained=False).trained_mlp


def test_sensible_ratios_and_kernel_sizes():
    assert explore.sensible_ratios(16) == [1, 2, 4, 8, 16]
    assert explore.sensible_ratios(1) == [1]
    assert all(16 // r >= 1 for r in explore.sensible_ratios(16))
    assert explore.kernel_sizes(11) == [1, 3, 5, 7, 9, 11]


def test_ranked_channels():
    weights = torch.tensor([[0.1, 0.9, 0.5, 0.7]])
    assert explore.ranked_channels(weights, 2) == ([1, 3], [0, 2])
    assert explore.ranked_channels(weights, 10)[0] == [1, 3, 2, 0]


def test_channel_computation_matches_the_trace():
    block = trained_like(CBAM.authors(16, 4))
    t = trace(block, torch.randn(2, 16, 5, 5))
    n = explore.channel_computation(block, t, 3, sample=1)
    assert n["channel_logit"] == pytest.approx(n["mlp_avg"] + n["mlp_max"], abs=1e-5)
    assert n["channel_weight"] == pytest.approx(float(torch.sigmoid(torch.tensor(n["channel_logit"]))), abs=1e-6)
    assert n["avg_pool"] == pytest.approx(float(t.x[1, 3].mean()), abs=1e-6)


def test_variants_share_weights_and_differ_only_in_structure():
    block = trained_like(CBAM.authors(24, 4, 5))
    variants = explore.variants_of(block)
    x = torch.randn(1, 24, 7, 7)
    # the authors' variant *is* this block
    torch.testing.assert_close(variants["authors"](x), block(x))
    # paper and blog are the same structure (bias-free, [avg; max], no BatchNorm) with the same weights
    torch.testing.assert_close(variants["paper"](x), variants["blog"](x))
    assert variants["blog"].kernel_size == 5  # the block's k, not the blog's default 3
    # the swapped kernel planes: with the BatchNorm and the bias neutral, paper == authors
    neutral = trained_like(CBAM.authors(24, 4, 5))
    with torch.no_grad():
        neutral.channel_attention.fc1.bias.zero_()
        neutral.channel_attention.fc2.bias.zero_()
    neutral.spatial_attention.bn.reset_parameters()
    neutral.spatial_attention.bn.reset_running_stats()
    v = explore.variants_of(neutral)
    torch.testing.assert_close(v["paper"](x), neutral(x), rtol=1e-5, atol=1e-5)


def test_arrangements_share_weights():
    block = trained_like(CBAM.paper(16, 4))
    blocks = explore.arrangements_of(block)
    x = torch.randn(1, 16, 6, 6)
    torch.testing.assert_close(blocks["channel-spatial"](x), block(x))
    outputs = explore.outputs_of(blocks, x)
    assert set(outputs) == {"channel-spatial", "spatial-channel", "parallel"}
    assert not torch.allclose(outputs["channel-spatial"], outputs["parallel"])


def test_run_network_and_timed_trace():
    torch.manual_seed(0)
    model = cbam_smallnet(5).eval()
    x = torch.randn(1, 3, 64, 64)
    run = explore.run_network(model, x)
    assert run.logits.shape == (1, 5) and len(run.traces) == 4 and run.seconds > 0 and run.device == "cpu"
    assert float(run.probabilities.sum()) == pytest.approx(1.0, abs=1e-5)
    name, block = cbam_blocks(model)[-1]
    timed = explore.timed_trace(block, run.traces[name].x, "cpu", repeats=2)
    assert torch.equal(timed.trace.out, run.traces[name].out)
    assert set(timed.milliseconds) == {"whole block", "channel attention", "spatial attention"}
    assert all(ms >= 0 for ms in timed.milliseconds.values())
    assert not block.channel_attention._forward_hooks and not block.channel_attention._forward_pre_hooks


def test_available_devices_and_feature_stride():
    devices = explore.available_devices()
    assert devices[0] == "cpu" and ("cuda" in devices) == torch.cuda.is_available()
    assert explore.feature_stride(224, 14) == 16


def test_relative_change_and_csv():
    a = torch.ones(2, 2)
    assert explore.relative_change(a, a * 1.5) == pytest.approx(0.5)
    assert explore.relative_change(torch.zeros(2), torch.ones(2)) == 0.0
    text = explore.rows_to_csv([{"block": "a", "C": 4}, {"block": "b", "C": 8, "Ms mean": 0.5}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1] == {"block": "b", "C": "8", "Ms mean": "0.5"} and rows[0]["Ms mean"] == ""


def test_every_sample_image_loads_and_has_a_licence():
    gallery = samples.sample_images()
    assert len(gallery) >= 6
    assert {s.kind for s in gallery} == {"task", "photo", "synthetic"}
    licences = (samples.SAMPLES_DIR / "LICENSES.md").read_text()
    for sample in gallery:
        image = images.load_image(sample.path)
        assert min(image.size) >= 64 and sample.licence and sample.credit
        assert sample.file in licences


def test_trace_npz_holds_every_field():
    block = trained_like(CBAM.paper(8, 2))
    t = trace(block, torch.randn(1, 8, 5, 5))
    archive = np.load(io.BytesIO(explore.trace_npz(t)))
    assert {"x", "avg_pool", "mlp_hidden_max", "channel_weights", "spatial_mask", "out"} <= set(archive.files)
    assert "x_spatial" not in archive.files
    np.testing.assert_array_equal(archive["out"], t.out.detach().numpy())


def test_silent_mlp_detects_an_mlp_whose_hidden_units_are_all_off():
    block = CBAM.paper(16, 4).eval()
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        block.channel_attention.fc1.weight.fill_(-1.0)  # every hidden unit negative for these inputs...
        x = x.abs()  # ...since the pooled descriptors are then positive
    t = trace(block, x)
    assert explore.silent_mlp(t)
    torch.testing.assert_close(t.channel_weights, torch.full_like(t.channel_weights, 0.5))
    with torch.no_grad():
        block.channel_attention.fc1.weight.fill_(1.0)
    assert not explore.silent_mlp(trace(block, x))


def test_a_network_run_can_be_traced_again_with_autograd_on():
    """What a notebook does after run_network: trace one block on the input it received."""
    model = cbam_smallnet(3).eval()
    run = explore.run_network(model, torch.randn(1, 3, 64, 64))
    block = model.get_submodule("stages.1.cbam")
    t = trace(block, run.traces["stages.1.cbam"].x)
    torch.testing.assert_close(t.out, run.traces["stages.1.cbam"].out)


def test_timed_trace_measures_the_steps_without_touching_the_shared_block():
    """Step times come from the trace record (the modules measure themselves while traced): nothing is
    attached to the block, so sessions may time one shared block from several threads at once."""
    import threading

    torch.manual_seed(0)
    block = CBAM(32, 4, 5).eval()
    before = {name: dict(m.__dict__) for name, m in block.named_modules()}
    x = torch.randn(1, 32, 16, 16)
    results, errors = [None] * 4, []

    def work(i: int) -> None:
        try:
            results[i] = explore.timed_trace(block, x, "cpu", repeats=5)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for timed in results:
        assert list(timed.milliseconds) == ["channel attention", "spatial attention", "whole block"]
        assert all(ms > 0 for ms in timed.milliseconds.values())
        assert timed.milliseconds["whole block"] >= timed.milliseconds["spatial attention"]
        assert torch.equal(timed.trace.out, results[0].trace.out)
    assert {name: dict(m.__dict__) for name, m in block.named_modules()}.keys() == before.keys()
    for name, module in block.named_modules():
        assert not module._forward_hooks and not module._forward_pre_hooks, name
