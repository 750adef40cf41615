"""Many students at once: separate browser sessions never see each other's image (issue #7).

Starts ``streamlit run app.py`` headless on a free 127.0.0.1 port and opens ``SESSIONS`` (10 by
default; ``CBAM_LAB_SESSIONS=N`` to change) Playwright browser contexts in one Chromium. A context is
a separate Streamlit session (its own cookies, storage and websocket). All of them run at the same
time (Playwright's async API, one ``asyncio.gather``); each one

1. opens the app, switches the image source to Upload and uploads its own generated picture (a
   different colour and pattern, a different file name per session);
2. visits every page of app.py in its order (read from app.py, so new pages are included), and on
   Spatial attention moves the "Spatial kernel size k" slider with the keyboard (half the sessions
   to 5, half to 9) and waits for the page to show the new kernel;
3. ends back on the first page (Start here).

After every step it checks that the sidebar names its own file and no other session's, and that no
page shows a traceback (stException) or an error alert. The time of each step, from the user's
action (click, key press, file chosen) to the page being finished (the expected text is there, no
element is stale and the script is not running, for 300 ms), is measured in the page itself with
``performance.now()``. The test prints the median and 95th percentile of the page renders and
writes every timing to ``artifacts/sessions.json``. It asserts no timing: the numbers depend on the
machine (see docs/reliability.md).

    .venv/bin/python -m pytest tests/test_sessions.py -s

Skipped only where Chromium is missing and CI is not set; in CI a missing browser fails.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, require_chromium, running_app

from cbam import i18n

SESSIONS = int(os.environ.get("CBAM_LAB_SESSIONS", "10"))
STEP_TIMEOUT_MS = int(os.environ.get("CBAM_LAB_STEP_TIMEOUT_MS", "150000"))


def app_pages() -> dict[str, str]:
    """Every page of app.py in order: its sidebar navigation label → the text of its st.title (h1).

    Read from the sources, so a page added to app.py is visited too. A title written as an f-string
    is cut before its first placeholder; markdown emphasis is dropped, as the browser shows it."""
    english = i18n.catalogue("en")  # titles written as t("key") are the English catalogue's
    pages = {}
    for path, label in re.findall(r'st\.Page\(\s*"([^"]+)",\s*title=(t\("[^"]+"\)|"[^"]+")', (ROOT / "app.py").read_text()):
        label = english[label[3:-2]] if label.startswith("t(") else label.strip('"')
        match = re.search(r'(?:st\.title|page\.block_page)\(\s*(f?)"([^"]+)"|(?:st\.title|page\.block_page)\(\s*t\("([^"]+)"\)',
                          (ROOT / path).read_text())
        assert match, f"{path} has no title (st.title or page.block_page) to recognise it by"
        if match.group(3):
            title = english[match.group(3)]
        else:
            title = match.group(2).split("{")[0] if match.group(1) else english.get(match.group(2), match.group(2))
        pages[label] = title.replace("*", "").strip()
    return pages


PAGE_TITLES = app_pages()
START_TITLE = next(iter(PAGE_TITLES.values()))  # the default page, the first in app.py

pytestmark = pytest.mark.browser

require_chromium()
async_api = pytest.importorskip("playwright.async_api")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    """A fresh ``streamlit run app.py`` on 127.0.0.1; its log goes to artifacts/streamlit-sessions-test.log."""
    with running_app("streamlit-sessions-test.log") as app:
        yield app


# --------------------------------------------------------------------------------------------
# Each session's picture
# --------------------------------------------------------------------------------------------

COLOURS = [("red", (230, 40, 40)), ("green", (40, 200, 60)), ("blue", (40, 70, 230)), ("yellow", (240, 220, 40)),
           ("purple", (150, 50, 200)), ("orange", (250, 140, 20)), ("cyan", (30, 210, 220)), ("pink", (250, 120, 190)),
           ("brown", (130, 80, 30)), ("grey", (128, 128, 128)), ("olive", (120, 130, 20)), ("navy", (20, 30, 110))]


def session_image(index: int, folder: Path) -> Path:
    """A 240×180 PNG unique to session ``index``: its own colour, stripe period and disc position."""
    name, colour = COLOURS[index % len(COLOURS)]
    yy, xx = np.mgrid[0:180, 0:240]
    pixels = np.zeros((180, 240, 3), dtype=np.uint8)
    stripes = ((xx + index * yy) // (4 + index)) % 2 == 0
    pixels[stripes] = colour
    pixels[~stripes] = (255 - np.array(colour)) // 2
    cx, cy = 40 + (index * 37) % 160, 40 + (index * 23) % 100
    pixels[(xx - cx) ** 2 + (yy - cy) ** 2 < (18 + index) ** 2] = (255, 255, 255)
    path = folder / f"session_{index:02d}_{name}.png"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


# --------------------------------------------------------------------------------------------
# Measuring a step inside the page
# --------------------------------------------------------------------------------------------

# Remember when the user last acted (capture phase, so before Streamlit's own handlers run).
RECORD_ACTIONS = """
window.__actionAt = 0;
for (const type of ["click", "keydown", "change"]) {
  document.addEventListener(type, () => { window.__actionAt = performance.now(); }, true);
}
"""

# Wait until every string of ``texts`` is inside one element matching ``selector``, no element is
# stale and the app reports its script as not running (the data-test-script-state attribute that
# Streamlit keeps on stApp for its own end-to-end tests), continuously for ``settle`` ms; return the
# milliseconds from the last user action to the moment that state began, or -1 after ``timeout`` ms.
WAIT_FOR_RENDER = """
async ([selector, texts, settle, timeout]) => {
  const started = performance.now();
  const done = () =>
    document.querySelector('[data-testid="stApp"]')?.getAttribute("data-test-script-state") === "notRunning" &&
    !document.querySelector('[data-stale="true"]') &&
    [...document.querySelectorAll(selector)].some((e) => texts.every((t) => e.innerText.includes(t)));
  let since = null;
  while (performance.now() - started < timeout) {
    const now = performance.now();
    if (done()) {
      if (since === null) since = now;
      if (now - since >= settle) return since - window.__actionAt;
    } else {
      since = null;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return -1;
}
"""

DESCRIBE_PAGE = """
(selector) => ({
  script_state: document.querySelector('[data-testid="stApp"]')?.getAttribute("data-test-script-state"),
  status_widget: document.querySelector('[data-testid="stStatusWidget"]')?.innerText ?? null,
  stale: [...document.querySelectorAll('[data-stale="true"]')].map((e) => e.innerText.slice(0, 60)).slice(0, 5),
  matches: [...document.querySelectorAll(selector)].map((e) => e.innerText.slice(0, 80)).slice(0, 5),
  url: location.href,
})
"""


async def rendered(page, selector: str, *texts: str, what: str) -> float:
    """Milliseconds from the last action to the finished render showing ``texts`` in one ``selector``."""
    ms = await page.evaluate(WAIT_FOR_RENDER, [selector, list(texts), 300, STEP_TIMEOUT_MS])
    if ms < 0:
        state = await page.evaluate(DESCRIBE_PAGE, selector)
        raise AssertionError(f"{what}: {texts!r} not shown in {selector} within {STEP_TIMEOUT_MS / 1000:.0f} s; {state}")
    return ms


async def problems(page) -> list[str]:
    found = []
    for selector in ("[data-testid='stException']", "[data-testid='stAlertContentError']"):
        for element in await page.locator(selector).all():
            found.append((await element.inner_text())[:300])
    return found


class Session:
    """One student: a browser context, a page, a picture, and the timings of its steps."""

    def __init__(self, index: int, image: Path, all_names: list[str]) -> None:
        self.index = index
        self.image = image
        self.others = [n for n in all_names if n != image.name]
        self.timings: list[dict] = []

    async def check(self, page, step: str) -> None:
        sidebar = await page.locator("[data-testid='stSidebar']").inner_text()
        assert self.image.name in sidebar, f"session {self.index} after {step}: its own image is not shown"
        leaked = [n for n in self.others if n in sidebar or n in await page.locator("[data-testid='stMain']").inner_text()]
        assert not leaked, f"session {self.index} after {step} shows other sessions' images: {leaked}"
        assert await problems(page) == [], f"session {self.index} after {step}: {await problems(page)}"

    def record(self, step: str, kind: str, ms: float) -> None:
        self.timings.append({"session": self.index, "step": step, "kind": kind, "ms": round(ms, 1)})

    async def run(self, browser, url: str) -> None:
        context = await browser.new_context(viewport={"width": 1300, "height": 1400})
        try:
            await context.add_init_script(RECORD_ACTIONS)
            page = await context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            await page.goto(url)
            self.record("first load", "load", await rendered(page, "[data-testid='stMain'] h1", START_TITLE, what="first load"))

            await page.get_by_text("Upload", exact=True).click()
            await page.locator("[data-testid='stFileUploaderDropzoneInput']").wait_for(state="attached")
            await rendered(page, "[data-testid='stSidebar']", "Upload", what="the upload source")
            await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(self.image))
            ms = await rendered(page, "[data-testid='stSidebar'] [data-testid='stImage']", self.image.name, what="the upload")
            self.record("upload", "upload", ms)
            await self.check(page, "the upload")

            labels = list(PAGE_TITLES)
            slider_page = labels.index("Spatial attention")  # the page that shows k
            for label in labels[1:slider_page + 1]:
                await self.visit(page, label)

            new_k = 5 if self.index % 2 == 0 else 9
            # the thumb is an <input type="range">: role "slider", named after the widget's label
            slider = page.locator("[data-testid='stSidebar']").get_by_role("slider", name="Spatial kernel size k")
            await slider.focus()
            await slider.press("ArrowLeft" if new_k == 5 else "ArrowRight")
            ms = await rendered(page, "[data-testid='stMetric']", "Kernel k", f"{new_k}×{new_k}", what="the k slider")
            self.record(f"k slider to {new_k}", "slider", ms)
            await self.check(page, "the k slider")
            assert f"k={new_k}" in page.url, f"session {self.index}: the URL did not follow the slider ({page.url})"

            for label in labels[slider_page + 1:] + labels[:1]:
                await self.visit(page, label)
        finally:
            await context.close()

    async def visit(self, page, title: str) -> None:
        await page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
        ms = await rendered(page, "[data-testid='stMain'] h1", PAGE_TITLES[title], what=title)
        self.record(title, "page", ms)
        await self.check(page, title)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` (all its threads), from /proc (0 without it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def run_sessions(url: str, folder: Path) -> tuple[list[Session], float]:
    images = [session_image(i, folder) for i in range(SESSIONS)]
    sessions = [Session(i, image, [p.name for p in images]) for i, image in enumerate(images)]
    async with async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            start = time.perf_counter()
            await asyncio.gather(*(s.run(browser, url) for s in sessions))
            wall = time.perf_counter() - start
        finally:
            await browser.close()
    return sessions, wall


def test_concurrent_sessions_each_see_only_their_own_image(server, tmp_path):
    assert SESSIONS >= 1
    load_before = os.getloadavg()
    cpu_before = cpu_seconds(server.pid)
    sessions, wall = asyncio.run(run_sessions(server.url, tmp_path))
    server_cpu = cpu_seconds(server.pid) - cpu_before
    timings = [t for s in sessions for t in s.timings]
    pages = [t["ms"] for t in timings if t["kind"] == "page"]
    assert len(pages) == SESSIONS * len(PAGE_TITLES)
    summary = {
        "sessions": SESSIONS,
        "page_renders": len(pages),
        "page_render_ms": {"p50": percentile(pages, 50), "p95": percentile(pages, 95), "max": max(pages)},
        "by_kind_p95_ms": {kind: percentile([t["ms"] for t in timings if t["kind"] == kind], 95)
                           for kind in sorted({t["kind"] for t in timings})},
        "wall_seconds": round(wall, 1),
        "server_cpu_seconds": round(server_cpu, 1),
        "server_cpu_seconds_per_step": round(server_cpu / len(timings), 2),
        "cpu_cores": os.cpu_count(),
        "load_average_1min_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        "machine": platform.platform(),
        "timings": timings,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "sessions.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{SESSIONS} concurrent sessions, {len(pages)} page renders in {wall:.0f} s on {os.cpu_count()} cores: "
          f"p50 {summary['page_render_ms']['p50'] / 1000:.1f} s, p95 {summary['page_render_ms']['p95'] / 1000:.1f} s, "
          f"max {summary['page_render_ms']['max'] / 1000:.1f} s; p95 by kind (ms): {summary['by_kind_p95_ms']}; "
          f"server CPU {server_cpu:.0f} s for {len(timings)} steps ({server_cpu / len(timings):.2f} s each)")
