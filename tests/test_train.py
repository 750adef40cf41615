"""Training: a tiny run works, the loss goes down, should_stop stops, runs are reproducible."""

import logging

import pytest
import torch
import torch.nn.functional as F

from cbam import cbam_blocks, data
from cbam.train import PRESETS, VARIANTS, TrainConfig, build_model, train, train_and_save

TINY = PRESETS["tiny"]


def test_one_tiny_epoch_calls_on_epoch_with_the_model(tmp_path):
    calls = []

    def on_epoch(epoch, loss, accuracy, model):
        assert not model.training  # eval mode while the callback draws masks
        calls.append((epoch, loss, accuracy))

    model, history = train(TINY, on_epoch=on_epoch, progress=False, log_file=tmp_path / "train.log")
    assert [c[0] for c in calls] == [1]
    assert history.steps == TINY.steps_per_epoch and not history.stopped_early
    assert history.epochs[0]["loss"] == calls[0][1] and 0 <= calls[0][2] <= 1
    assert not model.training
    assert "epoch 1/1" in (tmp_path / "train.log").read_text()


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    config = TINY.replace(batch_size=16)
    model = build_model(config)
    images, labels, _ = data.make_batch(16, seed=5, size=config.image_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_should_stop_stops_at_once():
    checks = []

    def should_stop():
        checks.append(1)
        return len(checks) > 2  # allow two steps, stop before the third

    _, history = train(TINY.replace(epochs=3, steps_per_epoch=4), should_stop=should_stop, progress=False)
    assert history.stopped_early and history.steps == 2
    assert len(history.epochs) == 1  # the partial first epoch is recorded


def test_same_seed_same_weights_and_different_seed_differs():
    a, _ = train(TINY, progress=False)
    b, _ = train(TINY, progress=False)
    c, _ = train(TINY.replace(seed=1), progress=False)
    for (name, wa), wb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert any(not torch.equal(wa, wc) for wa, wc in zip(a.state_dict().values(), c.state_dict().values()))


def test_training_leaves_global_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train(TINY.replace(num_threads=1), progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="held out"):
        train(TINY.replace(seed=data.HELDOUT_SEED_START), progress=False)
    config = PRESETS["pool-max"]
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.cbam_options()["pool_types"] == ["max"]
    assert PRESETS["baseline"].cbam_options() is None
    assert set(VARIANTS) <= set(PRESETS)


def test_train_and_save_writes_weights_metadata_and_log(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="cbam.train"):
        meta = train_and_save(TINY, tmp_path, name="tiny", eval_samples=8, progress=False)
    assert (tmp_path / "tiny.pt").is_file() and (tmp_path / "tiny.json").is_file()
    assert (tmp_path / "tiny.log").is_file()
    assert 0 <= meta["metrics"]["accuracy"] <= 1
    assert set(meta["metrics"]["attention"]) == {f"stages.{i}.cbam" for i in range(4)}
    assert meta["training"]["steps"] == TINY.total_steps
    assert any("held-out accuracy" in r.message for r in caplog.records)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_cuda():
    model, history = train(TINY.replace(device="cuda"), progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert history.steps == TINY.total_steps


def test_cuda_asked_for_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA"):
        train(TINY.replace(device="cuda"), progress=False)


def test_min_hidden_and_block_ratios_match_the_built_network():
    config = PRESETS["demo"]
    model = build_model(config)
    assert config.block_ratios() == [b.reduction_ratio for _, b in cbam_blocks(model)]
    assert min(b.channel_attention.hidden_channels for _, b in cbam_blocks(model)) >= config.min_hidden
    assert PRESETS["baseline"].block_ratios() is None
    # Cards written before these options existed load as they were trained: min_hidden 1, PyTorch's init.
    old = {k: v for k, v in config.to_dict().items() if k not in ("min_hidden", "mlp_init")}
    assert TrainConfig.from_dict(old).block_ratios() == [16, 16, 16, 16]
    assert TrainConfig.from_dict(old).mlp_init == "default"
    with pytest.raises(ValueError, match="mlp_init"):
        TINY.replace(mlp_init="positive").validate()
    with pytest.raises(ValueError, match="spatial_init"):
        TINY.replace(spatial_init="positive").validate()


def test_nonnegative_init_starts_every_hidden_unit_on_for_every_image():
    from cbam.trace import trace_all

    images, _, _ = data.make_batch(16, seed=3, size=TINY.image_size)
    torch.manual_seed(0)
    model = build_model(TINY.replace(mlp_init="nonnegative")).eval()
    with torch.no_grad():
        _, traces = trace_all(model, images)
    for name, t in traces.items():
        for hidden in (t.mlp_hidden_avg, t.mlp_hidden_max):
            assert (hidden > 0).all(), name
    torch.manual_seed(0)
    signed = build_model(TINY).eval()  # PyTorch's initialisation: the same weights up to sign
    for (_, a), (_, b) in zip(cbam_blocks(model), cbam_blocks(signed)):
        assert torch.equal(a.channel_attention.fc1.weight, b.channel_attention.fc1.weight.abs())
        assert (b.channel_attention.fc1.weight < 0).any()
        assert torch.equal(a.channel_attention.fc2.weight, b.channel_attention.fc2.weight)


def test_spatial_lr_scale_scales_only_the_spatial_convolutions():
    torch.manual_seed(0)
    untrained = build_model(TINY)
    # With the scale at 0 the spatial kernels keep their initial values; everything else learns.
    frozen, _ = train(TINY.replace(spatial_lr_scale=0.0), progress=False)
    for (name, before), after in zip(untrained.state_dict().items(), frozen.state_dict().values()):
        if ".spatial_attention." in name:
            assert torch.equal(before, after), name
    assert not torch.equal(untrained.stages[0].cbam.channel_attention.fc1.weight,
                           frozen.stages[0].cbam.channel_attention.fc1.weight)
    # A larger scale moves them further in the same number of steps.
    normal, _ = train(TINY, progress=False)
    fast, _ = train(TINY.replace(spatial_lr_scale=5.0), progress=False)
    for (_, start), (_, a), (_, b) in zip(cbam_blocks(untrained), cbam_blocks(normal), cbam_blocks(fast)):
        moved = (a.spatial_attention.conv.weight - start.spatial_attention.conv.weight).abs().mean()
        moved_fast = (b.spatial_attention.conv.weight - start.spatial_attention.conv.weight).abs().mean()
        assert moved_fast > 2 * moved


def test_spatial_weight_decay_applies_only_to_the_spatial_convolutions():
    from cbam.train import _param_groups

    model = build_model(TINY)
    spatial = {id(p) for _, block in cbam_blocks(model) for p in block.spatial_attention.parameters()}
    others, kernels = _param_groups(model, TINY.replace(spatial_weight_decay=1.0))
    assert {id(p) for p in kernels["params"]} == spatial and kernels["weight_decay"] == 1.0
    assert "weight_decay" not in others  # the optimiser's own: the recipe's weight_decay
    _, kernels = _param_groups(model, TINY)  # unset: the recipe's weight decay for the kernels too
    assert kernels["weight_decay"] == TINY.weight_decay
    assert PRESETS["pool-max"].spatial_weight_decay == 0.5 and PRESETS["reference"].spatial_weight_decay is None
    # The 3×3 kernel learns faster than the 7×7 ones, by 7 / 3 (∝ 1 / √fan-in); every 7×7 row keeps 5.
    assert PRESETS["kernel-3"].spatial_lr_scale == pytest.approx(5 * 7 / 3)
    assert {PRESETS[name].spatial_lr_scale for name in VARIANTS if PRESETS[name].kernel_size == 7} == {5.0}


def test_centre_surround_kernel_ignores_uniform_maps_and_favours_a_local_peak():
    from cbam import trace

    torch.manual_seed(0)
    model = build_model(PRESETS["demo"].replace(spatial_init="centre-surround"))
    for name, block in cbam_blocks(model):
        kernel = block.spatial_attention.conv.weight[0]  # (2, k, k): one kernel per pooled map
        centre = kernel.shape[-1] // 2
        assert torch.allclose(kernel.sum(dim=(1, 2)), torch.zeros(2), atol=1e-5), name
        surround = kernel.clone()
        surround[:, centre, centre] = 0
        assert (surround <= 0).all() and (kernel[:, centre, centre] > 0).all(), name
    block = model.stages[3].cbam.eval()
    uniform = torch.full((1, block.channels, 12, 12), 0.7)
    assert torch.allclose(trace(block.spatial_attention, uniform).spatial_mask[0, 0, 3:-3, 3:-3], torch.tensor(0.5))
    peak = uniform.clone()
    peak[0, :, 6, 6] = 2.0
    mask = trace(block.spatial_attention, peak).spatial_mask[0, 0]
    assert mask.argmax().item() == 6 * 12 + 6


@pytest.mark.parametrize("order", ["avg-max", "max-avg"])
def test_max_contrast_kernel_is_positive_on_the_max_map_and_cancels_on_uniform_maps(order):
    from cbam import CBAM, trace
    from cbam.train import _init_spatial_kernel

    torch.manual_seed(0)
    block = CBAM(8, spatial_pool_order=order).eval()
    _init_spatial_kernel(block.spatial_attention.conv.weight, "max-contrast", order)
    kernel = block.spatial_attention.conv.weight[0]
    maximum, average = (1, 0) if order == "avg-max" else (0, 1)
    assert (kernel[maximum] >= 0).all() and (kernel[average] <= 0).all()
    assert kernel.sum().abs() < 1e-5
    uniform = torch.full((1, 8, 9, 9), 0.6)  # every channel equal everywhere: max = mean
    interior = trace(block.spatial_attention, uniform).spatial_logits[0, 0, 3:-3, 3:-3]
    assert torch.allclose(interior, torch.zeros_like(interior), atol=1e-5)
