#!/usr/bin/env bash
# The CUDA checks of issue #6, as one script for a lent GPU machine (Python with torch and Triton
# preinstalled; no Streamlit, no internet). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # about 4 minutes on an H100
#
# It writes its logs to $OUT (or ./artifacts/gpu when $OUT is unset) and prints a summary:
#   1. the fast path's CUDA tests (Triton kernels against the reference, fp32/bf16, gradients);
#   2. module throughput: blog vs ours vs torch.compile, as ratios to the four-pass floor;
#   3. the cost of tracing against a plain forward.
set -u
py="${PYTHON:-python}"  # the interpreter with torch (PYTHON=.venv/bin/python here)
out="${OUT:-artifacts/gpu}"
mkdir -p "$out"
"$py" - <<'PY' | tee "$out/device.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
try:
    import triton
    print("triton", triton.__version__)
except ImportError:
    print("triton missing")
PY
status=0
if "$py" -c "import pytest" 2>/dev/null; then
    timeout 240 "$py" -m pytest tests/test_fast.py -q -x -p no:cacheprovider 2>&1 | tail -30 | tee "$out/test_fast.txt"
    status=${PIPESTATUS[0]}
else
    echo "pytest is not installed here: the CUDA tests were skipped" | tee "$out/test_fast.txt"
fi
timeout 240 "$py" benchmarks/bench_module.py --device cuda 2>&1 | tee "$out/bench_module_cuda.txt"
timeout 90 "$py" benchmarks/bench_trace.py --device cuda 2>&1 | tee "$out/bench_trace_cuda.txt"
exit "$status"
