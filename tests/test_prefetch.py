"""Drawing ahead (ui/prefetch.py, ui.common.prefetch_variants): while a page is read, a background
thread draws its figures at the neighbouring values of r and k, so that moving a slider finds them
in the shared PNG cache. It must work only while no script runs, keep each session's latest request
only, and draw exactly what the page would draw."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cbam import plots
from ui import common, prefetch


@pytest.fixture
def drawing_ahead():
    prefetch.set_enabled(True)
    yield
    prefetch.set_enabled(False)
    assert prefetch.wait_until_done(30)


def steps(log: list, name: str, count: int, fail_at: int | None = None):
    for index in range(count):
        if index == fail_at:
            raise RuntimeError("a step failed")
        log.append((name, index))
        yield


def test_nothing_is_done_while_a_script_runs(drawing_ahead):
    release = threading.Event()
    script = threading.Thread(target=release.wait, name=prefetch.SCRIPT_THREAD_NAME, daemon=True)
    script.start()
    log: list = []
    assert prefetch.submit("session", steps(log, "a", 3))
    time.sleep(0.4)
    assert prefetch.script_running() and log == []  # held back while the "script" runs
    release.set()
    script.join()
    assert prefetch.wait_until_done(10)
    assert log == [("a", 0), ("a", 1), ("a", 2)]


def test_a_session_keeps_only_its_latest_request_and_the_newest_goes_first(drawing_ahead):
    release = threading.Event()
    script = threading.Thread(target=release.wait, name=prefetch.SCRIPT_THREAD_NAME, daemon=True)
    script.start()  # hold the worker while the requests arrive
    log: list = []
    prefetch.submit("one", steps(log, "one-old", 2))
    prefetch.submit("two", steps(log, "two", 2))
    prefetch.submit("one", steps(log, "one-new", 2))  # replaces "one-old", and is now the newest
    assert prefetch.pending() == 2
    release.set()
    script.join()
    assert prefetch.wait_until_done(10)
    assert log == [("one-new", 0), ("one-new", 1), ("two", 0), ("two", 1)]


def test_only_the_newest_requests_wait(drawing_ahead, monkeypatch):
    monkeypatch.setattr(prefetch, "MAX_REQUESTS", 3)
    release = threading.Event()
    script = threading.Thread(target=release.wait, name=prefetch.SCRIPT_THREAD_NAME, daemon=True)
    script.start()
    log: list = []
    for session in range(5):
        prefetch.submit(f"s{session}", steps(log, f"s{session}", 1))
    assert prefetch.pending() == 3
    release.set()
    script.join()
    assert prefetch.wait_until_done(10)
    assert log == [("s4", 0), ("s3", 0), ("s2", 0)]


def test_a_failing_step_drops_its_request_only(drawing_ahead):
    log: list = []
    release = threading.Event()
    script = threading.Thread(target=release.wait, name=prefetch.SCRIPT_THREAD_NAME, daemon=True)
    script.start()
    prefetch.submit("bad", steps(log, "bad", 3, fail_at=1))
    prefetch.submit("good", steps(log, "good", 2))
    release.set()
    script.join()
    assert prefetch.wait_until_done(10)
    assert log == [("good", 0), ("good", 1), ("bad", 0)]


def test_switched_off_it_takes_no_work():
    prefetch.set_enabled(False)
    log: list = []
    assert not prefetch.submit("session", steps(log, "a", 2))
    assert prefetch.pending() == 0 and log == []


def test_neighbouring_values_come_first():
    assert common._nearest_first([1, 2, 4, 8, 16, 32], 8) == [4, 16, 2, 32, 1]
    assert common._nearest_first([1, 3, 5, 7, 9, 11], 1) == [3, 5, 7, 9, 11]
    assert common._nearest_first([1, 3, 5], 4) == []  # a value off the slider: nothing to guess from


# --------------------------------------------------------------------------------------------
# In the app: after the prefetcher is done, a slider move draws nothing, and shows the same images
# --------------------------------------------------------------------------------------------


def new_app() -> AppTest:
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=300)
    at.query_params["model"] = "demo"
    return at


def shown_images(at: AppTest) -> list[str]:
    """The media URLs of the page's images, in order: Streamlit names each by a hash of its bytes."""
    return [image.proto.imgs[0].url for image in at.main.get("image")]


@pytest.mark.slow
@pytest.mark.parametrize(("page", "slider"), [("pages/channel.py", "w.ratio"), ("pages/spatial.py", "w.kernel"),
                                             ("pages/full.py", "w.ratio")])
def test_after_drawing_ahead_a_slider_move_draws_nothing_and_shows_what_the_page_draws(page, slider, drawing_ahead,
                                                                                        monkeypatch):
    st.cache_data.clear()
    drawn: list[str] = []
    original = plots.figure_to_png
    monkeypatch.setattr(plots, "figure_to_png", lambda fig, *a, **k: drawn.append(fig.get_suptitle()) or original(fig, *a, **k))

    at = new_app().run()
    at.switch_page(page).run()
    assert not at.exception
    assert prefetch.wait_until_done(120)
    options = [int(v) for v in at.select_slider(key=slider).options]
    current = options.index(int(at.select_slider(key=slider).value))
    neighbour = options[current + 1] if current + 1 < len(options) else options[current - 1]
    assert prefetch.steps_taken > 0 and len(drawn) > 5  # the page's own figures and those drawn ahead

    drawn.clear()
    at.select_slider(key=slider).set_value(neighbour).run()
    assert not at.exception and drawn == []  # every figure came from the cache
    ahead = shown_images(at)

    # The same view drawn from scratch, without drawing ahead: the very same pictures.
    prefetch.set_enabled(False)
    st.cache_data.clear()
    fresh = new_app().run()
    fresh.switch_page(page).run()
    fresh.select_slider(key=slider).set_value(neighbour).run()
    assert not fresh.exception and drawn  # this time the page drew them itself
    assert len(ahead) >= 3
    assert ahead == shown_images(fresh)


EXIT_WHILE_DRAWING = """
import sys, time
sys.path.insert(0, sys.argv[1])
import torch
from ui import prefetch

def steps():  # endless work, each step inside PyTorch's thread pool for a while
    a = torch.randn(1500, 1500)
    while True:
        for _ in range(5):
            a = torch.tanh(a @ a / 1500)
        yield

prefetch.set_enabled(True)
prefetch.submit("session", steps())
time.sleep(1.0)
assert prefetch.steps_taken > 0
"""


def test_the_process_exits_cleanly_while_a_step_is_being_taken(tmp_path):
    """The interpreter must not end under a step: a daemon thread stopped inside PyTorch aborts the
    process ("terminate called without an active exception", exit status 134)."""
    script = tmp_path / "exit_while_drawing.py"
    script.write_text(EXIT_WHILE_DRAWING)
    done = subprocess.run([sys.executable, str(script), str(Path(__file__).resolve().parent.parent)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_a_hidden_slider_is_not_drawn_ahead_and_resnet_blocks_are(drawing_ahead, monkeypatch, caplog):
    """A lesson link that fixes r leaves only k to draw ahead; CBAM-ResNet-50's blocks (C = 512 here)
    take the same path as the demo's."""
    st.cache_data.clear()
    settings: list[tuple[int, int]] = []
    original = common._variant_steps

    def recording(base, trained, x, device, chosen, figures):
        settings.extend(chosen)
        return original(base, trained, x, device, chosen, figures)

    monkeypatch.setattr(common, "_variant_steps", recording)
    drawn: list[str] = []
    png = plots.figure_to_png
    monkeypatch.setattr(plots, "figure_to_png", lambda fig, *a, **k: drawn.append(fig.get_suptitle()) or png(fig, *a, **k))

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=300)
    for key, value in {"model": "untrained-resnet50", "layer": "layer2.0.cbam", "r": "4", "k": "3", "hide": "ratio"}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/spatial.py").run()
    assert not at.exception
    assert prefetch.wait_until_done(300)
    assert settings and all(ratio == 4 for ratio, _ in settings)  # r is fixed by the link
    assert [kernel for _, kernel in settings] == [1, 5, 7, 9, 11]  # nearest k first
    assert "not drawing ahead" not in caplog.text and "drawing ahead failed" not in caplog.text
    drawn.clear()
    at.select_slider(key="w.kernel").set_value(5).run()
    assert not at.exception and drawn == []
