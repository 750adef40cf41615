"""Slider latency as a student meets it: a real server, headless Chromium, one notch of the slider.

    .venv/bin/python benchmarks/bench_browser.py                    # Channel page, r slider, 3 s reading
    .venv/bin/python benchmarks/bench_browser.py --page spatial --dwell 1

For drawing ahead off, then on (``CBAM_LAB_PREFETCH``; each with a fresh server, so no cache is
shared between the two), it opens the page on each bundled sample image in turn (a page no session has
drawn yet), lets the student read it for ``--dwell`` seconds, moves the slider one notch with the
keyboard (up for one image, down for the next) and measures, in the browser, how long the app shows
"running": from the moment the server starts the run until the last of its output has arrived
(Streamlit's ``data-test-script-state`` attribute). That includes sending the new figures, which
AppTest-driven ``bench_app.py`` does not see; the browser shares the machine's cores with the server.

These are measurements, not tests: compare the two rows of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, running_app  # noqa: E402

SAMPLES = ["cat.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg", "grace_hopper.jpg", "shapes.png"]
SLIDERS = {"channel": 0, "spatial": 1, "full": 0}  # the sidebar slider moved on each page: r (0) or k (1)

# Records every change of the app's run state with its time, from the page's own clock.
WATCH_RUN_STATE = """() => {
  window.runStates = [];
  const app = document.querySelector('[data-testid=stApp]');
  new MutationObserver(() => window.runStates.push([performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
RUN_FINISHED = ("() => window.runStates.some(s => s[1] === 'running') && "
                "window.runStates[window.runStates.length - 1][1] === 'notRunning'")
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def slider_moves(page_name: str, dwell: float, model: str) -> list[float]:
    """Milliseconds of "running" after one notch, once per sample image, on a fresh server."""
    times = []
    with running_app(f"bench_browser_{page_name}.log") as app, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        for index, sample in enumerate(SAMPLES):
            page.goto(f"{app.url}/{page_name}?model={model}&sample={sample}")
            page.wait_for_selector(IDLE, timeout=120_000)
            page.wait_for_timeout(300)  # the first run's figures arrive
            page.evaluate(WATCH_RUN_STATE)
            page.wait_for_timeout(dwell * 1000)
            thumb = page.locator("[data-testid=stSidebar] [data-testid=stSlider] input[type=range]").nth(SLIDERS[page_name])
            value, low, high = (int(thumb.get_attribute(name)) for name in ("value", "min", "max"))
            up = (index % 2 == 0 and value < high) or value == low
            thumb.focus()
            thumb.press("ArrowRight" if up else "ArrowLeft")
            page.wait_for_function(RUN_FINISHED, timeout=120_000)
            states = page.evaluate("() => window.runStates")
            started = next(t for t, state in states if state == "running")
            finished = [t for t, state in states if state == "notRunning"][-1]
            times.append(finished - started)
            if "Traceback" in page.inner_text("body"):
                raise RuntimeError(f"a traceback on {page_name} with {sample}")
        browser.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--page", choices=sorted(SLIDERS), default="channel")
    parser.add_argument("--dwell", type=float, default=3.0, help="seconds of reading before the slider moves")
    parser.add_argument("--model", default="demo")
    args = parser.parse_args(argv)

    results = {}
    for setting in ("0", "1"):
        os.environ["CBAM_LAB_PREFETCH"] = setting  # the server started next inherits it
        results[setting] = slider_moves(args.page, args.dwell, args.model)
    print(f"One notch of the slider on the {args.page} page after {args.dwell:g} s of reading, "
          f"model {args.model!r}, {len(SAMPLES)} images (ms the browser shows the run):")
    for setting, label in (("0", "drawing ahead off"), ("1", "drawing ahead on")):
        values = results[setting]
        print(f"  {label:18s} median {statistics.median(values):6.0f}  min {min(values):6.0f}  max {max(values):6.0f}  "
              f"{[round(v) for v in values]}")
    ratio = statistics.median(results["0"]) / statistics.median(results["1"])
    print(f"  off / on: {ratio:.1f}×   (issue #6 target: ≤ 150 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
