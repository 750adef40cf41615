"""Draw ahead: while a student reads a page, draw what the page would show after the next slider move.

Moving the r or k slider to a value no session has used costs 0.4–0.8 s on two cores, nearly all of
it matplotlib drawing three or four figures; a figure already in the PNG cache that sessions share
(``ui.common.figure_png``) costs about 25 ms to show. r and k take about six values each, so after a
step-by-step page has run, it hands this module the work of drawing its figures at the other values
of r and of k, nearest first (``ui.common.prefetch_variants``). A background thread does that work
into the same cache, one small step (one trace or one figure) at a time, so that the page finds its
figures ready when the slider moves.

The thread must never slow down what a user waits for:

* it takes a step only while no script run is in progress, anywhere in the server, and none has
  been for ``QUIET_S`` (it checks before every step, and a step lasts 0.05–0.2 s);
* each session keeps only its latest request: a new page run replaces the unfinished work of the
  session's previous one, and the newest request goes first; beyond ``MAX_REQUESTS`` sessions
  waiting, the oldest request is dropped (a busy server has little idle time to draw in anyway);
* a script run that starts during a step shares the interpreter with it until the step ends (a
  slider moved at once: 511 / 248 / 628 ms on Channel / Spatial / Full CBAM, against 573 / 401 /
  579 ms with drawing ahead off, ``benchmarks/bench_app.py``);
* a step that fails drops its request, with a warning in the server's log; the page then draws
  the figure itself, as it would have without this module.

``CBAM_LAB_PREFETCH=0`` in the environment turns it off; ``set_enabled`` does the same in a process.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterator

from ui import memory

IDLE_POLL_S = 0.05  # how often a waiting step looks again for running scripts
QUIET_S = 0.4
"""How long after the last script run ended the thread waits before a step: the run's figures are
still travelling to the browser then (it fetches each PNG from the server), and a step holding the
interpreter would slow that down (measured in Chromium: 0.2 s instead of 0.1 s per slider move)."""
SCRIPT_THREAD_NAME = "ScriptRunner.scriptThread"  # Streamlit's name for the thread of a script run
MAX_REQUESTS = 8  # each holds its block's input F: up to a few MB

_log = logging.getLogger(__name__)
_enabled = os.environ.get("CBAM_LAB_PREFETCH", "1") != "0"
_changed = threading.Condition()
_requests: dict[str, Iterator[object]] = {}  # owner (a session) -> its remaining steps, oldest first
_thread: threading.Thread | None = None
_busy = False  # a step is being taken right now
_last_run_seen = 0.0  # time.monotonic() when a script run was last seen in progress
steps_taken = 0
"""How many steps the thread has taken since the process started (for tests and benchmarks)."""


def is_enabled() -> bool:
    return _enabled


def set_enabled(flag: bool) -> None:
    """Allow (True) or stop (False) drawing ahead; stopping also drops every waiting request."""
    global _enabled
    with _changed:
        _enabled = bool(flag)
        if not _enabled:
            _requests.clear()
        _changed.notify_all()


def submit(owner: str, steps: Iterator[object]) -> bool:
    """Replace ``owner``'s request with ``steps``: an iterator whose every ``next()`` does one
    short piece of the work (its values are ignored). Returns False when drawing ahead is off."""
    global _thread
    with _changed:
        if not _enabled:
            return False
        _requests.pop(owner, None)
        _requests[owner] = steps  # the newest request is the last
        while len(_requests) > MAX_REQUESTS:
            del _requests[next(iter(_requests))]  # the oldest
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_work_forever, name="cbam-lab-prefetch", daemon=True)
            _thread.start()
            atexit.register(_stop_at_exit)
        _changed.notify_all()
    return True


def cancel(owner: str) -> None:
    """Drop ``owner``'s waiting request, if any (a step already being taken finishes)."""
    with _changed:
        _requests.pop(owner, None)
        _changed.notify_all()


def pending() -> int:
    """How many requests still have steps to take."""
    with _changed:
        return len(_requests) + _busy


def wait_until_done(timeout: float) -> bool:
    """Wait until every request is finished (or dropped); False if ``timeout`` seconds ran out first."""
    deadline = time.monotonic() + timeout
    with _changed:
        while _requests or _busy:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _changed.wait(left)
    return True


def script_running() -> bool:
    """Whether any script run (of any session) is in progress in this process."""
    return any(t.name == SCRIPT_THREAD_NAME and t.is_alive() for t in threading.enumerate())


def _next_step() -> tuple[str, Iterator[object]]:
    """The newest request, once there is one and no script has run for ``QUIET_S`` seconds (the
    request is left in ``_requests``)."""
    global _busy, _last_run_seen
    with _changed:
        while True:
            while not _requests:
                _changed.wait()
            now = time.monotonic()
            if script_running():
                _last_run_seen = now
            elif now - _last_run_seen >= QUIET_S:
                _busy = True
                owner = next(reversed(_requests))
                return owner, _requests[owner]
            _changed.wait(IDLE_POLL_S)


def _work_forever() -> None:
    global _busy, steps_taken
    while True:
        owner, steps = _next_step()
        finished = False
        try:
            next(steps)
            steps_taken += 1
        except StopIteration:
            finished = True
        except Exception:  # noqa: BLE001 - work ahead is optional: the page will do it itself
            _log.warning("drawing ahead failed; the request is dropped", exc_info=True)
            finished = True
        with _changed:
            _busy = False
            if finished and _requests.get(owner) is steps:
                del _requests[owner]
            all_done = not _requests
            _changed.notify_all()
        if finished and all_done:
            memory.trim_soon(after_this_thread=False)  # what the traces and drawings freed goes back


def _stop_at_exit() -> None:
    """Let a step being taken finish before the interpreter goes away: a daemon thread stopped in the
    middle of a PyTorch call aborts the process ("terminate called without an active exception")."""
    set_enabled(False)
    wait_until_done(30)
