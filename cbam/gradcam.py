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

__all__ = ["grad_cam", "default_target_layer", "target_layer", "KNOWN_LAYERS"]


KNOWN_LAYERS = ("stages", "layer4")
"""Attributes that name a network's last stage: ``SmallCBAMNet.stages`` (its last element) and a ResNet's ``layer4``."""


def _known_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    for name in KNOWN_LAYERS:
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Module):
            if name == "stages" and isinstance(layer, nn.Sequential) and len(layer):
                return f"{name}.{len(layer) - 1}", layer[-1]
            return name, layer
    return None


def _feature_maps(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """The modules of ``model`` (not itself) whose output is a (B, K, h, w) tensor, in the order their
    forward passes finished during one forward pass of ``x``, with the shape of that output."""
    caller, finished = threading.get_ident(), []

    def record(name: str, module: nn.Module, _inputs, output) -> None:
        if threading.get_ident() == caller and isinstance(output, torch.Tensor) and output.dim() == 4:
            finished.append((name, module, tuple(output.shape)))

    handles = [m.register_forward_hook(lambda mod, i, o, name=name: record(name, mod, i, o))
               for name, m in model.named_modules() if m is not model]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return finished


def target_layer(model: nn.Module, x: torch.Tensor | None = None) -> tuple[str, nn.Module]:
    """The layer Grad-CAM looks at, and its qualified name.

    A ``SmallCBAMNet``'s last stage (``stages[-1]``) and a ResNet's ``layer4`` (``KNOWN_LAYERS``).
    Any other network needs an input ``x``: it runs once, and the layer is the module that finished
    last among those whose output is a feature map (B, K, h, w) larger than 1×1, i.e. the last
    feature map before the classifier's pooling (for an ``nn.Sequential`` of stages, the last stage
    or block; a container whose last child gives that map wins over the child, with the same output).
    With ``x``, a known layer is used only if it gives such a map.

    Raises:
        ValueError: no known layer and no ``x``; or no module gives a feature map larger than 1×1
            (the message says what was looked for).
    """
    known = _known_layer(model)
    if x is None:
        if known is None:
            raise ValueError(f"no default Grad-CAM layer for {type(model).__name__}; pass target_layer or an input x")
        return known
    maps = [(name, module) for name, module, shape in _feature_maps(model, x) if shape[-2] * shape[-1] > 1]
    if known is not None and any(module is known[1] for _, module in maps):
        return known
    if not maps:
        raise ValueError(
            f"Grad-CAM needs a layer whose output is a feature map (B, K, h, w) larger than 1×1, and no module of "
            f"{type(model).__name__} gives one on a {'×'.join(map(str, x.shape))} input"
        )
    return maps[-1]


def default_target_layer(model: nn.Module, x: torch.Tensor | None = None) -> nn.Module:
    """The layer Grad-CAM looks at by default: the last stage of a ``SmallCBAMNet`` (``stages[-1]``),
    ``layer4`` of a ResNet, or, for any other network given an input ``x``, its last feature map
    before the classifier (see ``target_layer``)."""
    return target_layer(model, x)[1]


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
            ``default_target_layer(model, x)``.
        class_idx: the class to explain: an int for all images, a (B,) tensor of one class per
            image, or None for each image's predicted class.

    Returns:
        (B, h, w) non-negative maps at the layer's resolution (not normalised, not upsampled).
        The hooks are removed before returning, even on error; the model's parameters get no
        gradients (``.grad`` is left untouched).
    """
    target_layer = default_target_layer(model, x) if target_layer is None else target_layer
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
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                raise ValueError(f"Grad-CAM needs class scores of shape (B, classes); the model returned "
                                 f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
            if class_idx is None:
                classes = logits.argmax(dim=1)
            elif isinstance(class_idx, int):
                classes = torch.full((len(logits),), class_idx, device=logits.device)
            else:
                classes = class_idx.to(logits.device)
            score = logits.gather(1, classes.view(-1, 1)).sum()
            activation = captured["activation"]
            (gradient,) = torch.autograd.grad(score, activation, allow_unused=True)
            if gradient is None:
                raise ValueError("the class score does not depend on the target layer's output")
    finally:
        handle.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # α_k
    return torch.relu((weights * activation).sum(dim=1)).detach()
