"""Grad-CAM: shapes, the class it explains, and no hooks left behind."""

import torch
from torch import nn

from cbam.gradcam import default_target_layer, grad_cam
from cbam.models import cbam_smallnet


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
