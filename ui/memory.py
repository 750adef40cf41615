"""Give freed memory back to the operating system, so a long-running server's size follows its use.

Each run of a page allocates and frees hundreds of megabytes: activations of a network, traces, figures
being drawn. glibc's allocator keeps what is freed for later instead of returning it to the system, and it
keeps it per thread arena; Streamlit runs every script run in a new thread, so the kept memory can reach
hundreds of megabytes that no Python object holds (measured with ``benchmarks/bench_memory.py --census``:
between 4 and 359 MB, depending on the moment). ``malloc_trim(0)`` hands it back.

A trim costs 25–50 ms, so it is not done inside a run: ``trim_soon()`` (called once per page run, by
``ui.common.current``) wakes a background thread, which waits for the run that asked to end (each
script run has its own thread) and then trims, at most once every ``INTERVAL_S`` seconds. ctypes releases the GIL during the call, so a run
going on meanwhile is not held up (it may wait briefly for the allocator's lock). Where there is no
glibc (macOS, Windows, musl), nothing is done.
"""

from __future__ import annotations

import ctypes
import gc
import threading

INTERVAL_S = 0.5
WAIT_FOR_RUN_S = 5.0  # a long run (the Training Lab) is not waited for longer than this

_wanted = threading.Event()
_started = threading.Lock()
_thread: threading.Thread | None = None
_unavailable = False
_requester: threading.Thread | None = None  # the thread of the latest run that asked for a trim


def _libc_function(name: str):
    """glibc's function ``name``, or None where there is no glibc (macOS, Windows, musl)."""
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def _malloc_trim():
    return _libc_function("malloc_trim")


def _trim_forever(trim) -> None:
    while True:
        _wanted.wait()
        _wanted.clear()
        requester = _requester
        if requester is not None and requester is not threading.main_thread():
            requester.join(WAIT_FOR_RUN_S)  # what a run frees is freed when it ends
        trim(0)
        threading.Event().wait(INTERVAL_S)  # at most one trim per interval, however many runs ask


M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_arenas(count: int = 2) -> bool:
    """Let glibc's allocator keep at most ``count`` arenas (pools of heap), as the environment
    variable ``MALLOC_ARENA_MAX`` would. By default it makes up to 8 per core, one per thread that
    meets a locked one; each keeps its own freed memory, so a server whose every run is a new thread
    spreads its garbage over many of them. Takes effect only while fewer than 8 arenas exist (glibc
    fixes its limit then), so call it early, at the app's start; False where there is no glibc."""
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, int(count)))


def trim_soon(*, after_this_thread: bool = True) -> bool:
    """Ask for freed heap to be returned to the system once the calling thread (a script run) has
    ended, or at once with ``after_this_thread=False`` (for a thread that goes on, such as
    ``ui.prefetch``'s); False where this platform's allocator has no ``malloc_trim``."""
    global _thread, _unavailable, _requester
    if _unavailable:
        return False
    if _thread is None:
        with _started:
            if _thread is None:
                trim = _malloc_trim()
                if trim is None:
                    _unavailable = True
                    return False
                _thread = threading.Thread(target=_trim_forever, args=(trim,), name="cbam-lab-malloc-trim", daemon=True)
                _thread.start()
    _requester = threading.current_thread() if after_this_thread else None
    _wanted.set()
    return True


def freeze_loaded_objects() -> int:
    """Exempt every object alive now from Python's cyclic garbage collector (``gc.freeze``); returns
    how many there were.

    Called once, when the app's modules have been imported: torch, matplotlib and Streamlit leave
    some 300 000 container objects that live as long as the process. The collector's oldest generation
    walks all of them every few hundred thousand allocations, and drawing one figure makes about that
    many (ticks, texts, transforms): measured on the before/after figure, one draw in five took
    190 ms longer, 235 ms on average instead of 170 ms. Frozen objects are still freed when their
    reference count drops to zero; only cycles among them would stay, and modules do not go away."""
    gc.collect()  # the import's own garbage first, so that it is not kept forever
    gc.freeze()
    return gc.get_freeze_count()


# At import, i.e. when the app's code is first loaded into the server process: early enough for
# glibc to still accept an arena limit (see limit_arenas). Measured with benchmarks/bench_memory.py:
# with 2 arenas, what stays resident outside the caches after 300 reruns fell from +22 MB to −16 MB.
limit_arenas()
