"""Every intermediate of a CBAM forward pass, recorded by the forward pass itself.

``trace(block, x)`` runs ``block(x)`` once, with a dictionary handed to the block for the length of
that call; ``ChannelAttention.weights``, ``SpatialAttention.mask`` and ``CBAM.forward`` put each
tensor they compute into it. So ``trace(block, x).out`` *is* ``block(x)``, bit for bit: nothing is
computed twice, and nothing here knows the equations.

``trace_all(model, x)`` does the same for every CBAM block inside a network, in one forward pass.
Neither leaves anything behind on the model: no hooks, no attributes, no change to its mode; and
since the records live in a per-thread context, several threads may trace one shared model at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
from torch import nn

from .modules import _RECORDS, CBAM, ChannelAttention, SpatialAttention, _check_finite, _clock

__all__ = ["CBAMTrace", "trace", "trace_all", "cbam_blocks"]


@dataclass
class CBAMTrace:
    """The intermediates of one CBAM forward pass. Tensors are batch-first.

    Notation as in the paper (arXiv 1807.06521): F is the input, Mc the channel attention map,
    Ms the spatial attention map. Fields of a pooling the block does not use are None, as are the
    spatial fields of a block without spatial attention.
    """

    x: torch.Tensor
    """F, the input feature map, (B, C, H, W)."""
    avg_pool: torch.Tensor | None
    """F^c_avg, each channel's mean over all positions, (B, C)."""
    max_pool: torch.Tensor | None
    """F^c_max, each channel's maximum over all positions, (B, C)."""
    mlp_hidden_avg: torch.Tensor | None
    """ReLU(W0 F^c_avg), the shared MLP's hidden layer on the average descriptor, (B, C/r)."""
    mlp_hidden_max: torch.Tensor | None
    """ReLU(W0 F^c_max), the hidden layer on the max descriptor, (B, C/r)."""
    mlp_avg: torch.Tensor | None
    """MLP(F^c_avg) = W1 ReLU(W0 F^c_avg), (B, C)."""
    mlp_max: torch.Tensor | None
    """MLP(F^c_max) = W1 ReLU(W0 F^c_max), (B, C)."""
    channel_logits: torch.Tensor
    """MLP(F^c_avg) + MLP(F^c_max) (plus any other pooling's branch), before the sigmoid, (B, C)."""
    channel_weights: torch.Tensor
    """Mc = σ(channel_logits), the channel weights in (0, 1), (B, C)."""
    x_channel: torch.Tensor
    """The channel attention module's output, (B, C, H, W). In the paper's arrangement this is
    F' = Mc(F) ⊗ F; spatial-first it is the block's output; in parallel, Mc(F) ⊗ F."""
    spatial_avg: torch.Tensor | None
    """F^s_avg, the mean over channels at each position, (B, 1, H, W)."""
    spatial_max: torch.Tensor | None
    """F^s_max, the maximum over channels at each position, (B, 1, H, W)."""
    spatial_logits: torch.Tensor | None
    """f^{k×k}([F^s_avg; F^s_max]) (then BatchNorm, if the block has it), before the sigmoid, (B, 1, H, W)."""
    spatial_mask: torch.Tensor | None
    """Ms = σ(spatial_logits), the spatial mask in (0, 1), (B, 1, H, W)."""
    out: torch.Tensor
    """F'', the block's output, (B, C, H, W)."""
    x_spatial: torch.Tensor | None = None
    """Ms ⊗ (spatial module's input), only for the spatial-first and parallel arrangements."""
    extra_pools: dict[str, dict[str, torch.Tensor]] | None = None
    """The authors' 'lp' and 'lse' branches when used: {pool: {"pool", "mlp_hidden", "mlp"}}."""
    milliseconds: dict[str, float] | None = None
    """How long this forward pass took: "whole block" and, where the block ran them as steps,
    "channel attention" and "spatial attention" (measured by the modules while traced)."""

    @classmethod
    def _from_record(cls, record: dict) -> CBAMTrace:
        extra = {
            pool: {
                "pool": record[f"{pool}_pool"],
                "mlp_hidden": record[f"mlp_hidden_{pool}"],
                "mlp": record[f"mlp_{pool}"],
            }
            for pool in ("lp", "lse")
            if f"{pool}_pool" in record
        }
        names = [f.name for f in fields(cls) if f.name not in ("extra_pools", "milliseconds")]
        return cls(**{name: record.get(name) for name in names}, extra_pools=extra or None,
                   milliseconds=record.get("milliseconds"))

    def arrays(self) -> dict[str, object]:
        """The fields as NumPy arrays on the CPU (None fields left out), e.g. for ``numpy.savez``."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                out[f.name] = value.detach().float().cpu().numpy()
            elif f.name == "extra_pools" and value:
                for pool, parts in value.items():
                    for part, tensor in parts.items():
                        out[f"{pool}_{part}"] = tensor.detach().float().cpu().numpy()
        return out


def cbam_blocks(model: nn.Module) -> list[tuple[str, CBAM]]:
    """Every CBAM block of ``model`` with its module path (e.g. ``"layer3.1.cbam"``), in forward order
    of registration. A bare ``CBAM`` passed in is returned as ``[("", model)]``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, CBAM)]


@contextmanager
def _recording(modules: list[tuple[str, nn.Module]]) -> Iterator[dict[str, dict]]:
    """For the duration of the ``with``, give each module (and its attention sub-modules, which
    write into the same record) a fresh record, visible to this thread only (see modules._RECORDS)."""
    records: dict[str, dict] = {}
    by_module = dict(_RECORDS.get() or {})
    for name, module in modules:
        parts = [module, getattr(module, "channel_attention", None), getattr(module, "spatial_attention", None)]
        if id(module) in by_module:
            raise RuntimeError(f"CBAM block {name!r} is already being traced")
        records[name] = {}
        for part in parts:
            if part is not None:
                by_module[id(part)] = records[name]
    token = _RECORDS.set(by_module)
    try:
        yield records
    finally:
        _RECORDS.reset(token)


def trace(module: CBAM | ChannelAttention | SpatialAttention, x: torch.Tensor) -> CBAMTrace:
    """Run ``module(x)`` once and return every intermediate of that forward pass.

    ``module`` is a ``CBAM`` block (a lone ``ChannelAttention`` or ``SpatialAttention`` is wrapped
    so that the same fields are filled). ``torch.equal(trace(m, x).out, m(x))`` holds: the trace is
    the forward pass. Gradients flow through the traced tensors as through the output.
    """
    _check_finite(x)
    if isinstance(module, (ChannelAttention, SpatialAttention)):
        return _trace_submodule(module, x)
    if not isinstance(module, CBAM):
        raise TypeError(f"trace() takes a CBAM block, got {type(module).__name__}; use trace_all() for networks")
    with _recording([("", module)]) as records:
        start = _clock(x)
        out = module(x)
        records[""].setdefault("milliseconds", {})["whole block"] = (_clock(out) - start) * 1000
    return CBAMTrace._from_record(records[""])


def _trace_submodule(module: ChannelAttention | SpatialAttention, x: torch.Tensor) -> CBAMTrace:
    with _recording([("", module)]) as records:
        out = module(x)
    record = records[""]
    record["x"] = x
    record["out"] = out
    if isinstance(module, ChannelAttention):
        record["x_channel"] = out
    else:
        record["x_spatial"] = out
        record["x_channel"] = x
        record.setdefault("channel_logits", None)
        record.setdefault("channel_weights", None)
    return CBAMTrace._from_record(record)


def trace_all(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, CBAMTrace]]:
    """Run ``model(x)`` once; return its output and a ``CBAMTrace`` for every CBAM block in it.

    The traces are keyed by module path (``"layer1.0.cbam"``), in the order the blocks ran. A block
    that runs more than once in a forward pass keeps the trace of its last call.
    """
    _check_finite(x)
    blocks = cbam_blocks(model)
    with _recording(blocks) as records:
        output = model(x)
    ran = [name for name, _ in blocks if records[name]]
    return output, {name: CBAMTrace._from_record(records[name]) for name in ran}
