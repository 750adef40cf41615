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
         "Start here", "Step by step"]

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


CHARTS = "[data-testid='stMain'] [data-testid='stVegaLiteChart']"
IMAGES = "[data-testid='stMain'] [data-testid='stImage'] img"


def drawn_views(page, at_least: int = 1) -> int:
    """How many charts and images the page shows, each drawn for real: a chart's canvas has a size,
    an image has loaded. Streamlit loads the code of a chart or an image element when the page first
    needs it (a fresh browser shows the page's text before its charts: with that code held back, the
    page was idle with no chart; it failed so in CI and in 2 of 48 runs here), so first wait up to
    60 s for ``at_least`` of them to be on the page."""
    images = page.locator(IMAGES)
    try:
        page.wait_for_function("([charts, images, n]) => document.querySelectorAll(charts).length"
                               " + document.querySelectorAll(images).length >= n",
                               arg=[CHARTS, IMAGES, at_least], timeout=60_000)
    except sync_api.TimeoutError:
        pass  # fewer than at_least: the caller's assertion says so
    charts = page.locator(CHARTS)
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        page.wait_for_function("el => { const c = el.querySelector('canvas, svg'); return c && c.getBoundingClientRect().width > 50; }",
                               arg=chart.element_handle(), timeout=20_000)
    for i in range(images.count()):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 50", arg=image.element_handle(), timeout=20_000)
    return charts.count() + images.count()


def tooltip_at(page, element, fx: float, fy: float) -> str:
    """Move the pointer to a fraction (fx, fy) of ``element``'s box; the chart tooltip's text ("" if none)."""
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.wait_for_timeout(300)
    tip = page.locator("#vg-tooltip-element.visible")
    return tip.inner_text() if tip.count() else ""


def find_tooltip(page, element, needle: str | tuple[str, ...], points) -> tuple[str, tuple[float, float]]:
    """The first of ``points`` whose tooltip contains ``needle`` (each of them, for a tuple), and its text."""
    seen = []
    for fx, fy in points:
        text = tooltip_at(page, element, fx, fy)
        if all(n in text for n in ((needle,) if isinstance(needle, str) else needle)):
            return text, (fx, fy)
        seen.append(text)
    raise AssertionError(f"no tooltip with {needle!r} at {points}: {seen}")


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
        views = drawn_views(page)
        if views == 0:
            page.screenshot(path=str(SHOTS / f"failed-{title.lower().replace(' ', '-')}.png"), full_page=True)
        assert views >= 1, f"nothing drawn on {title!r}"
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
    assert drawn_views(page) >= 1
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
    # The first run (the old pages/ mode) reruns itself through app.py: wait for that run's page.
    sync_api.expect(sidebar).to_contain_text("Coffee cup", timeout=60_000)
    sync_api.expect(page.locator("[data-testid='stMain']")).to_contain_text("3×3", timeout=60_000)
    assert page_problems(page) == []
    nav.get_by_text("Channel attention", exact=True).click()
    wait_until_idle(page)
    assert "Coffee cup" in sidebar.inner_text() and page_problems(page) == []
    assert "k=3" in page.url and "sample=coffee.jpg" in page.url
    page.close()


def click_at(page, element, fx: float, fy: float) -> None:
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    wait_until_idle(page)


def number_after(text: str, label: str) -> str:
    """The value that follows ``label`` in a tooltip's text ("channel\\n12\\nMc\\n0.81...")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[lines.index(label) + 1]


def test_hovering_mc_shows_a_channel_and_its_weight_and_a_click_follows_that_channel(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/channel")
    wait_until_idle(page)
    chart = page.locator(".st-key-channel_weights")
    text, (fx, fy) = find_tooltip(page, chart, "Mc", [(x / 20, 0.6) for x in range(2, 19)])
    channel, weight = int(number_after(text, "channel")), float(number_after(text, "Mc"))
    assert 0 <= weight <= 1 and "logit" in text  # shown to four places: a saturated weight reads 1.0000
    click_at(page, chart, fx, fy)
    assert page.locator("input[aria-label='Channel']").input_value() == str(channel)
    latex = page.locator("[data-testid='stMain'] .katex-html").last.inner_text()
    assert f"{weight:.4f}" in latex.replace("\n", ""), latex  # the same Mc, in Eq. 2 with its numbers
    assert str(channel) in page.locator("[data-testid='stMain'] [data-testid='stMultiSelect']").first.inner_text()
    page.screenshot(path=str(SHOTS / "channel-clicked.png"), full_page=True)
    page.close()


def move_a_slider_keeping_the_charts(page, url: str, slider: int, keys: list[str], drawn: str, metric: int, shows: str) -> None:
    """Open ``url``, press ← on sidebar slider ``slider``: the charts ``keys`` must keep their canvas
    element (the Vega view was kept, only its data changed), ``drawn``'s must show new pixels, and
    metric ``metric`` must then show ``shows``."""
    page.goto(url)
    wait_until_idle(page)
    canvases = {key: page.locator(f".st-key-view-{key} canvas") for key in keys}
    for key, canvas in canvases.items():
        canvas.evaluate("(c, key) => { c.dataset.before = key; }", key)
    before = canvases[drawn].evaluate("c => c.toDataURL()")
    thumb = page.locator("[data-testid=stSidebar] [data-testid=stSlider] input[type=range]").nth(slider)
    thumb.focus()
    thumb.press("ArrowLeft")
    wait_until_idle(page)
    assert shows in page.locator("[data-testid=stMetric]").nth(metric).inner_text()
    for key, canvas in canvases.items():
        assert canvas.get_attribute("data-before") == key, f"the chart {key!r} was built again"
    assert canvases[drawn].evaluate("c => c.toDataURL()") != before
    assert not page_problems(page)


def test_a_slider_move_hands_each_chart_its_new_data_instead_of_building_it_again(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    kept = ["most_and_least", "descriptors", "mlp", "channel_weights", "before_after"]  # specs that do not depend on r
    move_a_slider_keeping_the_charts(page, f"{server}/channel?r=16", 0, kept, "channel_weights", 1, "8")  # r 16 → 8
    page.close()


def test_a_new_k_hands_the_kernel_sized_charts_their_new_data_instead_of_building_them_again(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    kept = ["spatial_logits", "spatial_mask", "kernel", "position_inputs", "position_products"]  # specs that do not depend on k
    move_a_slider_keeping_the_charts(page, f"{server}/spatial?k=7", 1, kept, "kernel", 0, "5×5")  # k 7 → 5
    page.close()


def test_panel_headers_follow_the_data_when_only_the_data_is_swapped(browser):
    """Heatmap panels are keyed by their number and read their names from the data: after a swap,
    each header shows the new name of its panel (the names carry each channel's weight)."""
    with running_app("streamlit-panel-names.log", script=Path(__file__).parent / "apps" / "panel_names.py") as app:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(app.url)
        wait_until_idle(page)
        chart = page.locator(".st-key-view-grid svg.marks")
        chart.evaluate("svg => { svg.dataset.before = 'yes'; }")
        for move in range(3):
            title, *expected = page.locator("[data-testid=stCode] code").inner_text().split("\n")
            headers = chart.locator("g.role-title-text text").all_text_contents()  # the chart's title and each panel's
            headers.remove(title)
            assert headers == expected, (move, headers, expected)
            slider = page.locator("[data-testid=stSlider] input[type=range]").first
            slider.focus()
            slider.press("ArrowRight")
            wait_until_idle(page)
        assert chart.get_attribute("data-before") == "yes"  # the same view all along: only its data changed
        assert not page_problems(page)
        page.close()


def test_hovering_a_feature_map_drawn_as_a_picture_shows_its_channel_position_and_activation(server, browser):
    """The feature grid is one picture per channel; the cells of the channel under the pointer get marks
    for the tooltip (it shows from the second move on a channel: the first one makes the marks)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/channel")
    wait_until_idle(page)
    chart = page.locator(".st-key-view-most_and_least canvas.marks")
    top = find_tooltip(page, chart, "activation", [(x / 100, 0.3) for x in range(8, 22, 2)])[0]
    bottom = find_tooltip(page, chart, "activation", [(x / 100, 0.72) for x in range(8, 22, 2)])[0]
    weights = []
    for text in (top, bottom):
        name = number_after(text, "map")  # "ch 12 · Mc 0.81"
        assert name.startswith("ch ") and " · Mc " in name, text
        weights.append(float(name.rsplit(" ", 1)[1]))
        assert int(number_after(text, "x")) >= 0 and int(number_after(text, "y")) >= 0
        float(number_after(text, "activation"))
    assert weights[0] >= weights[1]  # the top row holds the most attended channels, the bottom row the least
    assert tooltip_at(page, chart, 0.005, 0.72) == ""  # off the pictures: no cell's tooltip stays up
    page.locator(".st-key-view-most_and_least").screenshot(path=str(SHOTS / "feature-grid-hover.png"))
    page.close()


def test_hovering_every_blocks_channel_weights_shows_the_block_the_channel_and_its_weight(server, browser):
    """Each block's Mc is one picture a row; the channels of the row under the pointer get marks."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/layers")
    wait_until_idle(page)
    chart = page.locator(".st-key-view-channel_heatmap canvas.marks")
    text = find_tooltip(page, chart, ("Mc", "channel"), [(x / 100, 0.45) for x in range(20, 40, 2)])[0]
    block = number_after(text, "block")  # "stages.2.cbam (C=64)"
    channels = int(block.rsplit("C=", 1)[1].rstrip(")"))
    assert 0 <= int(number_after(text, "channel")) < channels and 0 < float(number_after(text, "Mc")) < 1
    page.close()


def test_hovering_ms_shows_a_position_and_its_value_and_a_click_moves_the_window_there(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/spatial")
    wait_until_idle(page)
    chart = page.locator(".st-key-spatial_mask canvas.marks")  # the map sits left in its column: aim at the chart itself
    grid = [(x / 10, y / 10) for y in (4, 5, 6) for x in (2, 3, 4, 5, 6)]
    # Ms is a picture: the pointer's first move on it names the map, the next ones show the cell under it
    text, (fx, fy) = find_tooltip(page, chart, ("Ms", "x"), grid)
    x, y, ms = int(number_after(text, "x")), int(number_after(text, "y")), float(number_after(text, "Ms"))
    assert 0 < ms < 1
    click_at(page, chart, fx, fy)
    headers = page.locator("[data-testid='stMain'] h2").all_inner_texts()
    assert any(f"x = {x}, y = {y}" in h for h in headers), headers
    assert any(f"{ms:.4f}" in k.replace("\n", "") for k in page.locator("[data-testid='stMain'] .katex-html").all_inner_texts())
    page.screenshot(path=str(SHOTS / "spatial-clicked.png"), full_page=True)
    page.close()


def test_the_guided_walk_follows_a_lesson_link_the_arrow_keys_and_a_click_on_the_diagram(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server}/steps?step=5")
    wait_until_idle(page)

    def header() -> str:
        return page.locator("[data-testid='stMain'] h2").first.inner_text()

    assert header().startswith("5 · The channel weights Mc"), header()
    page.locator("[data-testid='stMain'] h1").click()  # focus the page, not a widget
    page.keyboard.press("ArrowRight")
    wait_until_idle(page)
    assert header().startswith("6 · "), header()
    assert "step=6" in page.url
    page.keyboard.press("ArrowLeft")
    wait_until_idle(page)
    assert header().startswith("5 · "), header()
    diagram = page.locator(".st-key-steps-diagram canvas.marks")
    box = diagram.bounding_box()
    # the boxes: channel attention's six on the top row, spatial attention's four below; aim at the 9th (Ms)
    page.mouse.click(box["x"] + box["width"] * (2 * 1.2 + 0.5 + 0.1) / 7.2, box["y"] + box["height"] * (1.35 + 0.1) / 1.9)
    wait_until_idle(page)
    assert header().startswith("9 · Sigmoid: the spatial mask Ms"), header()
    assert page_problems(page) == []
    page.screenshot(path=str(SHOTS / "step-by-step-clicked.png"), full_page=True)
    page.close()


def test_your_own_model_on_layer_by_layer(browser):
    """``streamlit run app.py -- --model-code docs/examples/my_cbam_net.py:build``: the README's example,
    opened on /layers as a user would. Its screenshot is artifacts/screenshots/own-model-layers.png."""
    args = ("--model-code", "docs/examples/my_cbam_net.py:build", "--input-size", "128")
    with running_app("streamlit-own-model.log", args=args) as app:
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.goto(f"{app.url}/layers")
        wait_until_idle(page)
        # A fresh server's first request runs the page twice (see app.py) and then loads and runs the
        # user's network: the status widget can be gone for a moment in between, so wait for the page's
        # last chart's container before reading the page (and drawn_views for the charts themselves:
        # a fresh browser may still be loading their code).
        page.locator(".st-key-view-block_summary").wait_for(timeout=120_000)
        sync_api.expect(page.get_by_role("combobox", name="Model")).to_have_value(
            "Your model: build() of my_cbam_net.py", timeout=60_000)
        assert page_problems(page) == []
        assert drawn_views(page, at_least=5) >= 5  # four masks and the channel heatmap at least
        main = page.locator("[data-testid='stMain']").inner_text()
        assert "4 CBAM blocks traced" in main and "Prediction: class " in main.replace("**", "")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "own-model-layers.png"))
        page.close()
