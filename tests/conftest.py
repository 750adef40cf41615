"""Settings for every test."""

import pytest

from ui import prefetch


@pytest.fixture(autouse=True)
def no_drawing_ahead():
    """AppTest runs the pages in the test process, so the app's background prefetcher (ui/prefetch.py)
    would go on drawing figures after each test, competing for the two cores and writing into the
    figure cache that other tests count. It is off unless a test turns it on (tests/test_prefetch.py);
    the browser and sessions tests run real servers, where it is on as it is for users."""
    prefetch.set_enabled(False)
    yield
    prefetch.set_enabled(False)
