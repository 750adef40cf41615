"""CBAM module throughput: the blog module vs ours (reference and fast path) vs torch.compile(blog).

    python benchmarks/bench_module.py --device cpu --threads 2      # (8, 256, 56, 56), fp32 and bf16
    python benchmarks/bench_module.py --device cuda                 # three shapes, fp32 and bf16, < 3 min

CBAM is memory-bound, so every time is also shown against the *four-pass floor*: four times the
input's bytes (read F for the channel pools, read it for the spatial pools, read it and write F'')
at the copy bandwidth this run measures on the same device (bytes read + written by a large copy,
per second). "× floor" is the time over that floor; "vs blog" is the blog's time over the time
(a speed-up). All ratios come from this one run: the variants are timed in interleaved rounds, so
a noisy neighbour slows them alike, and the median over rounds is reported.

Every variant runs the same weights (the blog module copies ours), and the outputs are compared
before anything is timed. Variants:

* blog                : benchmarks/blog_cbam.py, the blog's module as it is written;
* ours-reference      : ``cbam.CBAM.blog`` with the fast path disabled (the equations of modules.py);
* ours-fast           : the same block in inference mode, which takes ``cbam.fast``'s path;
* torch.compile(blog) : the blog module through ``torch.compile`` (default mode);
* torch.compile(ours) : our block through ``torch.compile``, which compiles its reference path (the
                        opt-in way to fuse it; on by default on the CPU only, see --compile-ours);
* ours-fast graph     : CUDA only, ours-fast replayed from a CUDA graph, i.e. the kernels alone,
                        without Python's launch overhead.
"""

from __future__ import annotations

import argparse
import functools
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from blog_cbam import BlogCBAM  # noqa: E402

from cbam import CBAM, fast  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT_SHAPES = {
    "cpu": [(8, 256, 56, 56)],
    "cuda": [(32, 256, 56, 56), (64, 512, 28, 28), (16, 64, 224, 224)],
}


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], object], device: torch.device, calls: int) -> float:
    """Seconds per call, over ``calls`` back-to-back calls (CUDA events on a GPU)."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000 / calls
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def calls_for(fn: Callable[[], object], device: torch.device, target_s: float) -> int:
    """How many back-to-back calls make one timed sample of about ``target_s`` seconds."""
    seconds = time_once(fn, device, 1)
    return max(1, min(1000, int(target_s / max(seconds, 1e-7))))


def minor_faults() -> int:
    """Page faults this process has taken that needed no disk: mostly fresh memory touched first."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(variants: dict[str, Callable[[], object]], device: torch.device, rounds: int,
                target_s: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per call of each variant, ``rounds`` samples each, the variants taking turns; and the
    page faults per timed call of each.

    Each sample follows one untimed call of the same variant: the first call after another
    variant pays for that variant's leftovers (on the CPU, memory the allocator handed back to the
    system and must fault in again), which would otherwise be charged to whoever runs next.

    On the CPU, the page faults explain much of the blog module's spread: PyTorch's CPU allocator
    keeps nothing, so each activation-sized temporary is fresh memory from glibc, which either reuses
    its heap (few faults) or maps new pages (one fault per 4 KB page touched); which of the two a
    process gets depends on its history, so the same module can take 7 ms in one process and 20 ms in
    the next. Compare variants within one run.
    """
    counts = {name: calls_for(fn, device, target_s) for name, fn in variants.items()}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    faults = dict.fromkeys(variants, 0)
    for _ in range(rounds):
        for name, fn in variants.items():
            fn()
            before = minor_faults()
            samples[name].append(time_once(fn, device, counts[name]))
            faults[name] += minor_faults() - before
    return samples, {name: faults[name] / (rounds * counts[name]) for name in variants}


def copy_bandwidth(device: torch.device, megabytes: int, rounds: int) -> float:
    """Bytes read + written per second by ``dst.copy_(src)`` of a large float32 tensor."""
    src = torch.rand(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    synchronize(device)
    best = min(time_once(lambda: dst.copy_(src), device, 5 if device.type == "cuda" else 1) for _ in range(rounds))
    return 2 * src.numel() * src.element_size() / best


# --------------------------------------------------------------------------------------------
# One shape and dtype
# --------------------------------------------------------------------------------------------


def build(shape: tuple[int, int, int, int], dtype: torch.dtype, device: torch.device) -> tuple[CBAM, BlogCBAM, torch.Tensor]:
    torch.manual_seed(0)
    ours = CBAM.blog(shape[1])  # the blog's own configuration: r = 16, k = 3, no bias, [avg; max]
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.2)
    ours = ours.eval().to(device=device, dtype=dtype)
    blog = BlogCBAM.from_cbam(ours).eval()
    x = torch.randn(shape, device=device).to(dtype)
    return ours, blog, x


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


def bench_case(shape, dtype_name: str, device: torch.device, args, bandwidth: float) -> list[dict]:
    dtype = DTYPES[dtype_name]
    ours, blog, x = build(shape, dtype, device)

    def reference():
        with fast.disabled():
            return ours(x)

    variants: dict[str, Callable[[], object]] = {"blog": lambda: blog(x), "ours-reference": reference, "ours-fast": lambda: ours(x)}
    notes: dict[str, str] = {}
    with torch.inference_mode():
        expected = reference()
        before = sum(fast.calls.values())
        got = ours(x)
        notes["ours-fast"] = "fast path used" if sum(fast.calls.values()) > before else f"NOT USED: {fast.unsupported(ours, x)}"
        errors = {"blog": relative_error(blog(x), expected), "ours-reference": 0.0, "ours-fast": relative_error(got, expected)}
        to_compile = {"torch.compile(blog)": blog} if args.compile else {}
        if args.compile_ours:  # the opt-in for our block: torch.compile fuses its reference path
            to_compile["torch.compile(ours)"] = ours
        for name, module in to_compile.items():
            try:
                torch._dynamo.reset()  # a fresh compilation per case: no recompile limits, no stale guards
                compiled = torch.compile(module)
                errors[name] = relative_error(compiled(x), expected)
                variants[name] = functools.partial(compiled, x)
            except Exception as error:  # no compiler, unsupported platform, ...
                notes[name] = f"unavailable: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
        if device.type == "cuda" and args.graph:
            graph = torch.cuda.CUDAGraph()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    ours(x)
            torch.cuda.current_stream().wait_stream(stream)
            with torch.cuda.graph(graph):
                graph_out = ours(x)
            graph.replay()
            errors["ours-fast graph"] = relative_error(graph_out, expected)
            variants["ours-fast graph"] = graph.replay
        for fn in variants.values():  # warm up (compilation, caches, allocator)
            fn()
        synchronize(device)
        samples, faults = interleaved(variants, device, args.rounds, args.sample_seconds)

    floor = 4 * x.numel() * x.element_size() / bandwidth
    blog_time, blog_best = statistics.median(samples["blog"]), min(samples["blog"])
    rows = []
    for name, times in samples.items():
        median = statistics.median(times)
        rows.append(dict(
            shape=shape, dtype=dtype_name, variant=name, median_ms=median * 1e3, min_ms=min(times) * 1e3,
            vs_blog=blog_time / median, vs_blog_best=blog_best / min(times), vs_floor=median / floor, floor_ms=floor * 1e3,
            rel_error=errors.get(name, float("nan")), faults=faults[name], note=notes.get(name, ""),
        ))
    for name, note in notes.items():
        if name not in samples:
            rows.append(dict(shape=shape, dtype=dtype_name, variant=name, note=note, floor_ms=floor * 1e3))
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"  {'variant':<21}{'median ms':>10}{'min ms':>9}{'vs blog':>9}{'(min)':>8}{'× floor':>9}{'max rel err':>13}"
              f"{'faults/call':>12}  note")
    current = None
    for row in rows:
        key = (row["shape"], row["dtype"])
        if key != current:
            current = key
            print(f"\n{tuple(row['shape'])} {row['dtype']}: four-pass floor {row['floor_ms']:.3f} ms")
            print(header)
        if "median_ms" not in row:
            print(f"  {row['variant']:<21}{'-':>10}{'-':>9}{'-':>9}{'-':>8}{'-':>9}{'-':>13}{'-':>12}  {row['note']}")
            continue
        print(
            f"  {row['variant']:<21}{row['median_ms']:>10.3f}{row['min_ms']:>9.3f}{row['vs_blog']:>8.2f}×{row['vs_blog_best']:>7.2f}×"
            f"{row['vs_floor']:>8.2f}×{row['rel_error']:>13.1e}{row['faults']:>12.0f}  {row['note']}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    parser.add_argument("--shapes", nargs="*", default=None, help="B,C,H,W ... (default: per device)")
    parser.add_argument("--dtypes", nargs="*", default=["fp32", "bf16"], choices=sorted(DTYPES))
    parser.add_argument("--rounds", type=int, default=None, help="timed samples per variant (default 7 CPU, 10 CUDA)")
    parser.add_argument("--sample-seconds", type=float, default=None, help="length of one timed sample")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile(blog)")
    parser.add_argument("--compile-ours", action=argparse.BooleanOptionalAction, default=None,
                        help="also time torch.compile(ours) (default: on for CPU, off for CUDA to stay under 3 min)")
    parser.add_argument("--no-graph", dest="graph", action="store_false", help="skip the CUDA-graph replay")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else DEFAULT_SHAPES[device.type]
    args.rounds = args.rounds or (10 if device.type == "cuda" else 7)
    if args.compile_ours is None:
        args.compile_ours = device.type == "cpu"
    args.sample_seconds = args.sample_seconds or (0.02 if device.type == "cuda" else 0.05)

    bandwidth = copy_bandwidth(device, 1024 if device.type == "cuda" else 256, rounds=10)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    triton = "Triton available" if fast.triton_available() else "no Triton"
    print(f"{name}{threads}; torch {torch.__version__}; {triton}")
    print(f"copy bandwidth (read + write): {bandwidth / 1e9:.1f} GB/s")

    start = time.perf_counter()
    rows = []
    for shape in shapes:
        for dtype_name in args.dtypes:
            rows += bench_case(shape, dtype_name, device, args, bandwidth)
    print_table(rows)
    print(f"\n(vs blog: the blog's median time / the variant's; (min): the same for the fastest samples, which a busy "
          f"machine disturbs least; × floor: the variant's median / the four-pass floor; {args.rounds} interleaved "
          f"rounds; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
