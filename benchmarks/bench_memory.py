"""Does CBAM Lab's memory stay bounded over a long session?

Drives the whole app in one process with Streamlit's AppTest through a cycle of what a student
does: every page of app.py, the r and k sliders, the mask-opacity slider, layer and model changes
(the two untrained models, so nothing is downloaded), sample images and uploads. Each step is one
rerun (an image change can be two). Resident memory is VmRSS from /proc/self/status.

1. Warm-up, 20 reruns: imports, fonts, models, first cache entries; everything allocated once.
2. All Streamlit caches are emptied and freed heap is handed back (glibc ``malloc_trim``): the RSS
   then is what the process holds outside the caches.
3. 20 more reruns refill the caches; the RSS now is the baseline.
4. N measured reruns (``--reruns``, 300 by default), the RSS sampled every 25.

Each RSS sample is taken with the app at rest, as a server is between two clicks (the app keeps no
background work; ``at_rest`` only collects garbage). The app does not trim glibc's heap itself: the
RSS includes what glibc keeps for reuse.

It prints:

* the growth from the baseline to the end, in MB (target: at most 50 MB; the exit status is 1
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

    .venv/bin/python benchmarks/bench_memory.py                 # 300 measured reruns, 4 to 11 min
    .venv/bin/python benchmarks/bench_memory.py --reruns 60     # a quicker look

Diagnostic options (the default run uses none of them):

* ``--warm-up N``: reruns before the caches are first emptied, and again before the baseline
  (20 by default, as in steps 1 and 3);
* ``--census``: at every sample, also the bytes each Streamlit cache holds (tensors, arrays, bytes
  and module weights reachable from its entries, each storage counted once; the three largest
  caches named), the live torch tensors outside the caches, and the RSS after ``malloc_trim`` (which
  lowers the next samples' RSS); at the end, each cache's bytes, the tensors outside the caches
  grouped by shape, and the live tensors left once the caches are emptied (steps 2 and 5);
* ``--tracemalloc``: Python allocations (``tracemalloc``, started at the baseline) compared between
  the middle and the end of the measured reruns and between the baseline and the end, top 25 lines;
* ``--trim-each-rerun``: ``malloc_trim`` after every rerun, as an app that hands freed heap back
  at the end of each script run would (the RSS then counts live memory, not glibc's free lists);
* ``--trivial-app``: the same harness on a throw-away three-page app with a few widgets and no
  computation: the memory AppTest and Streamlit themselves take over as many reruns.

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
import tempfile
import time
import tracemalloc
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
    malloc_trim()
    return rss_mb()


def _walk_bytes(obj, seen: set, depth: int = 0) -> int:
    """Bytes of tensors, arrays, bytes and module weights reachable from ``obj``; each storage once."""
    import numpy as np
    import torch

    if depth > 8 or id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        try:
            storage = obj.untyped_storage()
            key = ("t", storage.data_ptr(), obj.device.type)
            if key in seen:
                return 0
            seen.add(key)
            return storage.nbytes()
        except (RuntimeError, NotImplementedError):
            return 0
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        key = ("a", base.__array_interface__["data"][0])
        if key in seen:
            return 0
        seen.add(key)
        return base.nbytes
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return len(obj)
    if isinstance(obj, torch.nn.Module):
        return sum(_walk_bytes(t, seen, depth + 1) for t in itertools.chain(obj.parameters(), obj.buffers())) + \
            sum(_walk_bytes(v, seen, depth + 1) for v in vars(obj).values() if not isinstance(v, dict))
    if isinstance(obj, dict):
        return sum(_walk_bytes(v, seen, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(_walk_bytes(v, seen, depth + 1) for v in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(_walk_bytes(v, seen, depth + 1) for v in vars(obj).values())
    return 0


def cache_bytes(seen: set | None = None) -> dict[str, tuple[int, int]]:
    """(entries, bytes) held by each Streamlit cache, by function name (see ``_walk_bytes``).
    ``st.cache_data`` entries are pickled bytes; ``st.cache_resource`` entries are live objects."""
    seen = set() if seen is None else seen
    sizes: dict[str, tuple[int, int]] = {}
    try:
        from streamlit.runtime.caching import cache_data_api, cache_resource_api

        for caches in list(cache_data_api._data_caches._function_caches.values()):
            for cache in list(caches.values()):
                stats = cache.storage.get_stats() if hasattr(cache.storage, "get_stats") else {}
                items = [s for family in stats.values() for s in family]
                sizes[cache.display_name] = (len(items), sum(s.byte_length for s in items))
        for caches in list(cache_resource_api._resource_caches._function_caches.values()):
            for cache in list(caches.values()):
                entries = list(cache._mem_cache.values())
                sizes[cache.display_name] = (len(entries), sum(_walk_bytes(e.value, seen) for e in entries))
    except (AttributeError, ImportError):
        return {}
    return sizes


def live_tensors(exclude: set) -> dict[tuple, list[int]]:
    """Live torch tensors whose storage no cache holds: {(shape, dtype): [count, bytes]}, each storage once."""
    import torch

    gc.collect()
    groups: dict[tuple, list[int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for obj in gc.get_objects():
            if not isinstance(obj, torch.Tensor):
                continue
            try:
                storage = obj.untyped_storage()
                key = ("t", storage.data_ptr(), obj.device.type)
            except (RuntimeError, NotImplementedError):
                continue
            if key in exclude:
                continue
            exclude.add(key)
            group = groups.setdefault((tuple(obj.shape), str(obj.dtype)), [0, 0])
            group[0] += 1
            group[1] += storage.nbytes()
    return groups


def malloc_trim() -> None:
    """Hand the heap glibc keeps free back to the OS (nothing where there is no glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def tensors_line() -> str:
    """The live torch tensors, for a moment when the caches are empty."""
    tensors = live_tensors(set())
    top = sorted(tensors.items(), key=lambda item: -item[1][1])[:3]
    return (f"live torch tensors: {sum(c for c, _ in tensors.values())} storages, "
            f"{sum(b for _, b in tensors.values()) / 1e6:.1f} MB; largest: "
            + ", ".join(f"{c} × {shape} {b / 1e6:.1f} MB" for (shape, _), (c, b) in top))


def census_line() -> str:
    """Cache bytes, tensors outside the caches, RSS after malloc_trim: one line for a sample."""
    seen: set = set()
    sizes = cache_bytes(seen)
    outside = live_tensors(seen)
    malloc_trim()
    largest = sorted(sizes.items(), key=lambda item: -item[1][1])[:3]
    return (f"caches {sum(b for _, b in sizes.values()) / 1e6:.0f} MB ("
            + ", ".join(f"{name.rsplit('.', 1)[-1]} {n}: {b / 1e6:.0f}" for name, (n, b) in largest)
            + "), tensors outside the caches "
            f"{sum(b for _, b in outside.values()) / 1e6:.0f} MB, RSS after malloc_trim {rss_mb():.0f} MB")


TRIVIAL_PAGE = """import streamlit as st
st.title("Page {n}")
value = st.slider("A number", 0, 100, key="s{n}")
choice = st.selectbox("A word", ["alpha", "beta", "gamma", "delta"], key="c{n}")
st.write(f"{{value}} and {{choice}}")
"""
TRIVIAL_APP = """import streamlit as st
st.sidebar.radio("Mode", ["one", "two", "three"], key="mode")
st.sidebar.select_slider("Ratio", [1, 2, 4, 8, 16], key="ratio")
page = st.navigation([st.Page("p1.py", default=True), st.Page("p2.py"), st.Page("p3.py")])
page.run()
"""


class TrivialSession:
    """The same harness on an app that computes and draws almost nothing: 3 pages, 6 widgets."""

    def __init__(self) -> None:
        from streamlit.testing.v1 import AppTest

        self.dir = Path(tempfile.mkdtemp(prefix="trivial_app_"))
        for n in (1, 2, 3):
            (self.dir / f"p{n}.py").write_text(TRIVIAL_PAGE.format(n=n))
        (self.dir / "app.py").write_text(TRIVIAL_APP)
        self.at = AppTest.from_file(str(self.dir / "app.py"), default_timeout=600)
        self.reruns = 0
        self.upload = 0
        self.turn = 0
        self.run()

    def run(self) -> None:
        self.at.run()
        self.reruns += 1
        if self.at.exception:
            raise RuntimeError(f"rerun {self.reruns}: {[e.value for e in self.at.exception]}")

    def play(self, reruns: int, after_each: Callable[[], None] | None = None) -> None:
        target = self.reruns + reruns
        while self.reruns < target:
            self.turn += 1
            step = self.turn % 4
            if step == 0:
                self.at.switch_page(f"p{1 + (self.turn // 4) % 3}.py")
            elif step == 1:
                self.at.slider[0].set_value(self.turn % 101)
            elif step == 2:
                self.at.select_slider(key="ratio").set_value([1, 2, 4, 8, 16][self.turn % 5])
            else:
                self.at.radio(key="mode").set_value(["one", "two", "three"][self.turn % 3])
            self.run()
            if after_each is not None:
                after_each()


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
        current = self.at.session_state["lab"].layer
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
            if self.at.session_state["lab"].source != "Upload":
                self.at.radio(key="w.source").set_value("Upload")
                self.run()
            self.upload += 1
            self.at.sidebar.get("file_uploader")[0].upload(f"upload_{self.upload}.png", png_upload(self.upload), "image/png")
            self.run()
        else:
            if self.at.session_state["lab"].source != "Sample image":
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


def at_rest() -> None:
    """The app at rest, as on a server between two clicks: it leaves no work behind, so a short pause."""
    time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=300, help="measured reruns after the warm-up (default 300)")
    parser.add_argument("--limit-mb", type=float, default=50.0, help="allowed growth in MB (default 50)")
    parser.add_argument("--warm-up", type=int, default=WARM_UP,
                        help=f"reruns before the caches are first emptied, and again before the baseline (default {WARM_UP})")
    parser.add_argument("--census", action="store_true",
                        help="at each sample: bytes in the caches, tensors outside them, RSS after malloc_trim")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="compare Python allocations between the middle and the end of the measured reruns")
    parser.add_argument("--trim-each-rerun", action="store_true",
                        help="malloc_trim after every rerun (what an app trimming at the end of each run would see)")
    parser.add_argument("--trivial-app", action="store_true",
                        help="drive a throw-away 3-page app with a few widgets instead: the harness's own memory")
    args = parser.parse_args(argv)
    warm_up = args.warm_up
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))

    if args.trivial_app:  # what the census and the end of the report import, imported by the app itself otherwise
        import matplotlib.pyplot  # noqa: F401
        import torch  # noqa: F401
    start_time = time.perf_counter()
    print(f"RSS before the app: {rss_mb():.0f} MB; pages: {', '.join(Path(p).stem for p in app_pages())}", flush=True)
    session = TrivialSession() if args.trivial_app else Session()
    session.play(warm_up - session.reruns, after_each=malloc_trim if args.trim_each_rerun else None)  # imports, fonts, models: what is allocated once
    empty_start = rss_without_caches()
    print(f"after {session.reruns} reruns, caches emptied: {empty_start:.0f} MB", flush=True)
    if args.census:
        print(f"    {tensors_line()}", flush=True)
    session.play(warm_up, after_each=malloc_trim if args.trim_each_rerun else None)  # the caches refill
    at_rest()
    gc.collect()
    baseline = rss_mb()
    if args.census:
        print(f"rerun {session.reruns:4d}: {census_line()}", flush=True)
        baseline = rss_mb()  # the census trimmed the heap; later samples do too
    snapshots: list[tracemalloc.Snapshot] = []
    if args.tracemalloc:
        tracemalloc.start(1)
        snapshots.append(tracemalloc.take_snapshot())
    samples: list[tuple[int, float]] = [(session.reruns, baseline)]
    print(f"after the warm-up ({session.reruns} reruns): {baseline:.0f} MB", flush=True)
    first_measured = session.reruns

    def sample() -> None:
        if args.trim_each_rerun:
            malloc_trim()
        if session.reruns >= samples[-1][0] // SAMPLE_EVERY * SAMPLE_EVERY + SAMPLE_EVERY:
            at_rest()
            gc.collect()
            samples.append((session.reruns, rss_mb()))
            print(f"rerun {session.reruns:4d}: {samples[-1][1]:.0f} MB  ({time.perf_counter() - start_time:.0f} s)", flush=True)
            if args.census:
                print(f"            {census_line()}", flush=True)
            if args.tracemalloc and len(snapshots) == 1 and session.reruns >= first_measured + args.reruns // 2:
                snapshots.append(tracemalloc.take_snapshot())

    session.play(args.reruns, after_each=sample)
    at_rest()
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
    if args.census:
        seen: set = set()
        sizes = cache_bytes(seen)
        for name, (count, size) in sorted(sizes.items(), key=lambda item: -item[1][1]):
            print(f"cache {name}: {count} entries, {size / 1e6:.1f} MB")
        print(f"all caches: {sum(b for _, b in sizes.values()) / 1e6:.1f} MB (each storage counted once)")
        outside = live_tensors(seen)
        print(f"live torch tensors outside the caches: {sum(c for c, _ in outside.values())} storages, "
              f"{sum(b for _, b in outside.values()) / 1e6:.1f} MB; the largest groups:")
        for (shape, dtype), (count, size) in sorted(outside.items(), key=lambda item: -item[1][1])[:12]:
            print(f"    {count:4d} × {shape} {dtype}: {size / 1e6:.1f} MB")
    else:
        for name, count in sorted(cache_entries().items()):
            print(f"cache {name}: {count} entries")
    if args.tracemalloc:
        snapshots.append(tracemalloc.take_snapshot())
        noise = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
        snapshots = [snap.filter_traces(noise) for snap in snapshots]
        traced = [sum(stat.size for stat in snap.statistics("filename")) / 1e6 for snap in snapshots]
        print(f"Python allocations traced (tracemalloc): {', '.join(f'{t:.1f}' for t in traced)} MB "
              "at the baseline, the middle and the end")
        for title, older in (("middle → end", snapshots[-2]), ("baseline → end", snapshots[0])):
            print(f"top 25 lines by growth, {title}:")
            for stat in snapshots[-1].compare_to(older, "lineno")[:25]:
                print(f"    {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+7d} blocks  {stat.traceback[0]}")
        top = snapshots[-1].compare_to(snapshots[0], "traceback")[:3]
        for stat in top:
            print(f"traceback of {stat.size_diff / 1e6:+.2f} MB:")
            for line in stat.traceback.format()[-16:]:
                print(f"    {line}")
        snapshots.clear()  # the snapshots and the traces are large: free them before the RSS below
        tracemalloc.stop()
    empty_end = rss_without_caches()
    print(f"with every Streamlit cache emptied and malloc trimmed: {empty_start:.0f} MB after {warm_up} reruns, "
          f"{empty_end:.0f} MB at the end: {empty_end - empty_start:+.1f} MB held outside the caches (a leak, if large)")
    if args.census:
        print(f"    {tensors_line()}")
    return 0 if growth <= args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
