"""Other implementations' CBAM blocks, swapped in place for ``cbam.CBAM``: ``adopt(model)``.

Every CBAM implementation computes the paper's Eq. 1–3 with its own module classes::

    Mc(F)  = σ( W1 ReLU(W0 AvgPool(F)) + W1 ReLU(W0 MaxPool(F)) )      F'  = Mc(F)  ⊗ F
    Ms(F') = σ( f^{k×k}([AvgPool_c(F'); MaxPool_c(F')]) )             F'' = Ms(F') ⊗ F'

so ``cbam.trace_all`` sees none of a timm or pytorchcv network's blocks. ``adopt(model)`` finds them
and replaces each, in place, by a ``cbam.CBAM`` holding the same weights and buffers (BatchNorm
running statistics too), and every figure of CBAM Lab then works on that network.

Recognition is by structure, then proved by numbers.

* Structure. A *channel part* is a module whose only parameters are two linear maps C → h → C
  (``nn.Linear`` or 1×1 ``nn.Conv2d``, with or without biases); a *spatial part* is a module whose only
  parameters are one 2 → 1 k×k ``nn.Conv2d``, optionally with one ``nn.BatchNorm2d(1)``. A module whose
  parameters all sit in one channel part and one spatial part is a CBAM block (the blog's ``CBAM``, the
  authors' ``CBAM``, timm's ``CbamModule``, pytorchcv's ``CbamBlock``; the authors' ``no_spatial=True``
  block has the channel part only) and is replaced whole. A module that holds one channel part and one
  spatial part *among other layers* (the tutorial's ResNet block with ``self.ca`` and ``self.sa``,
  applied in its own ``forward`` as ``out = self.ca(out) * out; out = self.sa(out) * out``) holds a CBAM
  block in two pieces: the ``cbam.CBAM`` is registered beside them as ``<block>.cbam`` and the two
  attributes become ``ChannelPiece`` and ``SpatialPiece``, which compute with its modules and return
  what the originals returned (the weights Mc, or the product Mc ⊗ F). The enclosing module's own
  forward is not read: each piece is checked by itself, and ``cbam.trace`` records the block as the
  tutorial applies it, channel part first (``CBAM.arrangement`` "channel-spatial").
* Numbers. What the structure cannot show (the order of the two maps fed to the spatial convolution,
  which poolings feed the MLP, channel-first, spatial-first or parallel, whether a piece returns the
  weights or the product) is found by trying every option on a copy of the block with random weights,
  in eval mode, on a random probe of shape ``(2, C, 10, 13)`` (seed 0). The chosen ``cbam.CBAM``, holding
  the block's real weights, must then give the block's own output on that probe:
  ``max |ours − theirs| ≤ ATOL · max(1, max |theirs|)``. The random copy matters: an untrained block
  whose spatial BatchNorm has a scale of 0 (as the authors initialise it) gives the same output for
  either pool order, but the kernel figure must still label its two input maps right.

What a block becomes (``IMPLEMENTATIONS``; the name says which published form it computes like):

=========  ===========================================================  ================================
name       recognised as                                                cbam.CBAM options
=========  ===========================================================  ================================
blog       ``channelattention.fc`` = 1×1 conv, ReLU, 1×1 conv (no bias) mlp_bias=False, "avg-max", no BN,
           and ``spatialattention.conv1``                               k from ``conv1`` (3 by default)
authors    ``ChannelGate.mlp`` = Flatten, Linear, ReLU, Linear;         mlp_bias=True, "max-avg", BN,
           ``SpatialGate.spatial`` = conv + BatchNorm, k = 7            pool_types from ``pool_types``
timm       ``CbamModule``: ``channel.fc1/fc2`` 1×1 convs (no bias       mlp_bias=False, "avg-max", BN
           unless built with ``mlp_bias=True``), ``spatial.conv`` =
           ConvNormAct (conv + BatchNorm)
pytorchcv  ``CbamBlock``: ``ch_gate.mlp.fc1/fc2`` Linear,               mlp_bias=True, "max-avg", BN
           ``sp_gate.conv`` = conv + BatchNorm
tutorial   ``ca`` / ``sa`` parts of a larger block (e.g. a BasicBlock)  as its layers are; "avg-max"
other      any other module of this structure that computes a CBAM      whatever the numbers show
cbam       already a ``cbam.CBAM``: left as it is
=========  ===========================================================  ================================

A missing bias is a zero bias (one MLP layer with a bias and one without becomes ``mlp_bias=True``
with zeros), which computes the same function.

All or nothing. Every block is checked before any is replaced. If one fails its check (no option
reproduces its output), ``adopt`` raises ``AdoptError`` naming each failing block and the model is
not changed at all. A module that looks like CBAM but matches no option of ``cbam.CBAM`` (a channel
gate that is a single 1×1 convolution with no hidden layer, timm's "light" variants, a spatial
convolution with a bias or a stride) is left untouched and named in an ``AdoptWarning`` that says what
differs; the other blocks are adopted.

    >>> import timm, cbam                                                    # doctest: +SKIP
    >>> net = timm.create_model("resnet18", block_args=dict(attn_layer="cbam")).eval()
    >>> cbam.adopt(net)                                                      # doctest: +SKIP
    {'layer1.0.se': 'timm', 'layer1.1.se': 'timm', ..., 'layer4.1.se': 'timm'}
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import product

import torch
from torch import nn

from .i18n import Text, t
from .modules import ARRANGEMENTS, CBAM, CHANNEL_POOLS, _record_of, hidden_width

__all__ = ["adopt", "AdoptError", "AdoptWarning", "ChannelPiece", "SpatialPiece", "IMPLEMENTATIONS", "ATOL"]

ATOL = 1e-5
"""Per block: ``max |ours − theirs| ≤ ATOL · max(1, max |theirs|)`` on the probe."""
MODEL_RTOL = 1e-4
"""With ``probe=``: the whole model's outputs before and after, to ``MODEL_RTOL · max(1, max |before|)``."""
PROBE_SIZE = (2, 10, 13)
"""Batch, height and width of the probe; its channels are the block's C. Non-square on purpose."""
PROBE_SEED = 0

IMPLEMENTATIONS: dict[str, str] = {
    "blog": "the blog version (1×1-conv MLP without bias, [mean; max], no BatchNorm)",
    "authors": "the authors' code (Jongchan/attention-module: Linear MLP with bias, [max; mean], conv + BatchNorm)",
    "timm": "timm's CbamModule (timm.layers.cbam)",
    "pytorchcv": "pytorchcv's CbamBlock (pytorchcv.models.cbamresnet)",
    "tutorial": "a channel part and a spatial part applied by the enclosing block (self.ca, self.sa)",
    "other": "another layout that computes a configuration of cbam.CBAM",
    "cbam": "already a cbam.CBAM",
}


class AdoptError(ValueError):
    """A CBAM-like block could not be reproduced by ``cbam.CBAM``; nothing was changed.
    ``args[0]`` is the message as worded (a ``cbam.i18n.Text``: ``i18n.again`` words it anew)."""


class AdoptWarning(UserWarning):
    """A module that looks like CBAM but matches no option of ``cbam.CBAM`` was left untouched.
    ``args[0]`` is the message as worded (a ``cbam.i18n.Text``: ``i18n.again`` words it anew)."""


def _listed(texts: list[Text], key: str = "adopt.also") -> Text:
    """Several texts as one that ``i18n.again`` can word anew: each pair joined by ``key``'s text
    (``"{first}; {then}"``), the later ones nested in the earlier."""
    listed = texts[-1]
    for text in reversed(texts[:-1]):
        listed = t(key, first=text, then=listed)
    return listed


# --------------------------------------------------------------------------------------------
# The pieces that stand in for a tutorial's self.ca and self.sa
# --------------------------------------------------------------------------------------------


class _Piece(nn.Module):
    """Stands in for one part of a CBAM block that its enclosing module applies itself.

    The ``cbam.CBAM`` is registered on the enclosing module, not here (``block`` is a plain reference,
    so the weights are saved once, under the block's own name)."""

    def __init__(self, block: CBAM, returns: str) -> None:
        super().__init__()
        object.__setattr__(self, "block", block)
        self.returns = returns

    def extra_repr(self) -> str:
        return f"returns={self.returns!r}"


class ChannelPiece(_Piece):
    """Mc(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F))) by the block's ``channel_attention``: returns the
    weights as (B, C, 1, 1) (``returns="weights"``, for ``out = self.ca(out) * out``) or Mc(F) ⊗ F
    (``returns="product"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.block.channel_attention.weights(x)[:, :, None, None]
        x_channel = x * weights
        record = _record_of(self.block)
        if record is not None:  # while traced: F and F' (the enclosing block computes the same product)
            record.update(x=x, x_channel=x_channel)
        return weights if self.returns == "weights" else x_channel


class SpatialPiece(_Piece):
    """Ms(F') = σ(f^{k×k}([AvgPool_c(F'); MaxPool_c(F')])) by the block's ``spatial_attention``: returns
    the mask (B, 1, H, W) (``returns="mask"``) or Ms(F') ⊗ F' (``returns="product"``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.block.spatial_attention.mask(x)
        out = x * mask
        record = _record_of(self.block)
        if record is not None:
            record.setdefault("x", x)
            record.setdefault("x_channel", x)
            record["out"] = out
        return mask if self.returns == "mask" else out


# --------------------------------------------------------------------------------------------
# Structure: channel parts and spatial parts
# --------------------------------------------------------------------------------------------


@dataclass
class _Unfit:
    """Looks like a part of CBAM, but no option of cbam.CBAM has this: ``reason`` says what differs."""

    reason: Text


@dataclass
class _Channel:
    channels: int
    hidden: int
    layers: tuple[nn.Module, nn.Module]  # W0, W1
    pool_types: tuple[str, ...] | None  # as the module declares them (the authors' pool_types)


@dataclass
class _Spatial:
    conv: nn.Conv2d
    bn: nn.BatchNorm2d | None


def _holders(module: nn.Module) -> list[nn.Module]:
    """The module and its sub-modules that hold parameters or buffers themselves, in registration order."""
    return [
        m for m in module.modules()
        if next(m.parameters(recurse=False), None) is not None or next(m.buffers(recurse=False), None) is not None
    ]


def _matrix(layer: nn.Module) -> torch.Tensor | None:
    """The weight of a linear map as an (out, in) matrix: an nn.Linear, or a plain 1×1 nn.Conv2d."""
    if isinstance(layer, nn.Linear):
        return layer.weight
    if (
        isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and layer.stride == (1, 1)
        and layer.dilation == (1, 1) and layer.groups == 1 and layer.padding in ((0, 0), "valid")
    ):
        return layer.weight.flatten(1)
    return None


def _channel_part(module: nn.Module) -> _Channel | _Unfit | None:
    """``module`` as the shared MLP of channel attention, C → h → C; None when it is not one."""
    holders = _holders(module)
    matrices = [_matrix(m) for m in holders]
    if not holders or any(w is None for w in matrices):
        return None
    channels = matrices[0].shape[1]
    if matrices[-1].shape[0] != channels or any(a.shape[0] != b.shape[1] for a, b in zip(matrices, matrices[1:])):
        return None
    if len(holders) == 1:
        return _Unfit(t("adopt.single_layer", layer=type(holders[0]).__name__, channels=channels))
    if len(holders) > 2:
        widths = " → ".join(str(w.shape[1]) for w in matrices) + f" → {channels}"
        return _Unfit(t("adopt.many_layers", layers=len(holders), widths=widths))
    hidden = matrices[0].shape[0]
    if hidden == 0:
        return _Unfit(t("adopt.no_hidden", channels=channels))
    ratio = channels // hidden
    if hidden_width(channels, ratio) != hidden:
        return _Unfit(t("adopt.odd_hidden", hidden=hidden, channels=channels))
    declared = getattr(module, "pool_types", None)
    pools = None
    if isinstance(declared, (list, tuple)) and declared and all(p in CHANNEL_POOLS for p in declared):
        pools = tuple(declared)
    return _Channel(channels, hidden, (holders[0], holders[1]), pools)


def _spatial_part(module: nn.Module) -> _Spatial | _Unfit | None:
    """``module`` as the k×k convolution (and BatchNorm) of spatial attention; None when it is not one."""
    holders = _holders(module)
    convs = [m for m in holders if isinstance(m, nn.Conv2d)]
    norms = [m for m in holders if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != 1 or len(norms) > 1 or len(convs) + len(norms) != len(holders):
        return None
    conv = convs[0]
    bn = norms[0] if norms else None
    if conv.out_channels != 1 or conv.in_channels not in (1, 2) or (bn is not None and bn.num_features != 1):
        return None
    k = conv.kernel_size
    problems = []
    if conv.in_channels == 1:
        problems.append(t("adopt.one_map"))
    if k[0] != k[1] or k[0] % 2 == 0:
        problems.append(t("adopt.kernel_shape", height=k[0], width=k[1]))
    elif conv.padding != (k[0] // 2, k[0] // 2):
        problems.append(t("adopt.padding", padding=conv.padding, half=k[0] // 2))
    if conv.stride != (1, 1) or conv.dilation != (1, 1):
        problems.append(t("adopt.stride", stride=conv.stride, dilation=conv.dilation))
    if conv.padding_mode not in ("zeros", "replicate"):
        problems.append(t("adopt.padding_mode", mode=repr(conv.padding_mode)))
    if conv.bias is not None:
        problems.append(t("adopt.conv_bias"))
    if bn is not None and not (bn.affine and bn.track_running_stats):
        problems.append(t("adopt.bn_lacks"))
    if problems:
        return _Unfit(_listed(problems))
    return _Spatial(conv, bn)


# --------------------------------------------------------------------------------------------
# Finding the blocks
# --------------------------------------------------------------------------------------------


@dataclass
class _Found:
    """A CBAM block to adopt: a whole module (``channel_attr`` None), or two parts of ``module``."""

    name: str  # where the cbam.CBAM will be
    module: nn.Module  # the block, or the module that holds its two parts
    channel: nn.Module
    spatial: nn.Module | None
    channel_attr: str | None = None
    spatial_attr: str | None = None

    @property
    def in_pieces(self) -> bool:
        return self.channel_attr is not None

    def describe(self) -> Text:
        if self.in_pieces:
            return t("adopt.pieces", name=self.name or t("adopt.the_model"), channel=self.channel_attr,
                     spatial=self.spatial_attr, cls=type(self.module).__name__)
        return t("adopt.named", name=self.name, cls=type(self.module).__name__)


def _joined(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _free_name(module: nn.Module, wanted: str = "cbam") -> str:
    name, n = wanted, 1
    while hasattr(module, name):
        name, n = f"{wanted}_{n}", n + 1
    return name


def _find(model: nn.Module) -> tuple[list[_Found], list[tuple[Text, Text]]]:
    """The blocks to adopt, and the (name, reason) of CBAM-like modules that cannot be."""
    found: list[_Found] = []
    unfit: list[tuple[Text, Text]] = []
    done: set[int] = set()  # modules inside a block already dealt with
    for name, module in model.named_modules():
        if id(module) in done:
            continue
        if isinstance(module, CBAM):
            done.update(id(m) for m in module.modules())
            continue
        parts = [(n, c) for n, c in module.named_children()
                 if next(c.parameters(), None) is not None and not isinstance(c, CBAM)]
        if not parts:
            continue
        channel = [(n, c, r) for n, c in parts if (r := _channel_part(c)) is not None]
        spatial = [(n, c, r) for n, c in parts if (r := _spatial_part(c)) is not None]
        fit_channel = [p for p in channel if isinstance(p[2], _Channel)]
        fit_spatial = [p for p in spatial if isinstance(p[2], _Spatial)]
        own_parameters = next(module.parameters(recurse=False), None) is not None
        whole = not own_parameters and len(channel) == 1 and len(spatial) + 1 == len(parts)
        if whole and (len(spatial) == 1 or getattr(module, "no_spatial", False) is True):
            problems = [r.reason for _, _, r in channel + spatial if isinstance(r, _Unfit)]
            if problems:
                unfit.append((t("adopt.named", name=name, cls=type(module).__name__), _listed(problems)))
            elif not name:
                raise AdoptError(t("adopt.itself", cls=type(module).__name__))
            else:
                found.append(_Found(name, module, channel[0][1], spatial[0][1] if spatial else None))
            done.update(id(m) for m in module.modules())
        elif len(fit_channel) == 1 and len(fit_spatial) == 1:
            (c_attr, c_module, _), (s_attr, s_module, _) = fit_channel[0], fit_spatial[0]
            found.append(_Found(_joined(name, _free_name(module)), module, c_module, s_module, c_attr, s_attr))
            done.update(id(m) for m in [*c_module.modules(), *s_module.modules()])
        elif channel and spatial and not (fit_channel and fit_spatial):
            problems = [r.reason for _, _, r in channel + spatial if isinstance(r, _Unfit)]
            if problems:
                names = ", ".join(n for n, _, _ in channel + spatial)
                unfit.append((t("adopt.named", name=_joined(name, "{" + names + "}"), cls=type(module).__name__),
                              _listed(problems)))
    return found, unfit


# --------------------------------------------------------------------------------------------
# Numbers: building cbam.CBAM from a block's parts and checking it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    arrangement: str = "channel-spatial"
    pool_order: str = "avg-max"
    pool_types: tuple[str, ...] = ("avg", "max")
    returns: tuple[str, str] = ("", "")  # what the pieces return; unused for a whole block


def _build(channel: _Channel, spatial: _Spatial | None, options: _Options) -> CBAM:
    """A float32 cbam.CBAM with ``options``, holding the weights of ``channel`` and ``spatial``."""
    w0, w1 = channel.layers
    mlp_bias = w0.bias is not None or w1.bias is not None
    block = CBAM(
        channel.channels, channel.channels // channel.hidden, spatial.conv.kernel_size[0] if spatial else 7,
        arrangement=options.arrangement, pool_types=options.pool_types, mlp_bias=mlp_bias,
        spatial_pool_order=options.pool_order, spatial_batch_norm=spatial is not None and spatial.bn is not None,
        spatial=spatial is not None, spatial_padding=spatial.conv.padding_mode if spatial else "zeros",
    )
    ours = block.channel_attention
    with torch.no_grad():
        for theirs, layer in ((w0, ours.fc1), (w1, ours.fc2)):
            layer.weight.copy_(_matrix(theirs).float())
            if mlp_bias:
                layer.bias.copy_(theirs.bias.float() if theirs.bias is not None else torch.zeros(layer.out_features))
        if spatial is not None:
            block.spatial_attention.conv.weight.copy_(spatial.conv.weight.float())
            if spatial.bn is not None:
                bn = block.spatial_attention.bn
                for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                    source = getattr(spatial.bn, key)
                    if source is not None:
                        getattr(bn, key).copy_(source)
                bn.eps, bn.momentum = spatial.bn.eps, spatial.bn.momentum
    return block.eval()


def _probe(channels: int) -> torch.Tensor:
    batch, height, width = PROBE_SIZE
    return torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(PROBE_SEED))


def _difference(ours: torch.Tensor, theirs: torch.Tensor) -> float | None:
    """max |ours − theirs| if the shapes agree and it is within tolerance, else None."""
    if not isinstance(theirs, torch.Tensor) or ours.shape != theirs.shape:
        return None
    error = float((ours - theirs).abs().max())
    return error if error <= ATOL * max(1.0, float(theirs.abs().max())) else None


@torch.no_grad()
def _randomize_(module: nn.Module, seed: int = 1) -> nn.Module:
    """Random weights and BatchNorm statistics, so that every option shows in the outputs."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        for p in m.parameters(recurse=False):
            if p.dim() >= 2:  # the 2 → 1 spatial convolution gets a larger gain: masks that vary a lot
                gain = 4.0 if isinstance(m, nn.Conv2d) and m.out_channels == 1 else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * gain / p[0].numel() ** 0.5)
            else:
                p.copy_(0.5 + 0.5 * torch.rand(p.shape, generator=gen))
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return module


def _path_to(root: nn.Module, target: nn.Module) -> str:
    return next(name for name, m in root.named_modules(remove_duplicate=False) if m is target)


class _Failed(Exception):
    """A block's check failed; ``args[0]`` (a ``Text``) says why."""


def _candidates(channel: _Channel, whole: bool, has_spatial: bool) -> list[_Options]:
    pools = [channel.pool_types] if channel.pool_types else [("avg", "max"), ("avg",), ("max",)]
    orders = ("avg-max", "max-avg") if has_spatial else ("avg-max",)
    arrangements = ARRANGEMENTS if whole and has_spatial else ("channel-spatial",)
    return [_Options(a, o, p) for p, o, a in product(pools, orders, arrangements)]


def _run(module: nn.Module, x: torch.Tensor, part: str | None = None) -> torch.Tensor:
    """``module(x)``; ``part``: the attribute it is of a block in pieces (None: the whole block)."""
    try:
        return module(x)
    except Exception as error:  # noqa: BLE001 - any failure means the same: it cannot be checked
        kind, shape = type(error).__name__, tuple(x.shape)
        if part is None:
            raise _Failed(t("adopt.block_raised", kind=kind, shape=shape, error=str(error))) from None
        raise _Failed(t("adopt.part_raised", part=part, kind=kind, shape=shape, error=str(error))) from None


def _copy(found: _Found, randomize: bool) -> tuple[object, nn.Module, nn.Module | None]:
    """A float32 CPU copy in eval mode of what ``found`` runs (the block, or its two parts), and its parts."""
    if found.in_pieces:
        channel, spatial = (m.float().cpu().eval() for m in copy.deepcopy((found.channel, found.spatial)))
        if randomize:
            _randomize_(channel, seed=1)
            _randomize_(spatial, seed=2)
        return (channel, spatial), channel, spatial
    whole = copy.deepcopy(found.module).float().cpu().eval()
    if randomize:
        _randomize_(whole)
    spatial = None if found.spatial is None else whole.get_submodule(_path_to(found.module, found.spatial))
    return whole, whole.get_submodule(_path_to(found.module, found.channel)), spatial


def _parts_of(channel: nn.Module, spatial: nn.Module | None) -> tuple[_Channel, _Spatial | None]:
    c = _channel_part(channel)
    s = None if spatial is None else _spatial_part(spatial)
    assert isinstance(c, _Channel) and (spatial is None or isinstance(s, _Spatial))
    return c, s


def _returns(found: _Found, theirs: object, x: torch.Tensor) -> tuple[str, str]:
    """What the two parts of a block in pieces return: ("weights" or "product", "mask" or "product")."""
    if not found.in_pieces:
        return ("", "")
    c_out = _run(theirs[0], x, found.channel_attr)
    s_out = _run(theirs[1], x, found.spatial_attr)
    return (
        "weights" if tuple(c_out.shape) == (*x.shape[:2], 1, 1) else "product",
        "mask" if tuple(s_out.shape) == (x.shape[0], 1, *x.shape[2:]) else "product",
    )


def _miss(found: _Found, block: CBAM, options: _Options, theirs: object, x: torch.Tensor) -> float | None:
    """None when ``block`` gives what ``theirs`` gives on ``x``; else the largest difference (inf: other shapes)."""
    if found.in_pieces:
        pairs = [(ChannelPiece(block, options.returns[0])(x), _run(theirs[0], x, found.channel_attr)),
                 (SpatialPiece(block, options.returns[1])(x), _run(theirs[1], x, found.spatial_attr))]
    else:
        pairs = [(block(x), _run(theirs, x))]
    worst = None
    for ours, reference in pairs:
        if _difference(ours, reference) is None:
            error = float((ours - reference).abs().max()) if ours.shape == reference.shape else float("inf")
            worst = error if worst is None else max(worst, error)
    return worst


@torch.no_grad()
def _replacement(found: _Found) -> tuple[CBAM, _Options]:
    """The cbam.CBAM for ``found``: options chosen on a random-weight copy, then checked on its own weights."""
    try:
        randomized, channel, spatial = _copy(found, randomize=True)
        parts = _parts_of(channel, spatial)
        x = _probe(parts[0].channels)
        returns = _returns(found, randomized, x)
        closest = float("inf")
        for options in _candidates(parts[0], not found.in_pieces, spatial is not None):
            options = _Options(options.arrangement, options.pool_order, options.pool_types, returns)
            miss = _miss(found, _build(*parts, options), options, randomized, x)
            if miss is None:
                break
            closest = min(closest, miss)
        else:
            raise _Failed(t("adopt.no_option", closest=closest, shape=tuple(x.shape)))
        real, channel, spatial = _copy(found, randomize=False)
        block = _build(*_parts_of(channel, spatial), options)
        miss = _miss(found, block, options, real, x)
        if miss is not None:
            raise _Failed(t("adopt.own_weights", miss=miss))
        return block, options
    except _Failed:
        raise
    except Exception as error:  # noqa: BLE001 - a block that cannot be copied or run cannot be checked
        raise _Failed(t("adopt.unchecked", kind=type(error).__name__, error=str(error))) from None


def _implementation(found: _Found, block: CBAM) -> str:
    package = type(found.module).__module__.split(".")[0]
    if not found.in_pieces and package in ("timm", "pytorchcv"):
        return package
    if found.in_pieces:
        return "tutorial"
    ca, sa = block.channel_attention, block.spatial_attention
    bias = ca.fc1.bias is not None
    if sa is None and bias:  # the authors' no_spatial=True
        return "authors"
    if sa is not None and block.arrangement == "channel-spatial":
        if bias and sa.bn is not None and sa.pool_order == "max-avg":
            return "authors"
        if not bias and sa.bn is None and sa.pool_order == "avg-max":
            return "blog"
    return "other"


# --------------------------------------------------------------------------------------------
# Replacing
# --------------------------------------------------------------------------------------------


def _where(model: nn.Module, target: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every (parent, attribute) under which ``target`` is registered (a shared module has several)."""
    return [(parent, key) for parent in model.modules() for key, child in parent._modules.items() if child is target]


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _tensors(output: object) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    return []


def _device_and_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(module.parameters())
    return p.device, p.dtype


def adopt(model: nn.Module, *, probe: torch.Tensor | None = None) -> dict[str, str]:
    """Replace every CBAM block of another implementation in ``model`` by an equal ``cbam.CBAM``, in place.

    Args:
        model: any network. Its blocks keep their weights, buffers, device, dtype and train/eval mode.
        probe: optionally, an input for the whole model (e.g. ``torch.randn(1, 3, 224, 224)``). Its
            outputs (in eval mode, no gradients) must then be the same before and after, to
            ``MODEL_RTOL`` relative to their largest value; otherwise every replacement is undone.

    Returns:
        ``{qualified name: implementation}`` for every ``cbam.CBAM`` now in the model, in registration
        order: the adopted blocks (``"timm"``, ``"pytorchcv"``, ``"authors"``, ``"blog"``, ``"tutorial"``,
        ``"other"``; see ``IMPLEMENTATIONS``) and those that were ``cbam.CBAM`` already (``"cbam"``). A
        whole block keeps its name (``"layer1.0.se"``); a block in two parts gets the name of its
        enclosing module plus ``.cbam`` (``"layer1.0.cbam"``). Empty when there is none.

    Raises:
        AdoptError: a block's check failed (its message names every such block), the probe's outputs
            changed, or ``model`` is itself a CBAM block. Nothing was changed.

    Warns:
        AdoptWarning: for each CBAM-like module that matches no option of ``cbam.CBAM`` (left as it is).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"adopt() takes a torch.nn.Module, got {type(model).__name__}")
    found, unfit = _find(model)
    for name, reason in unfit:
        warnings.warn(t("adopt.unfit", name=name, reason=reason), AdoptWarning, stacklevel=2)

    planned, failures = [], []
    for item in found:
        try:
            block, options = _replacement(item)
        except _Failed as error:
            failures.append(t("adopt.failure", block=item.describe(), error=error.args[0]))
            continue
        owner = item.module if not item.in_pieces else item.channel
        device, dtype = _device_and_dtype(owner)
        planned.append((item, block.to(device=device, dtype=dtype).train(owner.training), options))
    if failures:
        raise AdoptError(t("adopt.failed", count=len(failures), failures=_listed(failures, "adopt.failures_also")))

    before = None
    if probe is not None and planned:
        with torch.no_grad(), _evaluating(model):
            before = _tensors(model(probe))
    undo = []
    for item, block, options in planned:
        if item.in_pieces:
            attr = item.name.rsplit(".", 1)[-1]
            setattr(item.module, attr, block)
            undo.append((item.module, attr, None))
            for key, piece in ((item.channel_attr, ChannelPiece(block, options.returns[0])),
                               (item.spatial_attr, SpatialPiece(block, options.returns[1]))):
                undo.append((item.module, key, getattr(item.module, key)))
                setattr(item.module, key, piece)
        else:
            for parent, key in _where(model, item.module):
                undo.append((parent, key, item.module))
                parent._modules[key] = block
    if before is not None:
        with torch.no_grad(), _evaluating(model):
            after = _tensors(model(probe))
        scale = max([1.0] + [float(t.abs().max()) for t in before if t.numel()])
        same = len(after) == len(before) and all(
            a.shape == b.shape and (a.numel() == 0 or float((a - b).abs().max()) <= MODEL_RTOL * scale)
            for a, b in zip(after, before)
        )
        if not same:
            for parent, key, old in reversed(undo):
                if old is None:
                    delattr(parent, key)
                else:
                    parent._modules[key] = old
            raise AdoptError(t("adopt.probe_differs"))
    adopted = {id(block): _implementation(item, block) for item, block, _ in planned}
    return {name: adopted.get(id(m), "cbam") for name, m in model.named_modules() if isinstance(m, CBAM)}
