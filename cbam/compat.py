"""Weights from other CBAM implementations, converted to CBAM Lab's modules.

Four outside layouts are understood:

* the blog version's ``CBAM`` block (the project's seed): ``from_seed_state_dict``;
* the authors' CBAM-ResNet (github.com/Jongchan/attention-module, MODELS/model_resnet.py and
  MODELS/cbam.py): ``convert_state_dict(sd, "official")``;
* osmr's CBAM-ResNet in the ``pytorchcv`` package (pytorchcv/models/cbamresnet.py):
  ``convert_state_dict(sd, "pytorchcv")``;
* timm's ResNet with CBAM blocks (``timm.create_model("resnet50", block_args=dict(attn_layer="cbam"))``,
  timm/models/resnet.py with timm/layers/cbam.py): ``convert_state_dict(sd, "timm")``.

The converted ResNet state dicts load with ``strict=True`` into ``cbam.models.cbam_resnet18/34/50/101``
(``cbam_resnet152`` of pytorchcv converts too, but CBAM Lab builds no 152-layer network) and give
the same outputs as the source network, to float rounding.

Key layouts (one residual block shown; ``X`` is any of a BatchNorm's ``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``)::

    CBAM Lab (torchvision ResNet)           official (Jongchan)                    pytorchcv (osmr)
    conv1.weight                            conv1.weight                           features.init_block.conv.conv.weight
    bn1.X                                   bn1.X                                  features.init_block.conv.bn.X
    layer1.0.conv2.weight                   layer1.0.conv2.weight                  features.stage1.unit1.body.conv2.conv.weight
    layer1.0.bn2.X                          layer1.0.bn2.X                         features.stage1.unit1.body.conv2.bn.X
    layer1.0.downsample.0.weight            layer1.0.downsample.0.weight           features.stage1.unit1.identity_conv.conv.weight
    layer1.0.downsample.1.X                 layer1.0.downsample.1.X                features.stage1.unit1.identity_conv.bn.X
    layer1.0.cbam.channel_attention.fc1.*   layer1.0.cbam.ChannelGate.mlp.1.*      features.stage1.unit1.cbam.ch_gate.mlp.fc1.*
    layer1.0.cbam.channel_attention.fc2.*   layer1.0.cbam.ChannelGate.mlp.3.*      features.stage1.unit1.cbam.ch_gate.mlp.fc2.*
    layer1.0.cbam.spatial_attention.conv.*  layer1.0.cbam.SpatialGate.spatial.conv.*  features.stage1.unit1.cbam.sp_gate.conv.conv.*
    layer1.0.cbam.spatial_attention.bn.X    layer1.0.cbam.SpatialGate.spatial.bn.X    features.stage1.unit1.cbam.sp_gate.conv.bn.X
    fc.weight, fc.bias                      fc.weight, fc.bias                     output.weight, output.bias

(pytorchcv numbers stages and units from 1; torchvision's blocks are numbered from 0, so
``stage2.unit1`` is ``layer2.0``.)

timm's ResNet is torchvision's layout too, and it places its attention block (``se``) exactly where
the authors place CBAM: after the branch's last BatchNorm, before the shortcut is added. Inside it::

    CBAM Lab                                 timm
    layer1.0.cbam.channel_attention.fc1.weight   layer1.0.se.channel.fc1.weight   (C/r, C, 1, 1): a 1×1 conv
    layer1.0.cbam.channel_attention.fc2.weight   layer1.0.se.channel.fc2.weight   (C, C/r, 1, 1)
    layer1.0.cbam.spatial_attention.conv.weight  layer1.0.se.spatial.conv.conv.weight
    layer1.0.cbam.spatial_attention.bn.X         layer1.0.se.spatial.conv.bn.X

timm's MLP has no biases (unless built with ``mlp_bias=True``) and it feeds the spatial convolution
[mean; max]. ``convert_state_dict(sd, "timm")`` gives weights for the default ``cbam_resnet*`` all the
same: zero biases (the same function) and the kernels' two input channels swapped; with
``mlp_bias=False, spatial_pool_order="avg-max"`` they load into ``cbam_resnet*(mlp_bias=False,
spatial_pool_order="avg-max")``, timm's own variant, unchanged.

The authors' and pytorchcv's networks feed the spatial convolution [max; avg] (max first), as does ``CBAM.authors``, which
``cbam.models`` uses; their MLPs are Linear layers with bias, C -> C // 16 -> C, and their spatial
branch is a bias-free 7×7 convolution followed by BatchNorm, as ours. So the weights copy unchanged.
For a network built with ``spatial_pool_order="avg-max"`` pass the same option to
``convert_state_dict``: the 2 input channels of every spatial kernel are then swapped, which gives
identical outputs because conv(W, [max; avg]) = conv(W[:, ::-1], [avg; max]).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch

from .checkpoints import extract_state_dict
from .modules import CBAM, hidden_width

__all__ = ["SOURCES", "SEED_KEYS", "from_seed_state_dict", "convert_state_dict"]

MAX_LISTED = 10


def _listed(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" ... and {len(items) - limit} more"
    return shown


# --------------------------------------------------------------------------------------------
# The blog version's CBAM block
# --------------------------------------------------------------------------------------------

SEED_MLP_IN = "channelattention.fc.0.weight"  # W0 as a 1×1 conv: (C // r, C, 1, 1)
SEED_MLP_OUT = "channelattention.fc.2.weight"  # W1 as a 1×1 conv: (C, C // r, 1, 1)
SEED_SPATIAL_CONV = "spatialattention.conv1.weight"  # f^{k×k}: (1, 2, k, k), input [mean; max]
SEED_KEYS: tuple[str, ...] = (SEED_MLP_IN, SEED_MLP_OUT, SEED_SPATIAL_CONV)


def _seed_reduction_ratio(channels: int, hidden: int) -> int:
    """A reduction ratio r for which our ``hidden_width(C, r)`` is the blog's hidden width ``C // r``.

    Several r give the same ``C // r`` (C = 64: every r from 13 to 16 gives 4), and the weights
    cannot tell them apart; we take the largest, ``r = C // hidden``, which recovers the usual
    r = 16 whenever 16 was used. ``C // r`` decreases as r grows, so if that largest r does not
    give ``hidden`` exactly, no r does (e.g. C = 10, hidden = 4) and the dict cannot come from the
    blog's code.

    ``hidden == 0`` is the blog's ``C < r`` case: any r > C gives it; we take the smallest, C + 1.
    """
    if hidden == 0:
        return channels + 1
    ratio = channels // hidden
    if ratio < 1 or channels // ratio != hidden:
        raise ValueError(
            f"inconsistent shapes: no reduction ratio r gives C // r = {hidden} hidden units for C = {channels} "
            f"channels (the blog's MLP has C // r hidden units)"
        )
    return ratio


def _check_tensor(key: str, value: object, dims: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{key} must be a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{key} must hold floating-point weights, got dtype {value.dtype}")
    if value.dim() != dims:
        raise ValueError(f"{key} must have {dims} dimensions, got shape {tuple(value.shape)}")
    return value


def from_seed_state_dict(state_dict: Mapping[str, torch.Tensor]) -> CBAM:
    """Build a ``CBAM.blog`` block holding the weights of the blog version's ``CBAM`` module.

    The blog's state dict has exactly three tensors (``SEED_KEYS``)::

        channelattention.fc.0.weight   (C // r, C, 1, 1)   W0, a bias-free 1×1 convolution
        channelattention.fc.2.weight   (C, C // r, 1, 1)   W1, a bias-free 1×1 convolution
        spatialattention.conv1.weight  (1, 2, k, k)        the spatial conv over [mean; max]

    C, r and k are read from the shapes (r as ``_seed_reduction_ratio`` explains). A 1×1
    convolution on a (B, C, 1, 1) map is a matrix product, so our ``fc1``/``fc2`` Linear weights
    are those kernels reshaped to (C // r, C) and (C, C // r). The blog concatenates [mean; max],
    the blog preset's "avg-max", so the spatial kernel copies unchanged; its padding k // 2 is ours.

    With C < r the blog's MLP has 0 hidden units (its weights have 0 rows): its output is the
    empty sum 0 and every channel weight is sigmoid(0) = 0.5. (PyTorch refuses to run a convolution
    with 0 output channels, so the blog module itself crashes on such input.) Our hidden layer has at
    least one unit, so we build one and set both its weights to zero: the MLP output is again 0 and
    the block computes exactly the same function.

    Raises:
        ValueError: a key is missing or unexpected, a value is not a floating-point tensor, the
            shapes disagree with each other, or the kernel size is even.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"expected a state dict (a mapping of names to tensors), got {type(state_dict).__name__}")
    missing = [k for k in SEED_KEYS if k not in state_dict]
    unexpected = [str(k) for k in state_dict if k not in SEED_KEYS]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_listed(unexpected)}")
        raise ValueError(
            f"not a state dict of the blog's CBAM block ({'; '.join(problems)}); expected exactly {', '.join(SEED_KEYS)}"
        )

    w0 = _check_tensor(SEED_MLP_IN, state_dict[SEED_MLP_IN], 4)
    w1 = _check_tensor(SEED_MLP_OUT, state_dict[SEED_MLP_OUT], 4)
    spatial = _check_tensor(SEED_SPATIAL_CONV, state_dict[SEED_SPATIAL_CONV], 4)
    hidden, channels = w0.shape[0], w0.shape[1]
    if tuple(w0.shape[2:]) != (1, 1) or channels < 1:
        raise ValueError(f"{SEED_MLP_IN} must have shape (C // r, C, 1, 1) with C >= 1, got {tuple(w0.shape)}")
    if tuple(w1.shape) != (channels, hidden, 1, 1):
        raise ValueError(
            f"inconsistent shapes: {SEED_MLP_IN} is {tuple(w0.shape)}, so {SEED_MLP_OUT} must be "
            f"{(channels, hidden, 1, 1)}, got {tuple(w1.shape)}"
        )
    out_maps, in_maps, k_h, k_w = spatial.shape
    if (out_maps, in_maps) != (1, 2) or k_h != k_w:
        raise ValueError(f"{SEED_SPATIAL_CONV} must have shape (1, 2, k, k), got {tuple(spatial.shape)}")
    kernel_size = k_h
    if kernel_size % 2 == 0:
        raise ValueError(
            f"{SEED_SPATIAL_CONV} has an even kernel size {kernel_size}: with padding k // 2 the mask would "
            "not keep the input's size (the blog allows 3 or 7)"
        )

    ratio = _seed_reduction_ratio(channels, hidden)
    block = CBAM.blog(channels, reduction_ratio=ratio, kernel_size=kernel_size)
    channel = block.channel_attention
    assert channel.hidden_channels == hidden_width(channels, ratio) == max(hidden, 1)
    with torch.no_grad():
        if hidden == 0:
            channel.fc1.weight.zero_()
            channel.fc2.weight.zero_()
        else:
            channel.fc1.weight.copy_(w0.reshape(hidden, channels))
            channel.fc2.weight.copy_(w1.reshape(channels, hidden))
        block.spatial_attention.conv.weight.copy_(spatial)
    return block


# --------------------------------------------------------------------------------------------
# CBAM-ResNets: the authors' and pytorchcv's state dicts
# --------------------------------------------------------------------------------------------

_BN = r"(?:weight|bias|running_mean|running_var|num_batches_tracked)"
_BLOCK = r"layer[1-4]\.\d+"

# Each rule: a pattern a source key must match in full, and how to write the matching key of ours.
Rule = tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]


def _same(match: re.Match[str]) -> str:
    return match.group(0)


def _rules(*pairs: tuple[str, Callable[[re.Match[str]], str]]) -> list[Rule]:
    return [(re.compile(pattern), rename) for pattern, rename in pairs]


# torchvision's ResNet keys outside the attention blocks, as both the authors' and timm's ResNets name them.
_TORCHVISION_KEYS = (
    (r"conv1\.weight", _same),
    (rf"bn1\.{_BN}", _same),
    (rf"{_BLOCK}\.(?:conv[123]\.weight|bn[123]\.{_BN}|downsample\.0\.weight|downsample\.1\.{_BN})", _same),
    (r"fc\.(?:weight|bias)", _same),
)

# The authors' ResNet is torchvision's layout except inside ``cbam``.
_OFFICIAL_RULES = _rules(
    *_TORCHVISION_KEYS,
    (rf"({_BLOCK})\.cbam\.ChannelGate\.mlp\.1\.(weight|bias)", lambda m: f"{m[1]}.cbam.channel_attention.fc1.{m[2]}"),
    (rf"({_BLOCK})\.cbam\.ChannelGate\.mlp\.3\.(weight|bias)", lambda m: f"{m[1]}.cbam.channel_attention.fc2.{m[2]}"),
    (rf"({_BLOCK})\.cbam\.SpatialGate\.spatial\.conv\.weight", lambda m: f"{m[1]}.cbam.spatial_attention.conv.weight"),
    (rf"({_BLOCK})\.cbam\.SpatialGate\.spatial\.bn\.({_BN})", lambda m: f"{m[1]}.cbam.spatial_attention.bn.{m[2]}"),
)


def _pytorchcv_unit(match: re.Match[str], inside: str) -> str:
    stage, unit = int(match["stage"]), int(match["unit"])
    if unit < 1:  # pytorchcv numbers units from 1
        raise _Unconvertible
    return f"layer{stage}.{unit - 1}.{inside}"


class _Unconvertible(Exception):
    """Raised by a rename when the key matches a pattern but cannot be mapped."""


_UNIT = r"features\.stage(?P<stage>[1-4])\.unit(?P<unit>\d+)"

_PYTORCHCV_RULES = _rules(
    (r"features\.init_block\.conv\.conv\.weight", lambda m: "conv1.weight"),
    (rf"features\.init_block\.conv\.bn\.({_BN})", lambda m: f"bn1.{m[1]}"),
    (rf"{_UNIT}\.body\.conv(?P<n>[123])\.conv\.weight", lambda m: _pytorchcv_unit(m, f"conv{m['n']}.weight")),
    (rf"{_UNIT}\.body\.conv(?P<n>[123])\.bn\.(?P<p>{_BN})", lambda m: _pytorchcv_unit(m, f"bn{m['n']}.{m['p']}")),
    (rf"{_UNIT}\.identity_conv\.conv\.weight", lambda m: _pytorchcv_unit(m, "downsample.0.weight")),
    (rf"{_UNIT}\.identity_conv\.bn\.(?P<p>{_BN})", lambda m: _pytorchcv_unit(m, f"downsample.1.{m['p']}")),
    (
        rf"{_UNIT}\.cbam\.ch_gate\.mlp\.fc(?P<n>[12])\.(?P<p>weight|bias)",
        lambda m: _pytorchcv_unit(m, f"cbam.channel_attention.fc{m['n']}.{m['p']}"),
    ),
    (
        rf"{_UNIT}\.cbam\.sp_gate\.conv\.conv\.weight",
        lambda m: _pytorchcv_unit(m, "cbam.spatial_attention.conv.weight"),
    ),
    (
        rf"{_UNIT}\.cbam\.sp_gate\.conv\.bn\.(?P<p>{_BN})",
        lambda m: _pytorchcv_unit(m, f"cbam.spatial_attention.bn.{m['p']}"),
    ),
    (r"output\.(weight|bias)", lambda m: f"fc.{m[1]}"),
)

# timm's ResNet is torchvision's layout except inside ``se`` (its attention layer's name).
_TIMM_RULES = _rules(
    *_TORCHVISION_KEYS,
    (rf"({_BLOCK})\.se\.channel\.fc([12])\.(weight|bias)", lambda m: f"{m[1]}.cbam.channel_attention.fc{m[2]}.{m[3]}"),
    (rf"({_BLOCK})\.se\.spatial\.conv\.conv\.weight", lambda m: f"{m[1]}.cbam.spatial_attention.conv.weight"),
    (rf"({_BLOCK})\.se\.spatial\.conv\.bn\.({_BN})", lambda m: f"{m[1]}.cbam.spatial_attention.bn.{m[2]}"),
)

SOURCES: dict[str, str] = {
    "official": "the authors' CBAM-ResNet (Jongchan/attention-module, MODELS/model_resnet.py)",
    "pytorchcv": "osmr's CBAM-ResNet in the pytorchcv package (pytorchcv/models/cbamresnet.py)",
    "timm": "timm's ResNet with attn_layer='cbam' (timm/models/resnet.py, timm/layers/cbam.py)",
}
_RULES: dict[str, list[Rule]] = {"official": _OFFICIAL_RULES, "pytorchcv": _PYTORCHCV_RULES, "timm": _TIMM_RULES}

# The order in which each source concatenates the two channel-pooled maps.
_SOURCE_SPATIAL_POOL_ORDER = {"official": "max-avg", "pytorchcv": "max-avg", "timm": "avg-max"}


def _rename(key: str, rules: list[Rule]) -> str | None:
    for pattern, rename in rules:
        match = pattern.fullmatch(key)
        if match:
            try:
                return rename(match)
            except _Unconvertible:
                return None
    return None


def convert_state_dict(
    state_dict: Mapping,
    source: str,
    *,
    spatial_pool_order: str = "max-avg",
    mlp_bias: bool = True,
) -> dict[str, torch.Tensor]:
    """Convert a CBAM-ResNet state dict from ``source`` to the keys of ``cbam.models.cbam_resnet*``.

    Args:
        state_dict: the source's state dict, with or without the ``module.`` prefix that
            ``nn.DataParallel`` adds, or a whole training checkpoint ``{"state_dict": ..., "epoch":
            ..., "best_prec1": ..., "optimizer": ...}`` (only its state dict is used).
        source: "official", "pytorchcv" or "timm" (see ``SOURCES``).
        spatial_pool_order: the order in which the *target* network concatenates the spatial
            poolings: "max-avg" (``CBAM.authors``, the default of ``cbam.models``) or "avg-max". When
            it is not the source's own order, the kernels' 2 input channels are swapped.
        mlp_bias: whether the target's MLP has biases (``cbam.models``' default). A source without
            them (timm) then gets zero biases; False needs a source without biases.

    Returns:
        A new state dict, in the source's order, that loads with ``strict=True`` into the CBAM-ResNet
        of the same depth. BatchNorms saved before PyTorch 0.4.1 lack ``num_batches_tracked``; it is
        filled with 0 (it only matters for BatchNorm with ``momentum=None``).

    Raises:
        ValueError: unknown source or pool order; a key that is not part of a CBAM-ResNet of that
            source (the message names them); no CBAM weights at all; the authors' CIFAR variant;
            ``mlp_bias=False`` for a source whose MLP has biases.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid sources: {', '.join(SOURCES)}")
    if spatial_pool_order not in ("avg-max", "max-avg"):
        raise ValueError(f"spatial_pool_order must be 'avg-max' or 'max-avg', got {spatial_pool_order!r}")
    weights = extract_state_dict(state_dict)  # a CheckpointError (a ValueError) if not a state dict

    rules = _RULES[source]
    converted: dict[str, torch.Tensor] = {}
    unconvertible: list[str] = []
    for key, tensor in weights.items():
        plain_key = key[len("module.") :] if key.startswith("module.") else key
        new_key = _rename(plain_key, rules)
        if new_key is None:
            unconvertible.append(key)
        elif new_key in converted:
            raise ValueError(f"two keys of the {source} state dict give the same key {new_key!r} (one is {key!r})")
        else:
            converted[new_key] = tensor
    if unconvertible:
        raise ValueError(
            f"{len(unconvertible)} key(s) are not part of {SOURCES[source]} and cannot be converted: "
            f"{_listed(unconvertible)}"
        )
    if not any(".cbam." in key for key in converted):
        raise ValueError(f"no CBAM weights found: this looks like a plain ResNet, not {SOURCES[source]}")
    stem = converted.get("conv1.weight")
    if stem is not None and tuple(stem.shape[-2:]) != (7, 7):
        raise ValueError(
            f"conv1.weight has a {tuple(stem.shape[-2:])} kernel: this is the CIFAR variant (3×3 stem, no "
            "max-pooling), which cbam.models does not build; only the ImageNet networks (7×7 stem) convert"
        )

    converted = _with_num_batches_tracked(converted)
    converted = _with_mlp_bias(converted, mlp_bias, SOURCES[source])
    if spatial_pool_order != _SOURCE_SPATIAL_POOL_ORDER[source]:
        for key, tensor in converted.items():
            if key.endswith(".spatial_attention.conv.weight"):
                converted[key] = tensor.flip(1)  # (1, 2, k, k): swap the two input maps
    return converted


def _with_mlp_bias(state_dict: dict[str, torch.Tensor], mlp_bias: bool, source: str) -> dict[str, torch.Tensor]:
    """A copy whose MLP weights are (out, in) matrices (timm's 1×1 kernels reshaped), with a bias after
    each weight when ``mlp_bias`` (zeros where the source has none: the same function), and none otherwise."""
    result: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        is_mlp = re.search(r"\.channel_attention\.fc[12]\.(weight|bias)$", key)
        if is_mlp and key.endswith(".bias") and not mlp_bias:
            raise ValueError(f"{key} is a bias of {source}'s MLP, but mlp_bias=False was asked for")
        if is_mlp and key.endswith(".weight"):
            tensor = tensor.reshape(tensor.shape[0], -1) if tensor.dim() == 4 else tensor
            result[key] = tensor
            bias_key = key[: -len("weight")] + "bias"
            if mlp_bias:
                result[bias_key] = state_dict.get(bias_key, torch.zeros(tensor.shape[0], dtype=tensor.dtype))
        elif not (is_mlp and key.endswith(".bias")):
            result[key] = tensor
    return result


def _with_num_batches_tracked(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy with ``<bn>.num_batches_tracked = 0`` after the ``running_var`` of every BatchNorm that lacks it."""
    filled: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        filled[key] = tensor
        if key.endswith(".running_var"):
            counter = key[: -len("running_var")] + "num_batches_tracked"
            if counter not in state_dict:
                filled[counter] = torch.tensor(0, dtype=torch.long)
    return filled
