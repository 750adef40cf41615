"""What tracing costs: ``cbam.trace`` against a plain forward pass of the same block (target ≤ 1.5×).

    python benchmarks/bench_trace.py --device cpu --threads 2
    python benchmarks/bench_trace.py --device cuda

A trace *is* a forward pass of the reference path with a dictionary handed to the block, so against
the reference forward it should cost about 1×: keeping the intermediates alive is all it adds. An
inference-mode forward normally takes the fast path (cbam/fast.py), which tracing cannot use (it
needs the reference path's intermediates), so the trace is also shown against that. Network rows
do the same for ``trace_all`` on a CBAM-ResNet-18 (eight blocks) against ``model(x)``.
All timings in inference mode, interleaved rounds, medians; ratios from the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_module import interleaved, synchronize  # noqa: E402

from cbam import CBAM, fast, trace, trace_all  # noqa: E402
from cbam.models import cbam_resnet18  # noqa: E402


def report(title: str, module: torch.nn.Module, x: torch.Tensor, tracer, device: torch.device, rounds: int, sample_s: float) -> None:
    """Time module(x) on both paths and tracer(module, x); print the medians and the two ratios."""

    def reference():
        with fast.disabled():
            return module(x)

    variants = {"forward, reference path": reference, "forward, fast path": lambda: module(x), tracer.__name__: lambda: tracer(module, x)}
    with torch.inference_mode():
        for fn in variants.values():
            fn()
        synchronize(device)
        samples, _ = interleaved(variants, device, rounds, sample_s)
    plain, quick, traced = (statistics.median(samples[name]) for name in variants)
    best_plain, best_quick, best_traced = (min(samples[name]) for name in variants)
    print(f"\n{title}")
    print(f"  {'':<32}{'median':>12}{'min':>12}")
    for name, times in samples.items():
        print(f"  {name:<32}{statistics.median(times) * 1e3:>9.2f} ms{min(times) * 1e3:>9.2f} ms")
    print(f"  {tracer.__name__ + ' / reference forward':<32}{traced / plain:>11.2f}×{best_traced / best_plain:>11.2f}×   (target ≤ 1.5×)")
    print(f"  {tracer.__name__ + ' / fast forward':<32}{traced / quick:>11.2f}×{best_traced / best_quick:>11.2f}×")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shape", default=None, help="B,C,H,W of the block's input (default 8,256,56,56 CPU, 32,256,56,56 CUDA)")
    parser.add_argument("--image-size", type=int, default=224, help="input size of the network rows")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sample_s = 0.02 if device.type == "cuda" else 0.05
    shape = tuple(int(v) for v in args.shape.split(",")) if args.shape else ((32, 256, 56, 56) if device.type == "cuda" else (8, 256, 56, 56))
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"device {device}{threads}; torch {torch.__version__}")

    torch.manual_seed(0)
    for preset in ("paper", "authors"):
        block = getattr(CBAM, preset)(shape[1]).eval().to(device)
        x = torch.randn(shape, device=device)
        report(f"CBAM.{preset}({shape[1]}) on {shape}", block, x, trace, device, args.rounds, sample_s)

    model = cbam_resnet18(num_classes=1000).eval().to(device)
    # batch 4 on the CPU: the first two stages' activations are then large enough for the fast path
    x = torch.randn(4 if device.type == "cpu" else 32, 3, args.image_size, args.image_size, device=device)
    report(f"cbam_resnet18 on {tuple(x.shape)} (8 CBAM blocks)", model, x, trace_all, device, args.rounds, sample_s)


if __name__ == "__main__":
    main()
