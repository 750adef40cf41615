"""A fast inference path for CBAM: the numbers of ``CBAM.forward``, with far less memory traffic.

Why CBAM is slow, and what "fast" means here
---------------------------------------------
CBAM computes very little: a few additions, a max and a multiply per element of the feature map F,
plus a tiny MLP and a tiny k×k convolution. Its cost is the memory traffic: how many times the
(B, C, H, W) activation is read or written. The least any implementation can do is four passes:

1. read F to pool each channel over all positions (mean and max): that gives Mc;
2. read F again to pool each position over all channels of F' = Mc ⊗ F (mean and max): Ms needs
   Mc, which needs *all* of pass 1, so the two reads cannot be merged;
3. read F a third time and
4. write F'' = Mc ⊗ Ms ⊗ F, the output.

The straightforward version (``modules.py``, or the blog's) makes about eight passes: F' is written
out and read back twice, F'' again, the pooled maps are concatenated into fresh tensors, and some
PyTorch CPU kernels it leans on (max with indices over channels, adaptive max pooling) are slow.

Two implementations live here, both computing exactly the equations of ``modules.py``:

* **CPU** (``_cpu_forward``): plain PyTorch, no compiler. It works on a few samples at a time, small
  enough that the slice stays in the CPU cache between its passes, so main memory sees about one
  read of F and one write of F''; it writes F' straight into the output buffer and rescales it there
  by Ms, so it allocates nothing of the activation's size but the output (on the CPU each fresh
  activation-sized temporary costs page faults, thousands per call); and it uses only reductions and
  multiplies that PyTorch's CPU kernels do well (not max-with-indices nor adaptive max pooling).
* **CUDA** (``_triton_forward``): Triton kernels that make the four passes and nothing more (plus two
  tiny ones for the MLP and the k×k convolution): F' is never stored, only recomputed where needed.
  Triton is imported only when a CUDA tensor first takes this path; without Triton (or without
  CUDA) the reference path runs instead.

When it is used
---------------
``CBAM.forward`` calls ``forward`` here when ``usable(block, x)`` holds, i.e. only when nothing
would be lost by skipping the reference path:

* no autograd graph is needed (grad mode off, or neither ``x`` nor any parameter requires grad): the
  fast path does not record operations for backward, so training always takes the reference path;
* the block is not being traced (``cbam.trace`` reads the reference path's intermediates);
* the configuration is one it implements: channel-then-spatial (or channel only), "avg"/"max"
  channel pools, BatchNorm only in eval mode (it is then an affine map of the spatial logits);
* no hooks on the sub-modules (they would not fire), no autocast, no ``torch.compile`` tracing,
  matching dtype/device, and a CPU tensor, or a CUDA tensor with Triton installed.

Anything else takes the reference path, silently. ``disabled()`` forces the reference path (for
comparisons and benchmarks), and ``calls`` counts how often each fast path ran.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import modules  # a module object, so that the circular import with modules.py is harmless

if TYPE_CHECKING:
    from .modules import CBAM

__all__ = ["calls", "disabled", "forward", "is_enabled", "set_enabled", "triton_available", "unsupported", "usable"]

# --------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------

_enabled = True

calls: Counter[str] = Counter()
"""How many forward passes each fast path ran: ``calls["cpu"]``, ``calls["triton"]``."""


def is_enabled() -> bool:
    """Whether ``CBAM.forward`` may take the fast path at all (default: True)."""
    return _enabled


def set_enabled(flag: bool) -> None:
    """Allow (True) or forbid (False) the fast path for every CBAM block of this process."""
    global _enabled
    _enabled = bool(flag)


@contextmanager
def disabled() -> Iterator[None]:
    """``with cbam.fast.disabled():`` every CBAM block runs its reference path (not thread-local)."""
    previous = _enabled
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


def _is_compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling and is_compiling())


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("triton") is not None


def unsupported(block: CBAM, x: object) -> str | None:
    """Why ``block(x)`` must take the reference path, or None when the fast path can run it.

    The cheap checks come first: a training step leaves at the autograd test.
    """
    if not _enabled:
        return "the fast path is disabled"
    if _is_compiling():  # torch.compile fuses the reference path itself
        return "torch.compile is tracing the block"
    if modules._record_of(block) is not None:
        return "the block is being traced"
    if torch.is_grad_enabled() and (getattr(x, "requires_grad", False) or any(p.requires_grad for p in block.parameters())):
        return "autograd needs the reference path's graph"
    if type(x) is not torch.Tensor or x.dim() != 4 or not x.is_floating_point() or x.numel() == 0:
        return "the input is not a plain, non-empty floating-point (B, C, H, W) tensor"
    ca, sa = block.channel_attention, block.spatial_attention
    weight = ca.fc1.weight
    if x.shape[1] != ca.channels or x.dtype != weight.dtype or x.device != weight.device:
        return "the input's channels, dtype or device do not match the block's"
    if x.device.type == "cuda":
        if not triton_available():
            return "Triton is not installed"
        if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            return "the Triton kernels take float32, float16 and bfloat16"
        if ca.hidden_channels > MAX_TRITON_HIDDEN:
            return f"the Triton MLP kernel holds at most {MAX_TRITON_HIDDEN} hidden units"
    elif x.device.type != "cpu":
        return f"no fast path for {x.device.type} tensors"
    elif x.numel() < CPU_MIN_ELEMENTS:
        return "the input is too small to gain from the CPU fast path"
    if _autocast_on(x.device.type):
        return "autocast is active"
    if type(ca) is not modules.ChannelAttention or (sa is not None and type(sa) is not modules.SpatialAttention):
        return "the sub-modules are subclasses"
    if sa is not None and block.arrangement != "channel-spatial":
        return f"the {block.arrangement!r} arrangement has no fast path"
    if not set(ca.pool_types) <= {"avg", "max"}:
        return "only the 'avg' and 'max' channel pools have a fast path"
    if sa is not None:
        conv, bn = sa.conv, sa.bn
        if conv.bias is not None or conv.padding_mode != "zeros":
            return "the spatial convolution is not the block's own"
        if bn is not None and (bn.training or not bn.affine or bn.running_mean is None):
            return "BatchNorm in training mode (it updates its statistics) has no fast path"
    if _has_hooks(ca) or (sa is not None and _has_hooks(sa)):
        return "a sub-module has hooks"
    return None


def _has_hooks(module: torch.nn.Module) -> bool:
    """Forward hooks that the fast path would skip: on ``module`` or its layers, or global ones."""
    everywhere = torch.nn.modules.module
    if getattr(everywhere, "_global_forward_hooks", None) or getattr(everywhere, "_global_forward_pre_hooks", None):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in (module, *module._modules.values()) if m is not None)


def usable(block: CBAM, x: object) -> bool:
    """True when ``CBAM.forward`` may hand ``block(x)`` to ``forward`` (see ``unsupported``)."""
    return unsupported(block, x) is None


def forward(block: CBAM, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` through the fast path; the caller checks ``usable(block, x)`` first."""
    if x.device.type == "cuda":
        calls["triton"] += 1
        return _triton_forward(block, x)
    calls["cpu"] += 1
    return _cpu_forward(block, x)


def _matrix_views(x: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """x and out as (B, C, H*W) or, for channels-last memory, (B, H*W, C) views with no copy.

    Returns the two views and whether they are channels-last. Both layouts keep each sample's
    feature map contiguous, so a sample (or a few) is one dense block of memory.
    """
    B, C, H, W = x.shape
    if x.is_contiguous():
        return x.view(B, C, H * W), out.view(B, C, H * W), False
    return x.permute(0, 2, 3, 1).view(B, H * W, C), out.permute(0, 2, 3, 1).view(B, H * W, C), True


def _dense(x: torch.Tensor) -> torch.Tensor:
    """x itself if it is contiguous or channels-last contiguous, else a contiguous copy."""
    if x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last):
        return x
    return x.contiguous()


# --------------------------------------------------------------------------------------------
# CPU: the same PyTorch operations, a few samples at a time, in place
# --------------------------------------------------------------------------------------------

CPU_MIN_ELEMENTS = 1 << 18
"""Smaller inputs take the reference path: they stay in the cache whatever is done, and there the
fast path measured about as fast as the reference (within ~10%, its few extra operations costing
what the saved traffic gains)."""

CPU_GROUP_BYTES = 4 << 20
"""How much of the input the CPU path works on at once: small enough to stay in the cache (L2/L3)
between the passes over it, large enough that small feature maps are not looped over one by one
(each group costs some twenty PyTorch calls)."""

CPU_MAX_GROUPS_THREADED = 2
"""With several threads, each of a group's seven large PyTorch calls is a parallel region that ends
when its slowest thread does; on a machine whose cores are shared, a descheduled thread can hold up
every region for a scheduler time slice. Measured with 2 threads at (8, 256, 56, 56): on busy shared
cores, eight groups (one sample each) made the median 2.7-4.4× slower than two groups; on idle cores
they were 1.27× faster. So with more than one thread the batch is split into at most this many
groups: some cache locality is given up for robustness. (One thread has no such waits.)"""


def _cpu_forward(block: CBAM, x: torch.Tensor) -> torch.Tensor:
    x = _dense(x)
    B, C, H, W = x.shape
    out = torch.empty_like(x)  # keeps x's memory format
    xs, outs, channels_last = _matrix_views(x, out)
    positions, channels = (1, 2) if channels_last else (2, 1)  # axes of the matrix views
    ca, sa = block.channel_attention, block.spatial_attention
    group = max(1, CPU_GROUP_BYTES // (C * H * W * x.element_size()))
    if torch.get_num_threads() > 1:
        group = max(group, -(-B // CPU_MAX_GROUPS_THREADED))
    for start in range(0, B, group):
        xg, og = xs[start : start + group], outs[start : start + group]
        # Mc from each channel's mean and max over the positions: the group of F comes from main
        # memory for the first reduction and stays in the cache for everything below.
        weights = _channel_weights(ca, xg, positions)  # (G, C)
        # F' = Mc ⊗ F, written straight into the output buffer: no temporary to allocate.
        torch.mul(xg, weights.unsqueeze(positions), out=og)
        if sa is not None:
            # Ms from F' pooled over the channels at each position (F' read back from the cache).
            mask = _spatial_mask(sa, og, channels, H, W)  # (G, H*W)
            # F'' = Ms ⊗ F', in place; main memory sees this group once more, when it is evicted.
            og.mul_(mask.unsqueeze(channels))
    return out


def _channel_weights(ca: modules.ChannelAttention, xg: torch.Tensor, positions: int) -> torch.Tensor:
    """Mc for a group of samples, as ``ChannelAttention.weights``: σ(Σ_pool W1 ReLU(W0 pool(F)))."""
    n = xg.shape[positions]
    # sum then divide: PyTorch's CPU sum is faster than its mean over the same axis
    pools = {"avg": lambda: torch.sum(xg, positions).div_(n), "max": lambda: torch.amax(xg, positions)}
    descriptors = torch.stack([pools[p]() for p in ca.pool_types])  # (P, G, C)
    logits = ca.fc2(F.relu(ca.fc1(descriptors))).sum(dim=0)  # the shared MLP, run once on all pools
    return torch.sigmoid(logits)


def _spatial_mask(sa: modules.SpatialAttention, f1: torch.Tensor, channels: int, H: int, W: int) -> torch.Tensor:
    """Ms for a group of samples, as ``SpatialAttention.mask`` on F' (here ``f1``), flattened to (G, H*W)."""
    spatial_avg = torch.sum(f1, channels).div_(f1.shape[channels])  # F^s_avg
    spatial_max = torch.amax(f1, channels)  # F^s_max
    maps = (spatial_avg, spatial_max) if sa.pool_order == "avg-max" else (spatial_max, spatial_avg)
    logits = sa.conv(torch.stack(maps, dim=1).view(-1, 2, H, W))
    if sa.bn is not None:
        logits = sa.bn(logits)  # eval mode: an affine map with the running statistics
    return torch.sigmoid(logits).view(-1, H * W)


# --------------------------------------------------------------------------------------------
# CUDA: Triton kernels, four passes
# --------------------------------------------------------------------------------------------
#
# Every kernel sees the input as a (B, C, P) array, P = H*W positions, through three strides, so
# one kernel serves both memory layouts: (C*P, P, 1) for NCHW and (P*C, 1, C) for channels-last.
# Pooled values, Mc and the two spatial maps are kept in float32 whatever the input's dtype.
#
#   channel_pool   pass 1  (B, C/BC, S) programs: partial sum and max of F over a slice of P
#   channel_mlp            (B,) programs: finishes the pools, runs the shared MLP, σ -> Mc (B, C)
#   spatial_pool   pass 2  (B, P/BP) programs: mean and max over C of Mc ⊗ F -> maps (B, 2, P)
#   spatial_mask           (B, P/256) programs: k×k conv of the maps (+BatchNorm), σ -> Ms (B, P)
#   apply          pass 3+4 (B, P/BP, C/BC) programs: F'' = (Mc ⊗ F) ⊗ Ms, read once, written once

_KERNELS: dict[str, object] = {}
MAX_TRITON_HIDDEN = 1024  # the MLP kernel keeps the whole hidden layer in registers


def _triton_kernels() -> dict[str, object]:
    """Import Triton and define the kernels, once. Nothing here runs unless a CUDA input (or the
    Triton interpreter, in the tests) takes the fast path."""
    if _KERNELS:
        return _KERNELS
    global triton, tl  # module-level names, so that Triton's compiler resolves them as globals
    import triton
    import triton.language as tl

    @triton.jit
    def channel_pool(x_ptr, sum_ptr, max_ptr, C, P, stride_b, stride_c, stride_p, chunk,
                     BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
        b, cb, s = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        c_ok = c < C
        rows = x_ptr + b.to(tl.int64) * stride_b + c[:, None].to(tl.int64) * stride_c
        total = tl.zeros([BLOCK_C, BLOCK_P], tl.float32)
        best = tl.full([BLOCK_C, BLOCK_P], float("-inf"), tl.float32)
        for p0 in range(0, chunk, BLOCK_P):  # this program's slice of the positions
            p = s * chunk + p0 + tl.arange(0, BLOCK_P)
            ok = c_ok[:, None] & (p[None, :] < P)
            v = tl.load(rows + p[None, :] * stride_p, mask=ok, other=0.0).to(tl.float32)
            total += v
            best = tl.maximum(best, tl.where(ok, v, float("-inf")))
        at = (b * tl.num_programs(2) + s) * C + c  # partial results, (B, S, C)
        tl.store(sum_ptr + at, tl.sum(total, axis=1), mask=c_ok)
        tl.store(max_ptr + at, tl.max(best, axis=1), mask=c_ok)

    @triton.jit
    def channel_mlp(sum_ptr, max_ptr, w0_ptr, b0_ptr, w1_ptr, b1_ptr, weights_ptr, C, HIDDEN, SPLITS, inv_p,
                    HAS_AVG: tl.constexpr, HAS_MAX: tl.constexpr, HAS_BIAS: tl.constexpr, BRANCHES: tl.constexpr,
                    BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr):
        b = tl.program_id(0)
        j = tl.arange(0, BLOCK_H)
        j_ok = j < HIDDEN
        h_avg = tl.zeros([BLOCK_H], tl.float32)
        h_max = tl.zeros([BLOCK_H], tl.float32)
        # W0 · pool, one block of channels at a time; the pools are finished here from the partials.
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            c_ok = c < C
            w0 = tl.load(w0_ptr + j[:, None] * C + c[None, :], mask=j_ok[:, None] & c_ok[None, :], other=0.0)
            w0 = w0.to(tl.float32)
            if HAS_AVG:
                total = tl.zeros([BLOCK_C], tl.float32)
                for s in range(SPLITS):
                    total += tl.load(sum_ptr + (b * SPLITS + s) * C + c, mask=c_ok, other=0.0)
                h_avg += tl.sum(w0 * (total * inv_p)[None, :], axis=1)
            if HAS_MAX:
                best = tl.full([BLOCK_C], float("-inf"), tl.float32)
                for s in range(SPLITS):
                    best = tl.maximum(best, tl.load(max_ptr + (b * SPLITS + s) * C + c, mask=c_ok, other=0.0))
                h_max += tl.sum(w0 * best[None, :], axis=1)
        if HAS_BIAS:
            b0 = tl.load(b0_ptr + j, mask=j_ok, other=0.0).to(tl.float32)
            h_avg += b0
            h_max += b0
        # ReLU per branch, then W1 once: W1 h_avg + W1 h_max = W1 (h_avg + h_max).
        hidden = tl.zeros([BLOCK_H], tl.float32)
        if HAS_AVG:
            hidden += tl.maximum(h_avg, 0.0)
        if HAS_MAX:
            hidden += tl.maximum(h_max, 0.0)
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            c_ok = c < C
            w1 = tl.load(w1_ptr + c[:, None] * HIDDEN + j[None, :], mask=c_ok[:, None] & j_ok[None, :], other=0.0)
            logits = tl.sum(w1.to(tl.float32) * hidden[None, :], axis=1)
            if HAS_BIAS:  # each branch adds W1's bias once
                logits += BRANCHES * tl.load(b1_ptr + c, mask=c_ok, other=0.0).to(tl.float32)
            tl.store(weights_ptr + b * C + c, 1.0 / (1.0 + tl.exp(-logits)), mask=c_ok)

    @triton.jit
    def spatial_pool(x_ptr, weights_ptr, maps_ptr, C, P, stride_b, stride_c, stride_p, inv_c,
                     AVG_FIRST: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
        b, pb = tl.program_id(0), tl.program_id(1)
        p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
        p_ok = p < P
        sample = x_ptr + b.to(tl.int64) * stride_b
        total = tl.zeros([BLOCK_C, BLOCK_P], tl.float32)
        best = tl.full([BLOCK_C, BLOCK_P], float("-inf"), tl.float32)
        for c0 in range(0, C, BLOCK_C):
            c = c0 + tl.arange(0, BLOCK_C)
            c_ok = c < C
            ok = c_ok[:, None] & p_ok[None, :]
            v = tl.load(sample + c[:, None] * stride_c + p[None, :] * stride_p, mask=ok, other=0.0)
            mc = tl.load(weights_ptr + b * C + c, mask=c_ok, other=0.0)
            f1 = v.to(tl.float32) * mc[:, None]  # F' = Mc ⊗ F, in registers only
            total += f1
            best = tl.maximum(best, tl.where(ok, f1, float("-inf")))
        avg = tl.sum(total, axis=0) * inv_c
        mx = tl.max(best, axis=0)
        maps = maps_ptr + b * 2 * P + p  # the two maps in the order the convolution expects
        if AVG_FIRST:
            tl.store(maps, avg, mask=p_ok)
            tl.store(maps + P, mx, mask=p_ok)
        else:
            tl.store(maps, mx, mask=p_ok)
            tl.store(maps + P, avg, mask=p_ok)

    @triton.jit
    def spatial_mask(maps_ptr, conv_ptr, bn_mean_ptr, bn_var_ptr, bn_weight_ptr, bn_bias_ptr, mask_ptr, H, W, bn_eps,
                     KSIZE: tl.constexpr, HAS_BN: tl.constexpr, BLOCK_P: tl.constexpr):
        b, pb = tl.program_id(0), tl.program_id(1)
        P = H * W
        p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
        p_ok = p < P
        row, col = p // W, p % W
        # the k×k convolution of the two maps, zero padded to keep H × W
        logits = tl.zeros([BLOCK_P], tl.float32)
        for i in tl.static_range(KSIZE):
            for j in tl.static_range(KSIZE):
                r = row + (i - KSIZE // 2)
                q = col + (j - KSIZE // 2)
                inside = p_ok & (r >= 0) & (r < H) & (q >= 0) & (q < W)
                for m in tl.static_range(2):
                    v = tl.load(maps_ptr + (b * 2 + m) * P + r * W + q, mask=inside, other=0.0)
                    logits += v * tl.load(conv_ptr + (m * KSIZE + i) * KSIZE + j).to(tl.float32)
        if HAS_BN:  # eval-mode BatchNorm: (z - mean) / sqrt(var + eps) * gamma + beta
            mean, var = tl.load(bn_mean_ptr).to(tl.float32), tl.load(bn_var_ptr).to(tl.float32)
            gamma, beta = tl.load(bn_weight_ptr).to(tl.float32), tl.load(bn_bias_ptr).to(tl.float32)
            logits = (logits - mean) / tl.sqrt(var + bn_eps) * gamma + beta
        tl.store(mask_ptr + b * P + p, 1.0 / (1.0 + tl.exp(-logits)), mask=p_ok)

    @triton.jit
    def apply(x_ptr, weights_ptr, mask_ptr, out_ptr, C, P, stride_b, stride_c, stride_p,
              HAS_SPATIAL: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
        b, pb, cb = tl.program_id(0), tl.program_id(1), tl.program_id(2)
        p = pb * BLOCK_P + tl.arange(0, BLOCK_P)
        c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        p_ok, c_ok = p < P, c < C
        ok = c_ok[:, None] & p_ok[None, :]
        at = b.to(tl.int64) * stride_b + c[:, None] * stride_c + p[None, :] * stride_p
        v = tl.load(x_ptr + at, mask=ok, other=0.0).to(tl.float32)
        mc = tl.load(weights_ptr + b * C + c, mask=c_ok, other=0.0)
        f2 = v * mc[:, None]  # F' = Mc ⊗ F
        if HAS_SPATIAL:
            f2 = f2 * tl.load(mask_ptr + b * P + p, mask=p_ok, other=0.0)[None, :]  # F'' = Ms ⊗ F'
        tl.store(out_ptr + at, f2.to(out_ptr.dtype.element_ty), mask=ok)

    _KERNELS.update(
        channel_pool=channel_pool, channel_mlp=channel_mlp, spatial_pool=spatial_pool, spatial_mask=spatial_mask, apply=apply
    )
    return _KERNELS


@functools.cache
def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 4  # the Triton interpreter: any small number of programs will do
    return torch.cuda.get_device_properties(device).multi_processor_count


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _triton_forward(block: CBAM, x: torch.Tensor) -> torch.Tensor:
    k = _triton_kernels()
    x = _dense(x)
    B, C, H, W = x.shape
    P = H * W
    out = torch.empty_like(x)  # keeps x's memory format, so it has x's strides
    channels_last = not x.is_contiguous()
    # strides of the (B, C, P) array; `out` has the same ones
    stride_b, stride_c, stride_p = (P * C, 1, C) if channels_last else (C * P, P, 1)
    ca, sa = block.channel_attention, block.spatial_attention
    f32 = dict(device=x.device, dtype=torch.float32)
    enough = 4 * _sm_count(x.device)  # programs needed to keep every SM busy
    # Tiles run along the contiguous axis: positions for NCHW, channels for channels-last.
    tile_c, tile_p = (64, 32) if channels_last else (4, 512)

    # Pass 1: channel pools, split over the positions when B * C alone gives too few programs.
    c_blocks = _cdiv(C, tile_c)
    splits = max(1, min(_cdiv(P, tile_p), _cdiv(enough, B * c_blocks)))
    chunk = _cdiv(_cdiv(P, splits), tile_p) * tile_p
    splits = _cdiv(P, chunk)
    partial_sum, partial_max = torch.empty(2, B, splits, C, **f32)
    k["channel_pool"][(B, c_blocks, splits)](
        x, partial_sum, partial_max, C, P, stride_b, stride_c, stride_p, chunk, BLOCK_C=tile_c, BLOCK_P=tile_p
    )

    # The shared MLP and σ, one program per sample: Mc as float32 (B, C).
    weights = torch.empty(B, C, **f32)
    hidden = ca.hidden_channels
    block_h = triton.next_power_of_2(hidden)
    bias = ca.fc1.bias is not None
    k["channel_mlp"][(B,)](
        partial_sum, partial_max, ca.fc1.weight, ca.fc1.bias if bias else ca.fc1.weight,
        ca.fc2.weight, ca.fc2.bias if bias else ca.fc2.weight, weights, C, hidden, splits, 1.0 / P,
        HAS_AVG="avg" in ca.pool_types, HAS_MAX="max" in ca.pool_types, HAS_BIAS=bias, BRANCHES=len(ca.pool_types),
        BLOCK_C=max(1, min(128, 4096 // block_h)), BLOCK_H=block_h,
    )

    # Pass 2: the two spatial maps of F' = Mc ⊗ F, without writing F'; then Ms from them.
    mask = weights  # a placeholder, never read, when there is no spatial step
    if sa is not None:
        maps = torch.empty(B, 2, P, **f32)
        pool_c, pool_p = (64, 32) if channels_last else (16, 128)
        while pool_p > 32 and B * _cdiv(P, pool_p) < enough:
            pool_p //= 2
        k["spatial_pool"][(B, _cdiv(P, pool_p))](
            x, weights, maps, C, P, stride_b, stride_c, stride_p, 1.0 / C,
            AVG_FIRST=sa.pool_order == "avg-max", BLOCK_C=pool_c, BLOCK_P=pool_p,
        )
        mask = torch.empty(B, P, **f32)
        bn = sa.bn
        bn_params = [bn.running_mean, bn.running_var, bn.weight, bn.bias] if bn is not None else [maps] * 4
        k["spatial_mask"][(B, _cdiv(P, 256))](
            maps, sa.conv.weight, *bn_params, mask, H, W, bn.eps if bn is not None else 0.0,
            KSIZE=sa.kernel_size, HAS_BN=bn is not None, BLOCK_P=256,
        )

    # Passes 3 and 4: F'' = (Mc ⊗ F) ⊗ Ms, read once, written once.
    apply_c, apply_p = (64, 32) if channels_last else (8, 512)
    k["apply"][(B, _cdiv(P, apply_p), _cdiv(C, apply_c))](
        x, weights, mask, out, C, P, stride_b, stride_c, stride_p,
        HAS_SPATIAL=sa is not None, BLOCK_C=apply_c, BLOCK_P=apply_p,
    )
    return out
