"""Does CBAM Lab's memory stay bounded over a long session? (issue #7)

Drives the whole app in one process with Streamlit's AppTest through a cycle of what a student
does: every page of app.py, the r and k sliders, the mask-opacity slider, layer and model changes
(the two untrained models, so nothing is downloaded), sample images and uploads. Each step is one
rerun (an image change can be two). Resident memory is VmRSS from /proc/self/status.

1. Warm-up, 20 reruns: imports, fonts, models, first cache entries; everything allocated once.
2. All Streamlit caches are emptied and freed heap is handed back (glibc ``malloc_trim``): the RSS
   then is what the process holds outside the caches.
3. 20 more reruns refill the caches; the RSS now is the baseline.
4. N measured reruns (``--reruns``, 300 by default), the RSS sampled every 25.

It prints:

* the growth from the baseline to the end, in MB (target: at most 100 MB; the exit status is 1
  above ``--limit-mb``);
* the slope in MB per 100 reruns (least squares over the samples) for the measured reruns and for
  their second half: a leak keeps the second-half slope up, caches filling to their bounds do not;
* the open pyplot figures (``matplotlib.pyplot.get_fignums()``) and the live matplotlib ``Figure``
  objects (the app's plots bypass pyplot, so the second count is the one that could leak);
* the entries held by each ``st.cache_data`` / ``st.cache_resource`` function at the end;
* the RSS with the caches emptied again, against step 2: memory held outside the caches after the
  whole run. Growth that disappears with the caches is the caches filling up to their bounds;
  growth that stays is a leak.

Run it from the repository root (it takes a few minutes on 2 CPU cores):

    .venv/bin/python benchmarks/bench_memory.py                 # 300 measured reruns, about 10 min
    .venv/bin/python benchmarks/bench_memory.py --reruns 60     # a quicker look

Only the CPU is used; nothing is downloaded and no server or browser is started.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import itertools
import os
import re
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
PAGES = ["pages/start.py", "pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py"]  # + any others of app.py
MODELS = ["untrained-smallnet", "untrained-resnet50"]  # the zoo's untrained models are always there
SAMPLES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "shapes.png", "astronaut.jpg"]
WARM_UP = 20
SAMPLE_EVERY = 25


def app_pages() -> list[str]:
    """The page files app.py navigates to, in its order."""
    return re.findall(r'st\.Page\(\s*"([^"]+)"', APP.read_text())


def rss_mb() -> float:
    """This process's resident memory in MB (10^6 bytes), from /proc; peak RSS where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # kB on Linux


def slope_per_100(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (rerun, MB) points, in MB per 100 reruns (0 for fewer than 2 points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return 100 * sxy / sxx if sxx else 0.0


def png_upload(seed: int) -> bytes:
    """A 200×160 PNG that differs with ``seed``: noise, a coloured box and a stripe pattern."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    pixels[30:100, 40:140] = ((seed * 70) % 256, (seed * 150) % 256, (seed * 30 + 90) % 256)
    pixels[:, :: 4 + seed % 5] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def cache_entries() -> dict[str, int]:
    """How many entries each Streamlit cache of this process holds, by function name.

    Reads Streamlit's cache registries (``st.cache_data`` keeps one storage per function, and
    ``st.cache_resource`` reports its entry count when expensive memory stats are off, the default).
    These are Streamlit internals; an empty dict means they moved."""
    counts: dict[str, int] = {}
    try:
        from streamlit.runtime.caching import cache_data_api, cache_resource_api

        for caches in list(cache_data_api._data_caches._function_caches.values()):
            for cache in list(caches.values()):
                stats = cache.storage.get_stats() if hasattr(cache.storage, "get_stats") else {}
                counts[cache.display_name] = sum(len(items) for items in stats.values())
        for caches in list(cache_resource_api._resource_caches._function_caches.values()):
            for cache in list(caches.values()):
                counts[cache.display_name] = len(cache._mem_cache)
    except (AttributeError, ImportError):
        return {}
    return counts


def live_figures() -> int:
    """Matplotlib Figure objects still alive after a garbage collection."""
    from matplotlib.figure import Figure

    gc.collect()
    with warnings.catch_warnings():  # isinstance() on some torch objects warns about deprecations
        warnings.simplefilter("ignore")
        return sum(1 for obj in gc.get_objects() if isinstance(obj, Figure))


def rss_without_caches() -> float:
    """RSS after emptying every Streamlit cache and handing freed heap back to the OS (glibc's
    ``malloc_trim``, where there is one): what the process holds outside its caches."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_mb()


class Session:
    """One AppTest session and a counter of its reruns; every action below is exactly one rerun."""

    def __init__(self) -> None:
        from streamlit.testing.v1 import AppTest

        self.at = AppTest.from_file(str(APP), default_timeout=600)
        self.reruns = 0
        self.model = 0
        self.sample = 0
        self.upload = 0
        self.turn = 0
        self._actions = itertools.cycle(self.cycle())
        self.run()

    def play(self, reruns: int, after_each: Callable[[], None] | None = None) -> None:
        """Go on through the cycle of actions until ``reruns`` more reruns are done."""
        target = self.reruns + reruns
        while self.reruns < target:
            next(self._actions)()
            if after_each is not None:
                after_each()

    def run(self) -> None:
        self.at.run()
        self.reruns += 1
        if self.at.exception:
            raise RuntimeError(f"rerun {self.reruns}: {[e.value for e in self.at.exception]}")

    def page(self, path: str) -> Callable[[], None]:
        def go() -> None:
            self.at.switch_page(path)
            self.run()

        go.__name__ = f"page {Path(path).stem}"
        return go

    def _next_option(self, widget, convert=lambda o: o):
        options = [convert(o) for o in widget.options]
        current = widget.value
        self.turn += 1
        others = [o for o in options if o != current] or options
        return others[self.turn % len(others)]

    def ratio(self) -> None:
        slider = self.at.select_slider(key="w.ratio")
        slider.set_value(self._next_option(slider, int))
        self.run()

    def kernel(self) -> None:
        slider = self.at.select_slider(key="w.kernel")
        slider.set_value(self._next_option(slider, int))
        self.run()

    def alpha(self) -> None:
        slider = self.at.slider(key="w.alpha")  # on the spatial and layer pages
        slider.set_value(round(0.1 + (self.turn % 9) * 0.1, 2))
        self.turn += 1
        self.run()

    def layer(self) -> None:
        box = self.at.selectbox(key="w.layer")
        names = [option.split(" · ")[0] for option in box.options]  # options read "layer · C ch · H×W"
        current = self.at.session_state["lab.layer"]
        self.turn += 1
        others = [n for n in names if n != current] or names
        box.set_value(others[self.turn % len(others)])
        self.run()

    def model_switch(self) -> None:
        self.model = (self.model + 1) % len(MODELS)
        self.at.selectbox(key="w.model").set_value(MODELS[self.model])
        self.run()

    def image(self) -> None:
        """Every third image change is an upload (two reruns: the source radio, then the file)."""
        self.sample += 1
        if self.sample % 3 == 0:
            if self.at.session_state["lab.source"] != "Upload":
                self.at.radio(key="w.source").set_value("Upload")
                self.run()
            self.upload += 1
            self.at.sidebar.get("file_uploader")[0].upload(f"upload_{self.upload}.png", png_upload(self.upload), "image/png")
            self.run()
        else:
            if self.at.session_state["lab.source"] != "Sample image":
                self.at.radio(key="w.source").set_value("Sample image")
                self.run()
            self.at.selectbox(key="w.sample").set_value(SAMPLES[self.sample % len(SAMPLES)])
            self.run()

    def cycle(self) -> list[Callable[[], None]]:
        """One round of a student's session: each page, each control, a model and an image change."""
        others = [self.page(p) for p in app_pages() if p not in PAGES]  # pages added since this was written
        return [
            self.page("pages/start.py"),
            self.page("pages/channel.py"), self.ratio, self.layer,
            self.page("pages/spatial.py"), self.kernel, self.alpha, self.ratio,
            self.page("pages/full.py"), self.kernel,
            self.page("pages/layers.py"), self.alpha, *others,
            self.model_switch, self.page("pages/channel.py"),
            self.image, self.page("pages/spatial.py"), self.kernel,
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=300, help="measured reruns after the warm-up (default 300)")
    parser.add_argument("--limit-mb", type=float, default=100.0, help="allowed growth in MB (default 100)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))

    start_time = time.perf_counter()
    print(f"RSS before the app: {rss_mb():.0f} MB; pages: {', '.join(Path(p).stem for p in app_pages())}", flush=True)
    session = Session()
    session.play(WARM_UP - session.reruns)  # imports, fonts, models: what is allocated once
    empty_start = rss_without_caches()
    print(f"after {session.reruns} reruns, caches emptied: {empty_start:.0f} MB", flush=True)
    session.play(WARM_UP)  # the caches refill as after the first warm-up
    gc.collect()
    baseline = rss_mb()
    samples: list[tuple[int, float]] = [(session.reruns, baseline)]
    print(f"after the warm-up ({session.reruns} reruns): {baseline:.0f} MB", flush=True)
    first_measured = session.reruns

    def sample() -> None:
        if session.reruns >= samples[-1][0] // SAMPLE_EVERY * SAMPLE_EVERY + SAMPLE_EVERY:
            gc.collect()
            samples.append((session.reruns, rss_mb()))
            print(f"rerun {session.reruns:4d}: {samples[-1][1]:.0f} MB  ({time.perf_counter() - start_time:.0f} s)", flush=True)

    session.play(args.reruns, after_each=sample)
    gc.collect()
    end = rss_mb()
    if samples[-1][0] != session.reruns:
        samples.append((session.reruns, end))
    growth = end - baseline
    half = [p for p in samples if p[0] >= first_measured + args.reruns // 2]

    import matplotlib.pyplot as plt

    elapsed = time.perf_counter() - start_time
    print()
    print(f"reruns: {session.reruns} ({first_measured} warm-up + {session.reruns - first_measured} measured), "
          f"{session.upload} uploads, in {elapsed:.0f} s ({elapsed / session.reruns:.2f} s per rerun)")
    print(f"RSS after the warm-up: {baseline:.0f} MB; at the end: {end:.0f} MB; "
          f"peak: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:.0f} MB")
    print(f"growth: {growth:+.1f} MB (limit {args.limit_mb:.0f} MB)")
    print(f"slope: {slope_per_100(samples):+.1f} MB per 100 reruns overall, "
          f"{slope_per_100(half):+.1f} MB per 100 reruns over the second half")
    print(f"open pyplot figures: {len(plt.get_fignums())}; live matplotlib Figure objects: {live_figures()}")
    for name, count in sorted(cache_entries().items()):
        print(f"cache {name}: {count} entries")
    empty_end = rss_without_caches()
    print(f"with every Streamlit cache emptied and malloc trimmed: {empty_start:.0f} MB after {WARM_UP} reruns, "
          f"{empty_end:.0f} MB at the end: {empty_end - empty_start:+.1f} MB held outside the caches (a leak, if large)")
    return 0 if growth <= args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
