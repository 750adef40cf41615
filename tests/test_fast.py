"""cbam.fast: the inference path gives the reference path's numbers, and is taken only when it may be.

No timings here: benchmarks/bench_module.py measures speed.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cbam import CBAM, fast, trace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fast_path_for_tiny_inputs(monkeypatch):
    """The tests use tiny maps, which the CPU fast path normally leaves to the reference path."""
    monkeypatch.setattr(fast, "CPU_MIN_ELEMENTS", 0)


def randomise(block: CBAM, seed: int = 0) -> CBAM:
    """Random weights, and BatchNorm statistics far from the identity, so every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        bn = block.spatial_attention.bn if block.spatial_attention is not None else None
        if bn is not None:
            bn.running_mean.fill_(0.3)
            bn.running_var.fill_(1.7)
    return block


def reference(block: CBAM, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), fast.disabled():
        return block(x)


def fast_output(block: CBAM, x: torch.Tensor) -> torch.Tensor:
    """block(x) in inference mode, checking that the fast path really ran."""
    before = fast.calls["cpu"]
    with torch.inference_mode():
        out = block(x)
    assert fast.calls["cpu"] == before + 1, fast.unsupported(block, x)
    return out


def assert_close_relative(got: torch.Tensor, expected: torch.Tensor, rtol: float) -> None:
    """Within rtol of the reference, element by element, relative to the output's scale."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol * scale)


CASES = [
    # (preset, C, r, k, shape (B, H, W), extra options)
    ("paper", 32, 16, 7, (2, 9, 11), {}),
    ("paper", 32, 4, 7, (1, 13, 1), {}),  # batch 1, a one-pixel-wide map
    ("blog", 48, 16, 3, (3, 7, 5), {}),
    ("blog", 4, 16, 1, (2, 6, 6), {}),  # C < r: one hidden unit; k = 1
    ("authors", 24, 8, 7, (2, 5, 9), {}),  # MLP bias, [max; avg], BatchNorm (eval)
    ("authors", 16, 4, 3, (2, 8, 8), {"pool_types": ("max",)}),
    ("paper", 16, 4, 5, (2, 7, 7), {"pool_types": ("avg",)}),
    ("paper", 16, 4, 7, (2, 7, 7), {"pool_types": ("max", "avg")}),
    ("blog", 16, 4, 3, (3, 5, 6), {"spatial": False}),  # channel attention only
    ("paper", 64, 16, 7, (2, 96, 97), {}),  # a big sample: the CPU path takes one sample at a time
]


@pytest.mark.parametrize("preset, C, r, k, bhw, options", CASES, ids=[f"{c[0]}-C{c[1]}-r{c[2]}-k{c[3]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "strided"])
def test_fast_path_matches_reference_fp32(preset, C, r, k, bhw, options, layout):
    block = randomise(getattr(CBAM, preset)(C, r, k, **options)).eval()
    B, H, W = bhw
    x = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(1)) * 2 + 0.5
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    elif layout == "strided":  # neither layout: every other channel of a wider map
        x = torch.randn(B, 2 * C, H, W, generator=torch.Generator().manual_seed(1))[:, ::2]
    x_before = x.clone()
    expected = reference(block, x)
    got = fast_output(block, x)
    assert_close_relative(got, expected, rtol=1e-5)
    assert torch.equal(x, x_before)  # the input is left alone
    if layout == "channels_last":
        assert got.is_contiguous(memory_format=torch.channels_last)


def test_small_inputs_take_the_reference_path(monkeypatch):
    monkeypatch.setattr(fast, "CPU_MIN_ELEMENTS", 1 << 18)
    block = CBAM.paper(64, 16).eval()
    with torch.no_grad():
        assert "too small" in fast.unsupported(block, torch.randn(1, 64, 32, 32))
        assert fast.usable(block, torch.randn(4, 64, 32, 32))


def test_groups_of_samples_with_a_remainder(monkeypatch):
    """Tiny maps are processed several samples at a time; the last group may be shorter."""
    block = randomise(CBAM.authors(8, 2, 3)).eval()
    x = torch.randn(7, 8, 4, 4)
    expected = reference(block, x)
    monkeypatch.setattr(fast, "CPU_GROUP_BYTES", 3 * 8 * 4 * 4 * 4)  # 3 samples per group: 3 + 3 + 1
    monkeypatch.setattr(fast, "CPU_MAX_GROUPS_THREADED", 100)  # whatever the number of threads
    assert_close_relative(fast_output(block, x), expected, rtol=1e-5)


@pytest.mark.parametrize("preset", ["paper", "authors", "blog"])
def test_fast_path_bfloat16(preset):
    block = randomise(getattr(CBAM, preset)(32, 8, 7)).eval()
    x = torch.randn(2, 32, 9, 10)
    exact = reference(block, x)
    block_bf16, x_bf16 = block.to(torch.bfloat16), x.to(torch.bfloat16)
    got = fast_output(block_bf16, x_bf16)
    assert got.dtype == torch.bfloat16
    # no worse than the reference path itself computed in bfloat16, measured against float32
    error_ref = (reference(block_bf16, x_bf16).float() - exact).abs().max()
    error_fast = (got.float() - exact).abs().max()
    assert error_fast <= 2 * error_ref + 1e-3


# --------------------------------------------------------------------------------------------
# When the fast path runs, and when it must not
# --------------------------------------------------------------------------------------------


def test_used_under_no_grad_and_inference_mode_and_with_frozen_weights():
    block = CBAM.paper(16, 4).eval()
    x = torch.randn(2, 16, 6, 6)
    before = fast.calls["cpu"]
    with torch.no_grad():
        block(x)
    with torch.inference_mode():
        block(x)
    block.requires_grad_(False)
    out = block(x)  # grad mode on, but nothing requires grad: no graph to build
    assert fast.calls["cpu"] == before + 3
    assert not out.requires_grad


def test_not_used_when_a_graph_is_needed():
    block = CBAM.paper(16, 4).eval()
    x = torch.randn(2, 16, 6, 6)
    before = fast.calls["cpu"]
    out = block(x)  # the parameters require grad
    assert out.requires_grad and fast.unsupported(block, x) == "autograd needs the reference path's graph"
    block.requires_grad_(False)
    out = block(x.requires_grad_())  # the input requires grad
    assert out.requires_grad
    assert fast.calls["cpu"] == before


def test_training_gradients_are_the_reference_paths():
    torch.manual_seed(0)
    block = CBAM.authors(6, 2, 3).double().train()
    x = torch.randn(1, 6, 3, 4, dtype=torch.double, requires_grad=True)
    before = fast.calls["cpu"]
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)
    block.eval()
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-5)
    assert fast.calls["cpu"] == before


def test_tracing_takes_the_reference_path():
    block = randomise(CBAM.paper(16, 4)).eval()
    x = torch.randn(2, 16, 6, 6)
    before = fast.calls["cpu"]
    with torch.no_grad():
        t = trace(block, x)
    assert fast.calls["cpu"] == before
    assert torch.equal(t.out, reference(block, x))
    assert torch.equal(trace(block, x).out, block(x))  # with autograd, as in test_trace.py


@pytest.mark.parametrize(
    "options, reason",
    [
        ({"arrangement": "spatial-channel"}, "arrangement"),
        ({"arrangement": "parallel"}, "arrangement"),
        ({"pool_types": ("avg", "lp")}, "pools"),
        ({"pool_types": ("lse",)}, "pools"),
    ],
)
def test_unsupported_configurations_fall_back(options, reason):
    block = randomise(CBAM(16, 4, 3, **options)).eval()
    x = torch.randn(2, 16, 5, 5)
    before = fast.calls["cpu"]
    with torch.no_grad():
        assert reason in fast.unsupported(block, x)
        out = block(x)
    assert fast.calls["cpu"] == before
    assert torch.equal(out, reference(block, x))


def test_batchnorm_in_training_mode_falls_back_and_updates_its_statistics():
    block = CBAM.authors(16, 4).train()
    x = torch.randn(4, 16, 5, 5)
    with torch.no_grad():
        assert "BatchNorm" in fast.unsupported(block, x)
        block(x)
    assert block.spatial_attention.bn.num_batches_tracked.item() == 1


def test_hooks_fall_back_and_still_fire():
    block = CBAM.paper(16, 4).eval()
    seen = []
    handle = block.spatial_attention.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        with torch.no_grad():
            assert fast.unsupported(block, torch.randn(1, 16, 4, 4)) == "a sub-module has hooks"
            block(torch.randn(1, 16, 4, 4))
    finally:
        handle.remove()
    assert seen == [(1, 16, 4, 4)]
    with torch.no_grad():
        assert fast.usable(block, torch.randn(1, 16, 4, 4))


def test_disabled_forces_the_reference_path_and_restores():
    block = CBAM.paper(16, 4).eval()
    x = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        assert fast.usable(block, x)
        with pytest.raises(KeyError), fast.disabled():
            assert not fast.usable(block, x) and not fast.is_enabled()
            raise KeyError
        assert fast.is_enabled() and fast.usable(block, x)


def test_inputs_the_reference_path_handles_go_there():
    block = CBAM.paper(16, 4).eval()
    with torch.no_grad():
        # wrong channel count or dtype: the reference path raises, as it always did
        assert "channels" in fast.unsupported(block, torch.randn(1, 8, 4, 4))
        with pytest.raises(RuntimeError):
            block(torch.randn(1, 8, 4, 4))
        assert fast.unsupported(block, torch.randn(1, 16, 4, 4, dtype=torch.float64)) is not None
        # meta tensors (shape inference) and autocast
        assert block(torch.empty(2, 16, 4, 4, device="meta")).shape == (2, 16, 4, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert "autocast" in fast.unsupported(block, torch.randn(1, 16, 4, 4))


def test_a_network_uses_the_fast_path_in_eval():
    from cbam.models import cbam_resnet18

    torch.manual_seed(0)
    model = cbam_resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), fast.disabled():
        expected = model(x)
    before = fast.calls["cpu"]
    with torch.inference_mode():
        got = model(x)
    assert fast.calls["cpu"] == before + 8  # every CBAM block
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# The Triton kernels: on a GPU if there is one, else on the CPU through Triton's interpreter
# --------------------------------------------------------------------------------------------

needs_triton = pytest.mark.skipif(not fast.triton_available(), reason="Triton is not installed")

INTERPRETER_CHECK = textwrap.dedent(
    """
    import torch
    from cbam import CBAM, fast
    from tests.test_fast import randomise  # the same random weights as the tests above

    cases = [  # preset, C, r, k, (B, H, W), options, channels_last
        ("paper", 8, 4, 7, (2, 5, 7), {}, False),
        ("authors", 80, 16, 3, (1, 24, 25), {}, False),  # 2 position splits, 2 channel groups
        ("authors", 24, 4, 7, (2, 6, 5), {}, True),
        ("blog", 40, 8, 3, (1, 24, 25), {"pool_types": ("max",)}, True),  # many position splits
        ("blog", 5, 16, 1, (3, 3, 4), {"spatial": False}, False),
        ("paper", 12, 4, 5, (2, 4, 9), {"pool_types": ("avg",)}, False),
    ]
    for i, (preset, C, r, k, (B, H, W), options, channels_last) in enumerate(cases):
        block = randomise(getattr(CBAM, preset)(C, r, k, **options), i).eval()
        x = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(i))
        if channels_last:
            x = x.to(memory_format=torch.channels_last)
        with torch.no_grad():
            with fast.disabled():
                expected = block(x)
            got = fast._triton_forward(block, x)
            scale = expected.abs().max().item()
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)
            assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
            if i < 2:  # bfloat16 against float32, no worse than the reference in bfloat16
                block16, x16 = block.to(torch.bfloat16), x.to(torch.bfloat16)
                with fast.disabled():
                    error_ref = (block16(x16).float() - expected).abs().max()
                error = (fast._triton_forward(block16, x16).float() - expected).abs().max()
                assert error <= 2 * error_ref + 1e-3, (error, error_ref)
    print("ok")
    """
)


@needs_triton
def test_triton_kernels_in_the_interpreter():
    """Runs in a fresh process: TRITON_INTERPRET must be set before the kernels are defined."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    probe = subprocess.run(
        [sys.executable, "-c", "import triton.language, triton.runtime.interpreter"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    if probe.returncode != 0:
        pytest.skip(f"the Triton interpreter cannot run here: {probe.stderr.strip()[-200:]}")
    result = subprocess.run(
        [sys.executable, "-c", INTERPRETER_CHECK], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


@needs_triton
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("preset", ["paper", "authors", "blog"])
def test_triton_path_on_the_gpu(preset, channels_last):
    block = randomise(getattr(CBAM, preset)(64, 16, 7)).eval().cuda()
    x = torch.randn(4, 64, 28, 29, device="cuda")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    expected = reference(block, x)
    before = fast.calls["triton"]
    with torch.inference_mode():
        got = block(x)
    assert fast.calls["triton"] == before + 1
    assert_close_relative(got, expected, rtol=1e-5)
