"""Grad-CAM (Selvaraju et al., ICCV 2017, arXiv 1610.02391): where a network without CBAM looks.

For a convolutional layer with activations A (B, K, h, w) and the score y_c of class c::

    α_k = mean over positions of ∂y_c / ∂A_k          (one weight per channel)
    L_c = ReLU( Σ_k α_k A_k )                          (a (B, h, w) map)

CBAM networks show their spatial attention directly; for the no-attention baseline Grad-CAM is
the usual stand-in, so ``cbam.metrics`` scores both with the same pointing game.
"""

from __future__ import annotations

import threading

import torch
from torch import nn

__all__ = ["grad_cam", "default_target_layer"]


def default_target_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM looks at by default: the last stage of a ``SmallCBAMNet`` (``stages[-1]``),
    or ``layer4`` of a ResNet."""
    for name in ("stages", "layer4"):
        layer = getattr(model, name, None)
        if layer is not None:
            return layer[-1] if isinstance(layer, nn.Sequential) and name == "stages" else layer
    raise ValueError(f"no default Grad-CAM layer for {type(model).__name__}; pass target_layer")


def grad_cam(
    model: nn.Module,
    x: torch.Tensor,
    target_layer: nn.Module | None = None,
    class_idx: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Grad-CAM maps of ``model`` at ``target_layer`` for the images ``x``.

    Args:
        model: any classifier returning logits (B, num_classes). Its mode is left as it is (call
            ``model.eval()`` first for BatchNorm networks).
        x: images (B, 3, H, W).
        target_layer: a module of ``model`` whose output is (B, K, h, w); default
            ``default_target_layer(model)``.
        class_idx: the class to explain: an int for all images, a (B,) tensor of one class per
            image, or None for each image's predicted class.

    Returns:
        (B, h, w) non-negative maps at the layer's resolution (not normalised, not upsampled).
        The hooks are removed before returning, even on error; the model's parameters get no
        gradients (``.grad`` is left untouched).
    """
    target_layer = default_target_layer(model) if target_layer is None else target_layer
    captured: dict[str, torch.Tensor] = {}

    caller = threading.get_ident()

    def keep_activation(_module, _inputs, output):
        # The model may be shared with other threads (the app's sessions): a hook sees their
        # forward passes too, so keep only this call's activation.
        if threading.get_ident() == caller:
            captured["activation"] = output

    handle = target_layer.register_forward_hook(keep_activation)
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # so the graph reaches the layer even if weights are frozen
            logits = model(x)
            if "activation" not in captured:
                raise ValueError("target_layer did not run in the forward pass")
            if class_idx is None:
                classes = logits.argmax(dim=1)
            elif isinstance(class_idx, int):
                classes = torch.full((len(logits),), class_idx, device=logits.device)
            else:
                classes = class_idx.to(logits.device)
            score = logits.gather(1, classes.view(-1, 1)).sum()
            activation = captured["activation"]
            (gradient,) = torch.autograd.grad(score, activation)
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # α_k
    return torch.relu((weights * activation).sum(dim=1)).detach()
