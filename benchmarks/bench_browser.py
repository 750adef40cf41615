"""Slider latency as a student meets it: a real server, headless Chromium, one notch of the slider.

    .venv/bin/python benchmarks/bench_browser.py                       # Channel, Spatial and Full CBAM
    .venv/bin/python benchmarks/bench_browser.py --pages spatial --dwell 0
    git worktree add /tmp/before HEAD~3 && .venv/bin/python benchmarks/bench_browser.py --against /tmp/before

On one fresh server, for each page it opens the page on each bundled sample image in turn (values no
session has computed for that image), lets the student read for ``--dwell`` seconds, moves the sidebar
slider one notch with the keyboard (r on Channel and Full CBAM, k on Spatial; up for one image, down
for the next) and measures, in the browser, from the key press until the page is idle: the run has
finished (Streamlit's ``data-test-script-state``) and nothing on the page has changed for 300 ms (the
charts are drawn). The time reported ends at the last change. The browser shares the machine's cores
with the server. The Start page has no chart and computes nothing: its row is what Streamlit's own
page update costs in this browser on this machine, the floor under the other rows.

``--without-charts`` runs the second server from this checkout with every chart left out
(``CBAM_LAB_NO_CHARTS=1``, see ui/show.py): the paired difference is what the charts cost a slider move,
and the second server's row is what the rest of the page (text, widgets, the sidebar) costs on its own.

With ``--split`` the server runs on one core and the browser on the others (on this 2-core machine: one
each), as when students' browsers run on their own computers: the figure then shows how long a student
waits on a server that is not also drawing the page. Without it both share every core, as in the issue's
first measurement.

These are measurements, not tests: the machines are shared, so read one run's figures together.
Their noise is larger than many changes (the same code measured 350 and 385 ms an hour apart):
``--against`` runs a second server from another checkout (another commit, in a git worktree) and
moves the same slider on both in turn, page by page and image by image, and prints the median of
the paired differences, which that noise mostly cancels out of.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

SAMPLES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg", "grace_hopper.jpg", "shapes.png"]
SLIDERS = {"start": 0, "channel": 0, "spatial": 1, "full": 0}  # the sidebar slider moved: r (0) or k (1)

# The key press and every later change of the page, with times from the page's own clock.
WATCH = """() => {
  window.pressed = null; window.lastChange = 0; window.sawRun = false;
  document.addEventListener('keydown', () => { window.pressed = performance.now(); }, {capture: true, once: true});
  const app = document.querySelector('[data-testid=stApp]');
  new MutationObserver((records) => {
    if (window.pressed === null) return;
    window.lastChange = performance.now();
    if (records.some(r => r.target === app && r.attributeName === 'data-test-script-state')) window.sawRun = true;
  }).observe(app, {attributes: true, childList: true, subtree: true, characterData: true});
}"""
# A quick run may never show "running" (React merges the two states): then a change after the press will do.
IDLE = ("() => (window.sawRun || window.lastChange > window.pressed) && document.querySelector('[data-testid=stApp]')"
        ".getAttribute('data-test-script-state') === 'notRunning' && performance.now() - window.lastChange > 300")


def slider_move(page, url: str, page_name: str, index: int, dwell: float, model: str, layer: str | None) -> float:
    """Milliseconds from the key press until the page is idle, on sample image ``index``."""
    sample = SAMPLES[index]
    where = f"&layer={layer}" if layer else ""
    page.goto(f"{url}/{'' if page_name == 'start' else page_name}?model={model}&sample={sample}{where}")  # Start is "/"
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=120_000)
    page.wait_for_timeout(1000)  # the first run's charts are drawn
    page.evaluate(WATCH)
    page.wait_for_timeout(dwell * 1000)
    thumb = page.locator("[data-testid=stSidebar] [data-testid=stSlider] input[type=range]").nth(SLIDERS[page_name])
    value, low, high = (int(thumb.get_attribute(name)) for name in ("value", "min", "max"))
    up = (index % 2 == 0 and value < high) or value == low
    thumb.focus()
    thumb.press("ArrowRight" if up else "ArrowLeft")
    page.wait_for_function(IDLE, timeout=120_000, polling=50)
    if "Traceback" in page.inner_text("body"):
        raise RuntimeError(f"a traceback on {page_name} with {sample} at {url}")
    return page.evaluate("() => window.lastChange - window.pressed")


def print_row(name: str, values: list[float]) -> None:
    print(f"  {name:8s} median {statistics.median(values):6.0f}  min {min(values):6.0f}  max {max(values):6.0f}  "
          f"{[round(v) for v in values]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", nargs="+", choices=sorted(SLIDERS), default=["start", "channel", "spatial", "full"])
    parser.add_argument("--dwell", type=float, default=1.0, help="seconds of reading before the slider moves")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--layer", help="the CBAM block the pages show (default: the model's default, its last)")
    parser.add_argument("--against", type=Path, help="another checkout (e.g. a git worktree of an older commit): "
                        "measure both in turn and print the paired differences")
    parser.add_argument("--without-charts", action="store_true", help="the second server is this checkout with "
                        "every chart left out: what the charts cost, and what the page costs without them")
    parser.add_argument("--rounds", type=int, help="passes over the images (default 1, or 2 with a second server)")
    parser.add_argument("--split", action="store_true", help="the server(s) on the last core, the browser on the others")
    args = parser.parse_args(argv)
    if args.against and args.without_charts:
        parser.error("--against and --without-charts each start the second server: choose one")
    paired = args.against or args.without_charts
    label = str(args.against) if args.against else "without charts"
    rounds = args.rounds or (2 if paired else 1)

    results: dict[str, list[float]] = {name: [] for name in args.pages}
    other: dict[str, list[float]] = {name: [] for name in args.pages}
    cores = sorted(os.sched_getaffinity(0))
    if args.split and len(cores) < 2:
        parser.error("--split needs at least two cores")
    server_cores = {cores[-1]} if args.split else None
    with ExitStack() as stack:
        app = stack.enter_context(running_app("bench_browser.log", cpus=server_cores))
        then = stack.enter_context(running_app(
            "bench_browser_against.log", script=(args.against or ROOT) / "app.py", cpus=server_cores,
            env={"CBAM_LAB_NO_CHARTS": "1"} if args.without_charts else None)) if paired else None
        if args.split:
            os.sched_setaffinity(0, set(cores[:-1]))  # Playwright's driver and Chromium inherit it
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        here = browser.new_page(viewport={"width": 1400, "height": 1600})
        there = browser.new_page(viewport={"width": 1400, "height": 1600}) if then else None
        for name in args.pages:
            for turn in range(rounds * len(SAMPLES)):
                index = turn % len(SAMPLES)
                both = [(results, here, app.url)] + ([(other, there, then.url)] if then else [])
                for store, page, url in (both if turn % 2 == 0 else both[::-1]):  # each goes first half of the time
                    store[name].append(slider_move(page, url, name, index, args.dwell, args.model, args.layer))
        browser.close()
    where = (f"server on core {cores[-1]}, browser on {cores[:-1]}" if args.split
             else f"server and browser sharing {len(cores)} cores")
    print(f"One notch of the slider after {args.dwell:g} s of reading ({where}), model {args.model!r}"
          f"{f', block {args.layer}' if args.layer else ''}, {len(SAMPLES)} images x {rounds} "
          "(ms from the key press until the page is idle; target ≤ 250):")
    for name, values in results.items():
        print_row(name, values)
        if paired:
            print_row("  against" if args.against else "  no chart", other[name])
            difference = statistics.median(a - b for a, b in zip(values, other[name]))
            print(f"    paired difference (this checkout - {label}): median {difference:+.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
