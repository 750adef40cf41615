"""Training: a tiny run works, the loss goes down, should_stop stops, runs are reproducible."""

import logging

import pytest
import torch
import torch.nn.functional as F

from cbam import data
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
