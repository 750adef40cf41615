"""ui.common.figure_png: the PNG of a pure figure builder, cached by the content of its arguments
and shared by every session, so a figure whose data did not change is never drawn twice."""

import pytest
import streamlit as st
import torch
from matplotlib.figure import Figure

from cbam import plots
from ui import common

CALLS: list[tuple] = []


def counting_builder(values, *, title="t", extra=None) -> Figure:
    """A tiny builder that records each time it really draws."""
    CALLS.append((title, extra))
    return plots.pooled_descriptors(values, None, title=title)


@pytest.fixture(autouse=True)
def empty_cache():
    st.cache_data.clear()
    CALLS.clear()
    yield
    st.cache_data.clear()


def test_the_same_arguments_are_drawn_once_and_give_the_same_png():
    values = torch.linspace(-1, 1, 40)
    first = common.figure_png(counting_builder, values, title="a")
    second = common.figure_png(counting_builder, values.clone(), title="a")  # equal content, new tensor
    assert first == second and first.startswith(b"\x89PNG")
    assert len(CALLS) == 1


def test_any_change_of_content_or_option_draws_again():
    values = torch.zeros(5000)
    base = common.figure_png(counting_builder, values)
    changed = values.clone()
    changed[3217] = 1e-3  # one value deep inside a large tensor
    common.figure_png(counting_builder, changed)
    common.figure_png(counting_builder, values, title="another title")
    common.figure_png(counting_builder, values.double())  # same numbers, another dtype
    common.figure_png(counting_builder, values, extra=[torch.ones(2), torch.zeros(2)])
    common.figure_png(counting_builder, values, extra=[torch.ones(2), torch.ones(2)])
    assert len(CALLS) == 6
    assert common.figure_png(counting_builder, values) == base and len(CALLS) == 6


def test_dicts_of_tensors_are_keyed_by_every_value_not_by_their_short_repr():
    big = {"paper": torch.zeros(3000), "blog": torch.zeros(3000)}
    other = {"paper": torch.zeros(3000), "blog": torch.zeros(3000)}
    other["blog"][1500] = 5.0  # reprs of both dicts are equal (elided), contents are not
    assert repr(big) == repr(other)
    common.figure_png(counting_builder, torch.zeros(4), extra=big)
    common.figure_png(counting_builder, torch.zeros(4), extra=other)
    assert len(CALLS) == 2


def test_arguments_without_a_faithful_digest_are_drawn_every_time():
    class Opaque:
        def __repr__(self):
            return "same"

    common.figure_png(counting_builder, torch.zeros(4), extra=Opaque())
    common.figure_png(counting_builder, torch.zeros(4), extra=Opaque())
    assert len(CALLS) == 2


def test_bfloat16_tensors_are_digested_as_the_float32_numbers_the_builders_draw():
    values = torch.linspace(0, 1, 16, dtype=torch.bfloat16)
    common.figure_png(counting_builder, values)
    common.figure_png(counting_builder, values.float())  # the same numbers: the same figure
    common.figure_png(counting_builder, values + 0.5)
    assert len(CALLS) == 2
