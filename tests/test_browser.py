"""A real browser against a real server: upload an image on a fresh server, visit every page.

Starts ``streamlit run app.py`` headless on a free loopback port and drives Debian's Chromium with
Playwright. Screenshots of every page are saved to ``artifacts/screenshots/`` (the README uses them).
Skipped only where Chromium is missing and CI is not set; in CI a missing browser fails.
"""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, require_chromium, running_app

SHOTS = ARTIFACTS / "screenshots"
PAGES = ["Channel attention", "Spatial attention", "Full CBAM", "Layer by layer", "Grad-CAM", "The shapes task", "Ablations",
         "Start here"]

pytestmark = pytest.mark.browser

require_chromium()
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server():
    with running_app("streamlit-browser-test.log") as app:
        yield app.url


@pytest.fixture()
def fresh_server():
    """A server of its own, so that the test's request is the very first one it serves."""
    with running_app("streamlit-fresh-server.log") as app:
        yield app.url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        yield b
        b.close()


def wait_until_idle(page, timeout_ms: int = 120_000) -> None:
    """Until Streamlit has finished running the script: its status widget is gone, and stays gone
    for a second (a rerun, e.g. after the first request of a fresh server, brings it back)."""
    page.wait_for_timeout(500)
    deadline = time.time() + timeout_ms / 1000
    quiet_since = None
    while time.time() < deadline:
        busy = page.locator("[data-testid='stStatusWidget']").count() > 0 or page.locator("[data-testid='stSpinner']").count() > 0
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > 1.0:
            return
        page.wait_for_timeout(200)
    raise TimeoutError("the app did not finish running within the time limit")


def make_image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    pixels[40:110, 60:150] = (240, 30, 30)
    path = tmp_path / "browser_upload.png"
    Image.fromarray(pixels).save(path)
    return path


def page_problems(page) -> list[str]:
    problems = [e.inner_text()[:300] for e in page.locator("[data-testid='stException']").all()]
    problems += [e.inner_text()[:300] for e in page.locator("[data-testid='stAlertContentError']").all()]
    return problems


def test_upload_survives_every_page_switch_on_a_fresh_server(server, browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(server)
    wait_until_idle(page)
    page.screenshot(path=str(SHOTS / "0-start-default.png"), full_page=True)

    page.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(make_image(tmp_path)))
    wait_until_idle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert "browser_upload.png" in sidebar.inner_text()

    for number, title in enumerate(PAGES, start=1):
        page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
        wait_until_idle(page)
        assert "browser_upload.png" in sidebar.inner_text(), f"the uploaded image was lost on {title!r}"
        assert page_problems(page) == [], title
        images = page.locator("[data-testid='stMain'] [data-testid='stImage'] img")
        if images.count() == 0:
            page.screenshot(path=str(SHOTS / f"failed-{title.lower().replace(' ', '-')}.png"), full_page=True)
        assert images.count() >= 1, f"no figure rendered on {title!r}"
        for i in range(images.count()):  # every figure really loaded and has a size
            image = images.nth(i)
            image.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle(), timeout=20_000)
        page.screenshot(path=str(SHOTS / f"{number}-{title.lower().replace(' ', '-')}.png"), full_page=True)
    page.close()


def test_a_bad_upload_shows_an_error_and_the_app_goes_on(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server)
    wait_until_idle(page)
    page.get_by_text("Upload", exact=True).click()
    wait_until_idle(page)
    bad = tmp_path / "not_really.png"
    bad.write_text("<html><body>hello</body></html>")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    wait_until_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    errors = page.locator("[data-testid='stAlertContentError']")
    assert errors.count() >= 1 and "not_really.png" in errors.first.inner_text()
    page.screenshot(path=str(SHOTS / "bad-upload.png"), full_page=True)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Spatial attention", exact=True).click()
    wait_until_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stMain'] [data-testid='stImage'] img").count() >= 1
    page.close()


def test_the_dockerfile_healthcheck_passes_against_the_running_server(server):
    """Run the Dockerfile's HEALTHCHECK command itself against the server (its port swapped in)."""
    import re
    import shlex

    dockerfile = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()
    check = re.search(r"HEALTHCHECK .*?\\\n\s*CMD (.+)", dockerfile).group(1)
    command = shlex.split(check.replace("127.0.0.1:8501", server.removeprefix("http://")))
    assert command[0] == "python" and "/_stcore/health" in check
    assert subprocess.run([sys.executable, *command[1:]], timeout=30).returncode == 0
    broken = [sys.executable, *shlex.split(check.replace("127.0.0.1:8501", "127.0.0.1:9"))[1:]]
    assert subprocess.run(broken, timeout=30, capture_output=True).returncode != 0
    # the image serves the app on the port it exposes
    port = re.search(r"EXPOSE (\d+)", dockerfile).group(1)
    assert f"--server.port={port}" in dockerfile and '"app.py"' in dockerfile


def test_a_lesson_link_as_the_first_request_of_a_fresh_server(fresh_server, browser):
    """Streamlit runs its old pages/ mode until st.navigation has run once in the process; a lesson
    link to a page is exactly such a first request. The app must still show its own navigation,
    apply the link, and keep the state across page switches."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{fresh_server}/spatial?sample=coffee.jpg&k=3&alpha=0.80")
    wait_until_idle(page)
    nav = page.locator("[data-testid='stSidebarNav']")
    assert "Spatial attention" in nav.inner_text() and "app" not in nav.inner_text().split()
    sidebar = page.locator("[data-testid='stSidebar']")
    assert "Coffee cup" in sidebar.inner_text()
    assert "3×3" in page.locator("[data-testid='stMain']").inner_text()
    assert page_problems(page) == []
    nav.get_by_text("Channel attention", exact=True).click()
    wait_until_idle(page)
    assert "Coffee cup" in sidebar.inner_text() and page_problems(page) == []
    assert "k=3" in page.url and "sample=coffee.jpg" in page.url
    page.close()
