"""Accuracy, pointing game and mass on target on hand-made maps and masks."""

import pytest
import torch

from cbam.metrics import accuracy, attention_scores, mass_on_target, pointing_game, pointing_hits
from cbam.models import cbam_smallnet


def _target(size=96, top=40, left=56, side=20):
    mask = torch.zeros(1, size, size, dtype=torch.bool)
    mask[0, top:top + side, left:left + side] = True
    return mask


def test_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_pointing_game_hit_and_miss():
    target = _target()  # rows 40..59, columns 56..75
    inside = torch.zeros(1, 6, 6)
    inside[0, 2, 4] = 1.0  # cell centre pixel: (2.5·16, 4.5·16) = (40, 72): on the target
    outside = torch.zeros(1, 6, 6)
    outside[0, 0, 0] = 1.0  # centre pixel (8, 8): far from it
    assert pointing_game(inside, target) == 1.0
    assert pointing_game(outside, target) == 0.0
    assert pointing_game(inside[:, None], target) == 1.0  # (B, 1, h, w) maps work too


def test_pointing_game_is_a_share_and_tolerance_widens_hits():
    target = _target().expand(2, -1, -1)
    maps = torch.zeros(2, 6, 6)
    maps[0, 2, 4] = 1.0  # hit
    maps[1, 1, 4] = 1.0  # centre pixel (24, 72): 16 px above the target's top row (40)
    assert pointing_game(maps, target) == 0.5
    assert pointing_hits(maps, target, tolerance=15).tolist() == [True, False]
    assert pointing_hits(maps, target, tolerance=16).tolist() == [True, True]


def test_pointing_game_at_full_resolution():
    target = _target()
    maps = torch.zeros(1, 96, 96)
    maps[0, 45, 60] = 1.0
    assert pointing_game(maps, target) == 1.0
    maps[0, 45, 60], maps[0, 45, 10] = 0.0, 1.0
    assert pointing_game(maps, target) == 0.0


def test_mass_on_target():
    target = _target(size=96, top=0, left=0, side=48)  # the top-left quarter
    on_it = torch.zeros(1, 2, 2)
    on_it[0, 0, 0] = 1.0
    assert mass_on_target(on_it, target).item() > 0.7
    off_it = torch.zeros(1, 2, 2)
    off_it[0, 1, 1] = 1.0
    assert mass_on_target(off_it, target).item() < 0.1
    assert mass_on_target(torch.ones(1, 6, 6), target).item() == 0.0  # a flat map has no mass
    full = torch.rand(1, 96, 96)
    expected = ((full - full.min()) * target).sum() / (full - full.min()).sum()
    assert mass_on_target(full, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_attention_scores_cbam_and_baseline():
    images = torch.randn(2, 3, 64, 64)
    labels = torch.tensor([0, 1])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[:, 20:40, 20:40] = True
    torch.manual_seed(0)
    logits, scores = attention_scores(cbam_smallnet(6).eval(), images, labels, masks)
    assert logits.shape == (2, 6)
    assert list(scores) == [f"stages.{i}.cbam" for i in range(4)]
    assert scores["stages.3.cbam"]["map_size"] == [4, 4]
    _, scores = attention_scores(cbam_smallnet(6, attention=False).eval(), images, labels, masks)
    assert list(scores) == ["grad_cam:stages.3"]
    assert 0 <= scores["grad_cam:stages.3"]["pointing_game"] <= 1
