"""Settings for every test."""

import pytest
import torch


@pytest.fixture()
def one_thread():
    """Two cores are shared here: one thread per test, and the setting given back afterwards
    (``pytestmark = pytest.mark.usefixtures("one_thread")`` in a test module)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
