"""App latency, driven by AppTest: first render, slider moves and a new image on Layer by layer.

    .venv/bin/python benchmarks/bench_app.py                 # the demo model, 5 repeats
    .venv/bin/python benchmarks/bench_app.py --model untrained-resnet50 --repeats 3

For each page it measures, in one process (AppTest runs the script in this process, so the time is
the server's: computing, building the charts, marshalling them; not the browser's drawing):

* **first render**: the very first session of the process (cold: imports, model loading, the first
  network run), then a new session opening each page, caches warm from earlier sessions;
* **slider moved at once**: a new session uploads a photo no session has used, opens the Channel,
  Spatial or Full CBAM page, and at once moves the r or k slider one notch to a value nothing has
  computed yet (the block is rebuilt, traced, and every chart built again);
* **slider moved to a value seen before**: the same move in a second session (the trace is cached);
* **layer page with a new image**: the Layer by layer page after changing the image (a network run).

Next to each median it prints the CPU time the process spent on the step (all threads) and the
issue's target. These are measurements, not tests: the machines are shared, so read them as a
snapshot and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = ["pages/start.py", "pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py"]
SLIDER_PAGES = [("pages/channel.py", "w.ratio"), ("pages/spatial.py", "w.kernel"), ("pages/full.py", "w.ratio")]
SAMPLES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg", "grace_hopper.jpg", "shapes.png"]
CPU: dict[str, list[float]] = {}  # CPU milliseconds of each timed step, by the same names


def timed(run, what: str | None = None) -> float:
    cpu = time.process_time()
    start = time.perf_counter()
    run()
    elapsed = (time.perf_counter() - start) * 1000
    if what is not None:
        CPU.setdefault(what, []).append((time.process_time() - cpu) * 1000)
    return elapsed


def new_session(model: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params["model"] = model
    return at


_images_made = 0


def fresh_image() -> bytes:
    """A PNG no session has seen: coloured rectangles on noise, different at every call."""
    global _images_made
    _images_made += 1
    rng = np.random.default_rng(_images_made)
    pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for _ in range(4):
        top, left = rng.integers(0, 160), rng.integers(0, 240)
        pixels[top : top + 80, left : left + 80] = rng.integers(0, 256, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(at: AppTest, content: bytes) -> AppTest:
    at.radio(key="w.source").set_value("Upload").run()
    return at.sidebar.get("file_uploader")[0].upload("fresh.png", content, "image/png").run()


def check(at: AppTest) -> AppTest:
    if at.exception:
        raise RuntimeError([e.value for e in at.exception])
    return at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    # The very first session of a fresh process: imports, model loading, the first network run (what
    # the first student meets right after the server is up). It also warms the shared caches.
    cold_start = time.perf_counter()
    check(new_session(args.model).run())
    cold_ms = (time.perf_counter() - cold_start) * 1000

    first: dict[str, list[float]] = {page: [] for page in PAGES}
    for _ in range(args.repeats):
        for page in PAGES:
            at = new_session(args.model)
            if page == "pages/start.py":
                first[page].append(timed(lambda at=at: check(at.run())))
            else:
                check(at.run())
                at.switch_page(page)
                first[page].append(timed(lambda at=at: check(at.run())))

    # A student with their own photo opens a step-by-step page and moves a slider at once, to a value
    # nothing has computed for this photo; then another session makes the same move (trace cached).
    slider: dict[str, list[float]] = {}
    for page, key in SLIDER_PAGES:
        moves = []
        for repeat in range(args.repeats):
            at = new_session(args.model)
            check(at.run())
            photo = fresh_image()
            check(upload(at, photo))
            at.switch_page(page)
            check(at.run())
            values = [int(v) for v in at.select_slider(key=key).options]
            own = values.index(int(at.select_slider(key=key).value))
            step = 1 if (repeat % 2 == 0 and own + 1 < len(values)) or own == 0 else -1
            what = f"slider moved at once, new value {page}"
            slider.setdefault(what, []).append(
                timed(lambda at=at, key=key, v=values[own + step]: check(at.select_slider(key=key).set_value(v).run()), what))
            moves.append((photo, values[own + step]))
        for photo, value in moves:
            at = new_session(args.model)
            check(at.run())
            check(upload(at, photo))
            at.switch_page(page)
            check(at.run())
            what = f"slider moved, value seen before {page}"
            slider.setdefault(what, []).append(
                timed(lambda at=at, key=key, v=value: check(at.select_slider(key=key).set_value(v).run()), what))

    layers: list[float] = []
    at = new_session(args.model)
    check(at.run())
    at.switch_page("pages/layers.py")
    check(at.run())
    for sample in SAMPLES[: args.repeats]:
        layers.append(timed(lambda s=sample: check(at.selectbox(key="w.sample").set_value(s).run()), "layers"))

    def cpu(what: str) -> str:
        return f"{statistics.median(CPU[what]):8.0f}" if what in CPU else " " * 8

    print(f"App latency with model {args.model!r}, medians of {args.repeats} (ms; cpu: CPU time of the process):")
    print(f"{'what':56s} {'median':>8s} {'min':>8s} {'max':>8s} {'cpu':>8s}  target")
    print(f"{'first page of the first session (cold process)':56s} {cold_ms:8.0f} {cold_ms:8.0f} {cold_ms:8.0f} {'':8s}  ≤ 3000")
    for page, values in first.items():
        target = "≤ 3000" if page == "pages/start.py" else ""
        print(f"{'first render ' + page:56s} {statistics.median(values):8.0f} {min(values):8.0f} {max(values):8.0f} {'':8s}  {target}")
    for what, values in slider.items():
        target = "≤ 100" if "at once" in what else ""
        print(f"{what:56s} {statistics.median(values):8.0f} {min(values):8.0f} {max(values):8.0f} {cpu(what)}  {target}")
    target = "≤ 250" if "resnet" not in args.model else "≤ 1000"
    print(f"{'new image on pages/layers.py':56s} {statistics.median(layers):8.0f} {min(layers):8.0f} {max(layers):8.0f} "
          f"{cpu('layers')}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
