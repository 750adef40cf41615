"""Grad-CAM: shapes, the class it explains, and no hooks left behind."""

import pytest
import torch
from torch import nn

from cbam.explore import grad_cam_view
from cbam.gradcam import default_target_layer, grad_cam, target_layer
from cbam.models import cbam_resnet18, cbam_smallnet


def _net():
    torch.manual_seed(0)
    return cbam_smallnet(num_classes=6, attention=False).eval()


def test_shape_and_sign():
    model = _net()
    maps = grad_cam(model, torch.randn(3, 3, 96, 96))
    assert maps.shape == (3, 6, 6)  # the last stage of a 96 px input is 6 × 6
    assert (maps >= 0).all() and not maps.requires_grad


def test_hooks_removed_and_parameters_untouched():
    model = _net()
    layer = default_target_layer(model)
    assert layer is model.stages[-1]
    grad_cam(model, torch.randn(2, 3, 64, 64), layer, class_idx=1)
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_hooks_removed_even_on_error():
    model = _net()
    stray = nn.Conv2d(1, 1, 1)  # not part of the model: it never runs
    try:
        grad_cam(model, torch.randn(1, 3, 64, 64), stray)
    except ValueError:
        pass
    assert not stray._forward_hooks


def test_class_index_forms_agree_and_matter():
    model = _net()
    x = torch.randn(2, 3, 64, 64)
    as_int = grad_cam(model, x, class_idx=2)
    as_tensor = grad_cam(model, x, class_idx=torch.tensor([2, 2]))
    assert torch.allclose(as_int, as_tensor)
    predicted = model(x).argmax(1)
    assert torch.allclose(grad_cam(model, x), grad_cam(model, x, class_idx=predicted))
    other = grad_cam(model, x, class_idx=(predicted + 1) % 6)
    assert not torch.allclose(grad_cam(model, x), other)


def test_matches_the_definition():
    model = _net()
    x = torch.randn(1, 3, 64, 64)
    layer = model.stages[-1]
    activation = model.stages(model.stem(x)).detach().requires_grad_(True)
    score = model.fc(torch.flatten(model.pool(activation), 1))[0, 3]
    (gradient,) = torch.autograd.grad(score, activation)
    expected = torch.relu((gradient.mean(dim=(2, 3), keepdim=True) * activation).sum(1))
    assert torch.allclose(grad_cam(model, x, layer, class_idx=3), expected.detach(), atol=1e-6)


def test_any_network_gets_its_last_feature_map_before_the_classifier():
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1))
    model = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.randn(1, 3, 32, 32)
    name, layer = target_layer(model, x)
    assert (name, layer) == ("0", features)  # the container, not its last conv: the same map, finished last
    assert grad_cam(model, x).shape == (1, 16, 16)
    view = grad_cam_view(model, x, class_idx=2)
    assert view.layer == "0" and view.size == (16, 16) and view.class_idx == 2 and view.probabilities.shape == (3,)
    assert not any(m._forward_hooks for m in model.modules())


def test_a_resnet_whose_last_stage_is_1x1_falls_back_to_the_stage_before():
    model = cbam_resnet18(num_classes=4).eval()
    assert target_layer(model) == ("layer4", model.layer4)
    assert target_layer(model, torch.randn(1, 3, 64, 64)) == ("layer4", model.layer4)  # 2×2
    assert target_layer(model, torch.randn(1, 3, 32, 32)) == ("layer3", model.layer3)  # layer4 is 1×1


def test_grad_cam_says_why_it_cannot():
    pooled = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match="larger than 1×1"):
        grad_cam_view(pooled, torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="class scores"):
        grad_cam_view(nn.Sequential(nn.Conv2d(3, 4, 3)).eval(), torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="pass target_layer or an input"):
        default_target_layer(pooled)
