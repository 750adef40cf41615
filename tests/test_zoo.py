"""The zoo: every shipped model loads with its SHA-256 checked, tampering is refused, the demo works."""

import json
import shutil

import pytest
import torch

from cbam import data, zoo
from cbam.metrics import evaluate_model

TRAINED = [card for card in zoo.model_cards() if card.weights_path is not None]  # the shipped ones


def test_cards_order_and_untrained_entries_last():
    cards = zoo.model_cards()
    names = [c.name for c in cards]
    assert names[0] == "demo" and "baseline" in names
    assert names[-2:] == ["untrained-smallnet", "untrained-resnet50"]
    assert all(c.trained for c in cards[:-2])
    assert names[-3] == zoo.IMAGENET_MODEL and cards[-3].weights_path is None  # fetched, not shipped
    for card in cards[-2:]:
        assert not card.trained and "untrained" in card.title
    with pytest.raises(zoo.UnknownModelError):
        zoo.get_card("no-such-model")


def test_shipped_weights_are_small():
    total = sum(card.weights_path.stat().st_size for card in TRAINED)
    assert total <= 20 * 1024 * 1024


@pytest.mark.parametrize("card", TRAINED, ids=lambda c: c.name)
def test_every_shipped_model_loads_with_its_checksum(card):
    assert zoo.sha256_of(card.weights_path) == card.sha256
    model, loaded_card = zoo.load_model(card.name)
    assert loaded_card is card or loaded_card == card
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())  # float16 storage, upcast on load
    assert model(torch.zeros(1, 3, card.input_size, card.input_size)).shape == (1, len(card.class_names))
    assert card.metrics["accuracy"] > 0.5 and "pointing_game" in card.metrics
    meta = card.metadata
    assert meta["config"]["seed"] == 0 and meta["training"]["seconds"] > 0
    assert (card.cbam_options is None) == (card.name == "baseline")


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    for name in ("demo.pt", "demo.json"):
        shutil.copyfile(zoo.MODELS_DIR / name, tmp_path / name)
    weights = tmp_path / "demo.pt"
    content = bytearray(weights.read_bytes())
    content[-100] ^= 0xFF  # flip one byte
    weights.write_bytes(bytes(content))
    monkeypatch.setattr(zoo, "MODELS_DIR", tmp_path)
    with pytest.raises(zoo.WeightsIntegrityError, match="SHA-256"):
        zoo.load_model("demo")
    weights.unlink()
    with pytest.raises(zoo.WeightsIntegrityError, match="missing"):
        zoo.load_model("demo")


def test_demo_is_accurate_on_held_out_images():
    model, card = zoo.load_model("demo")
    result = evaluate_model(model, samples=200, seed=data.EVAL_SEED + 7919, image_size=card.input_size)
    assert result["accuracy"] >= 0.95
    # Its attention is about the target: the last block's mask peaks on it in most images (it is
    # 12 × 12: the demo's last stage has stride 1) and puts more of its mass on it than a map blind
    # to it would (the target's area); every block's attention is alive on every one of these images.
    assert result["attention"]["stages.3.cbam"]["map_size"] == [12, 12]
    assert result["attention"]["stages.3.cbam"]["pointing_game"] >= 0.75
    assert result["attention"]["stages.3.cbam"]["mass_on_target"] > 1.2 * result["target_area"]
    for block, scores in result["attention"].items():
        assert scores["dead_channel_share"] == 0 and scores["flat_mask_share"] == 0, block


def test_find_variant():
    assert zoo.find_variant("demo", 16, 7) == "demo"  # the base itself
    # The ablation variants keep the strided last stage; the demo's has stride 1: another network,
    # so none of them is the demo with r or k changed.
    assert zoo.get_card("demo").config["last_stride"] == 1
    assert zoo.find_variant("demo", 4, 7) is None
    assert zoo.find_variant("demo", 16, 3) is None
    assert zoo.find_variant("reference", 4, 7) == "ratio-4"
    assert zoo.find_variant("reference", 8, 7) == "ratio-8"
    assert zoo.find_variant("reference", 16, 3) == "kernel-3"
    assert zoo.find_variant("ratio-4", 16, 7) == "reference"
    assert zoo.find_variant("ratio-4", 8, 7) == "ratio-8"
    # No such model: an untrained r, a combination nobody trained, other bases.
    assert zoo.find_variant("reference", 5, 7) is None
    assert zoo.find_variant("reference", 4, 3) is None
    assert zoo.find_variant("pool-avg", 4, 7) is None
    assert zoo.find_variant("baseline", 16, 7) is None
    assert zoo.find_variant("untrained-smallnet", 16, 7) is None
    # Whatever it returns differs from the base in r and k only, and in how it was trained: the 3×3
    # kernel learns faster than the 7×7 one (cbam.train.VARIANTS).
    reference = zoo.get_card("reference").config
    for r, k in [(4, 7), (8, 7), (16, 3)]:
        found = zoo.get_card(zoo.find_variant("reference", r, k)).config
        differing = {key for key in reference if reference[key] != found[key]}
        assert differing <= {"reduction_ratio", "kernel_size", "preset", "spatial_lr_scale"}


def test_ablation_summary_is_shipped():
    summary = json.loads((zoo.MODELS_DIR / "ablations.json").read_text())
    rows = {row["name"]: row for row in summary["rows"]}
    assert {"reference", "baseline", "pool-avg", "pool-max", "kernel-3", "ratio-4", "ratio-8"} <= set(rows)
    for row in rows.values():
        assert len(row["seeds"]) >= 3
        assert 0 <= row["accuracy"]["mean"] <= 1 and row["accuracy"]["std"] >= 0
