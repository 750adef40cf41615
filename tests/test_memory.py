"""ui.memory: freed heap is handed back to the system by a background thread, at most once per
interval, and never inside a script run."""

import threading
import time

import pytest

from ui import memory


def glibc_available() -> bool:
    return memory._malloc_trim() is not None


def fresh_trimmer(monkeypatch, trim, interval_s: float = memory.INTERVAL_S) -> None:
    """ui.memory as in a new process, with ``trim`` (None: no glibc) in place of malloc_trim."""
    monkeypatch.setattr(memory, "_thread", None)
    monkeypatch.setattr(memory, "_unavailable", False)
    monkeypatch.setattr(memory, "_malloc_trim", lambda: trim)
    monkeypatch.setattr(memory, "_wanted", threading.Event())
    monkeypatch.setattr(memory, "INTERVAL_S", interval_s)


@pytest.mark.skipif(not glibc_available(), reason="no glibc malloc_trim on this platform")
def test_trim_soon_trims_in_a_background_thread_at_most_once_per_interval(monkeypatch):
    calls: list[tuple[str, float]] = []

    def fake_trim(pad):
        calls.append((threading.current_thread().name, time.monotonic()))
        return 1

    fresh_trimmer(monkeypatch, fake_trim, 0.3)
    start = time.monotonic()
    for _ in range(50):  # a burst of runs asking for a trim
        assert memory.trim_soon() is True
    time.sleep(0.15)
    assert len(calls) == 1  # one trim for the whole burst
    assert calls[0][0] == "cbam-lab-malloc-trim" and calls[0][0] != threading.current_thread().name
    time.sleep(0.3)
    memory.trim_soon()
    time.sleep(0.15)
    assert len(calls) == 2 and calls[1][1] - calls[0][1] >= 0.29
    assert calls[0][1] >= start


def test_without_malloc_trim_nothing_is_started(monkeypatch):
    fresh_trimmer(monkeypatch, None)
    assert memory.trim_soon() is False
    assert memory._thread is None
    assert memory.trim_soon() is False  # and it does not look again


@pytest.mark.skipif(not glibc_available(), reason="no glibc malloc_trim on this platform")
def test_trim_soon_gives_freed_heap_back():
    """Many small blocks freed stay resident (the heap's top is still in use) until the background
    trim returns them: the resident size drops without this thread doing anything."""
    def rss_mb() -> float:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    blocks = [bytearray(60_000) for _ in range(4000)]  # ~240 MB in blocks below the mmap threshold
    keep = blocks[-1]  # the last block keeps the heap's top in place, so free() alone cannot shrink it
    for i in range(len(blocks) - 1):
        blocks[i] = None
    del blocks
    before = rss_mb()
    assert memory.trim_soon()
    deadline = time.monotonic() + 3 * memory.INTERVAL_S + 2
    while rss_mb() > before - 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert before - rss_mb() > 100, (before, rss_mb())
    assert len(keep) == 60_000


@pytest.mark.skipif(not glibc_available(), reason="no glibc malloc_trim on this platform")
def test_the_trim_waits_for_the_run_that_asked_to_end(monkeypatch):
    calls: list[float] = []
    fresh_trimmer(monkeypatch, lambda pad: calls.append(time.monotonic()), 0.05)
    ended: list[float] = []

    def script_run():  # asks for a trim at its start, then works for a while
        memory.trim_soon()
        time.sleep(0.4)
        ended.append(time.monotonic())

    run = threading.Thread(target=script_run, name="ScriptRunner.scriptThread")
    run.start()
    run.join()
    deadline = time.monotonic() + 2
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls and calls[0] >= ended[0], (calls, ended)


@pytest.mark.skipif(not glibc_available(), reason="no glibc malloc_trim on this platform")
def test_a_thread_that_goes_on_can_ask_for_a_trim_now(monkeypatch):
    """ui.prefetch's thread never ends: its trim must not wait for it (nor for WAIT_FOR_RUN_S)."""
    calls: list[float] = []
    fresh_trimmer(monkeypatch, lambda pad: calls.append(time.monotonic()), 0.05)
    monkeypatch.setattr(memory, "WAIT_FOR_RUN_S", 5.0)
    release = threading.Event()

    def worker():  # asks, then goes on working
        memory.trim_soon(after_this_thread=False)
        release.wait(3)

    thread = threading.Thread(target=worker)
    asked = time.monotonic()
    thread.start()
    deadline = asked + 2
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    thread.join()
    assert calls and calls[0] - asked < 1.0, calls
