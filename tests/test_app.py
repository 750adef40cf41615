"""The Streamlit app through AppTest: every page, uploads, sliders, page switches, bad files."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app.py"
DEFAULT_TITLE = "Shapes task: a red circle among distractors"
PAGES = ["pages/start.py", "pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py",
         "pages/gradcam.py", "pages/shapes.py", "pages/ablations.py"]


def png_bytes(seed: int = 0, size=(120, 90)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    pixels[20:60, 30:80] = (250, 20, 20)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def new_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r} among {[m.label for m in at.metric]}")


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.radio(key="w.source").set_value("Upload").run()
    at.sidebar.get("file_uploader")[0].upload(name, content, "image/png").run()
    return at


@pytest.fixture(scope="module")
def app() -> AppTest:
    return new_app()


def test_every_page_renders_with_the_default_sample(app):
    assert app.session_state["lab"].image_label == DEFAULT_TITLE
    for page in PAGES:
        go(app, page)
        assert not app.error, [e.value for e in app.error]
        assert len(app.main.get("vega_lite_chart")) + len(app.main.get("image")) >= 1, page


def test_sidebar_controls_exist_and_are_labelled(app):
    labels = {w.label for w in app.sidebar.get("selectbox")} | {w.label for w in app.sidebar.get("select_slider")}
    assert {"Model", "Layer", "Device", "Reduction ratio r", "Spatial kernel size k"} <= labels
    assert "cpu" in app.selectbox(key="w.device").options or "CPU" in app.selectbox(key="w.device").options


def test_upload_is_used_and_kept_across_pages():
    at = new_app()
    upload(at, "red_box.png", png_bytes(1))
    assert not at.exception and not at.error
    assert at.session_state["lab"].image_label == "red_box.png"
    key = at.session_state["lab"].image_key
    for page in PAGES[1:]:
        go(at, page)
        assert at.session_state["lab"].image_key == key, page
        assert at.session_state["lab"].image_label == "red_box.png"
    # the sidebar is drawn on every page, even when a page runs without app.py
    assert any(w.label == "Model" for w in at.sidebar.get("selectbox"))


@pytest.mark.parametrize(
    "name, content",
    [
        ("empty.png", b""),
        ("page.png", b"<!doctype html><html><body>not an image</body></html>"),
        ("truncated.png", png_bytes(2)[:200]),
        ("archive.jpg", b"PK\x03\x04" + b"\x00" * 100),
    ],
)
def test_bad_files_get_a_clear_error_and_the_app_keeps_working(name, content):
    at = new_app()
    upload(at, "good.png", png_bytes(3))
    good_key = at.session_state["lab"].image_key
    upload(at, name, content)
    assert not at.exception
    assert any(name in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["lab"].image_key == good_key  # the last good image stays
    go(at, "pages/spatial.py")
    assert any(name in e.value for e in at.error)
    # and the next good image works
    upload(at, "better.png", png_bytes(4))
    assert at.session_state["lab"].image_label == "better.png" and not at.error


def test_reduction_ratio_slider_changes_the_hidden_width():
    at = go(new_app(), "pages/channel.py")
    channels = int(metric(at, "Channels C"))
    own = at.select_slider(key="w.ratio").value
    assert int(metric(at, "Hidden width C/r")) == max(1, channels // own)
    assert not any("freshly initialised" in w.value for w in at.warning)
    other = 2 if own != 2 else 1  # no trained variant has r = 2: the MLP is rebuilt, and the page says so
    at.select_slider(key="w.ratio").set_value(other).run()
    assert not at.exception
    assert int(metric(at, "Reduction ratio r")) == other
    assert int(metric(at, "Hidden width C/r")) == max(1, channels // other)
    assert int(metric(at, "MLP parameters").replace(",", "")) > 0
    assert any("freshly initialised" in w.value for w in at.warning)


def test_a_trained_variant_is_used_when_one_matches_r_and_k():
    from cbam import zoo

    at = go(new_app(), "pages/channel.py")
    model = at.session_state["lab"].model
    if zoo.find_variant(model, 4, 7) in (None, model):
        # The demo (the default) has no trained r = 4 variant (the ablation rows have a strided last
        # stage, the demo has not); the ablations' reference network has one.
        model = "reference"
        at.selectbox(key="w.model").set_value(model).run()
    variant = zoo.find_variant(model, 4, 7)
    if variant is None or variant == model:
        pytest.skip("no trained model has an r = 4 variant")
    at.select_slider(key="w.ratio").set_value(4).run()
    assert not at.exception
    assert any("trained variant" in s.value and zoo.get_card(variant).title in s.value for s in at.success)
    assert not any("freshly initialised" in w.value for w in at.warning)


def test_kernel_slider_changes_the_kernel():
    at = go(new_app(), "pages/spatial.py")
    assert metric(at, "Kernel k") == "7×7"
    at.select_slider(key="w.kernel").set_value(3).run()
    assert not at.exception
    assert metric(at, "Kernel k") == "3×3"
    assert metric(at, "Conv parameters") == str(2 * 3 * 3)
    at.select_slider(key="w.kernel").set_value(11).run()
    assert metric(at, "Conv parameters") == str(2 * 11 * 11)
    # the page's own controls rerun without errors
    at.slider(key="w.alpha").set_value(0.9).run()
    at.toggle(key="w.window").set_value(False).run()
    assert not at.exception


def test_layer_choice_and_model_choice():
    at = new_app()
    layers = at.selectbox(key="w.layer").options
    assert len(layers) >= 4
    at.selectbox(key="w.layer").set_value("stages.0.cbam").run()
    go(at, "pages/channel.py")
    assert not at.exception
    at.selectbox(key="w.model").set_value("untrained-resnet50").run()
    assert not at.exception
    go(at, "pages/layers.py")
    assert not at.exception and not at.error
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 16  # one row per CBAM block of ResNet-50


def test_device_choice_offers_only_what_exists():
    import torch

    at = new_app()
    options = at.selectbox(key="w.device").options
    assert "CPU" in options
    assert ("CUDA (GPU)" in options) == torch.cuda.is_available()
    if torch.cuda.is_available():
        at.selectbox(key="w.device").set_value("cuda").run()
        go(at, "pages/channel.py")
        assert any("CUDA" in c.value for c in at.caption)


def test_channel_page_widgets():
    at = go(new_app(), "pages/channel.py")
    at.toggle(key="w.sort").set_value(False).run()
    at.number_input(key="w.channel").set_value(3).run()
    assert not at.exception
    assert any("M_c[3]" in latex.value for latex in at.latex)


def app_with_link(**params) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_lesson_link_opens_exactly_that_view():
    at = app_with_link(sample="coffee.jpg", model="untrained-resnet50", layer="layer2.0.cbam", r="4", k="3", alpha="0.8")
    assert at.session_state["lab"].image_label == "Coffee cup"
    assert at.selectbox(key="w.model").value == "untrained-resnet50"
    assert at.selectbox(key="w.layer").value == "layer2.0.cbam"
    assert at.select_slider(key="w.ratio").value == 4 and at.select_slider(key="w.kernel").value == 3
    go(at, "pages/spatial.py")
    assert metric(at, "Kernel k") == "3×3"
    assert at.slider(key="w.alpha").value == pytest.approx(0.8)


def test_the_url_follows_the_controls():
    at = new_app()
    at.select_slider(key="w.kernel").set_value(5).run()
    assert at.query_params["k"] == "5"
    assert at.query_params["sample"] == "shapes_task.png"
    at.selectbox(key="w.sample").set_value("rocket.jpg").run()
    assert at.query_params["sample"] == "rocket.jpg"
    upload(at, "mine.png", png_bytes(9))
    assert "sample" not in at.query_params  # an upload cannot travel in a link


def test_a_link_can_hide_controls_from_students():
    at = app_with_link(model="untrained-smallnet", r="4", hide="model,ratio,image")
    labels = {w.label for w in at.sidebar.get("selectbox")} | {w.label for w in at.sidebar.get("select_slider")}
    assert "Model" not in labels and "Reduction ratio r" not in labels and "Image source" not in {r.label for r in at.radio}
    assert "Layer" in labels and "Spatial kernel size k" in labels
    go(at, "pages/channel.py")
    assert metric(at, "Reduction ratio r") == "4"
    assert at.query_params["hide"] == "model,ratio,image"


def test_a_broken_link_still_opens():
    at = app_with_link(model="no-such-model", r="many", sample="missing.jpg")
    assert any("could not be used" in i.value for i in at.info)
    assert at.session_state["lab"].image_label == DEFAULT_TITLE
    assert not at.error


def test_a_generated_shapes_image_becomes_the_current_image():
    at = go(new_app(), "pages/shapes.py")
    at.selectbox(key="shapes.pick").set_value(3).run()
    at.button(key="shapes.use").click().run()
    assert not at.exception
    assert at.session_state["lab"].image_label.startswith("Shapes seed")
    assert at.session_state["lab"].source == "Generated"
    go(at, "pages/spatial.py")
    assert at.session_state["lab"].image_label.startswith("Shapes seed") and not at.error
    at.radio(key="w.source").set_value("Sample image").run()
    assert at.session_state["lab"].image_label == DEFAULT_TITLE and not at.exception


def test_grad_cam_page_explains_the_chosen_class():
    at = go(new_app(), "pages/gradcam.py")
    options = at.selectbox(key="gradcam.class").options
    at.selectbox(key="gradcam.class").set_value(1).run()
    assert not at.exception and len(options) >= 2
    assert any(m.label.startswith("P(") for m in at.metric)


def test_training_lab_trains_a_model_the_other_pages_can_use():
    at = go(new_app(), "pages/training.py")
    at.number_input(key="training.epochs").set_value(2)
    at.number_input(key="training.steps").set_value(5)
    at.select_slider(key="training.batch").set_value(16)
    submit = [b for b in at.button if b.label == "Start training"]  # the form's submit button
    submit[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    names = list(at.session_state["lab"].session_models)
    assert len(names) == 1
    model, card = at.session_state["lab"].session_models[names[0]]
    assert card.trained and "held-out" in card.title and 0.0 <= card.metrics["accuracy"] <= 1.0
    at.button(key="training.use").click().run()
    assert at.session_state["lab"].model == names[0]
    assert card.title in at.selectbox(key="w.model").options and at.selectbox(key="w.model").value == names[0]
    go(at, "pages/spatial.py")
    assert not at.error and at.session_state["lab"].model == names[0]


def test_ablations_page_shows_every_row_with_its_spread():
    from cbam import zoo

    at = go(new_app(), "pages/ablations.py")
    rows = zoo.ablation_results()["rows"]
    table = at.dataframe[0].value
    assert len(table) == len(rows) and all("±" in v for v in table["accuracy (%)"])
    assert all(len(r["seeds"]) >= 3 for r in rows)
    at.radio(key="ablations.metric").set_value("pointing_game").run()
    assert not at.exception and len(at.main.get("vega_lite_chart")) == 1


def test_a_block_whose_mlp_is_silent_says_so(monkeypatch):
    """No shipped block has a silent MLP any more (tests/test_live_attention.py), so silence one: with
    W0 ≤ 0 every hidden unit is off for every image (F comes out of a ReLU, its descriptors are ≥ 0)."""
    import streamlit as st

    from cbam import zoo

    load_model = zoo.load_model

    def demo_with_a_silent_first_block(name, *args, **kwargs):
        model, card = load_model(name, *args, **kwargs)
        if name == "demo":
            fc1 = model.stages[0].cbam.channel_attention.fc1
            fc1.weight.data = -fc1.weight.data.abs()
        return model, card

    st.cache_resource.clear()  # the shared model cache may hold the real demo
    monkeypatch.setattr(zoo, "load_model", demo_with_a_silent_first_block)
    try:
        at = new_app()
        assert at.session_state["lab"].model == "demo"
        at.selectbox(key="w.layer").set_value("stages.0.cbam").run()
        go(at, "pages/channel.py")
        assert any("hidden units is off" in i.value for i in at.info)
        at.selectbox(key="w.layer").set_value("stages.2.cbam").run()
        assert not any("hidden units is off" in i.value for i in at.info)
    finally:
        st.cache_resource.clear()  # no later test may see the silenced demo


def session_model(at: AppTest, network, name: str = "session-test") -> AppTest:
    """Make ``network`` a model of this session (as the Training Lab does) and select it."""
    import dataclasses

    from cbam import zoo

    card = dataclasses.replace(zoo.get_card("untrained-smallnet"), name=name, title=f"Test network {name}")
    at.session_state["lab"].session_models[name] = (network.eval(), card)
    at.session_state["lab"].model = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_network(size: int, nan: bool = False):
    """3 → 8 channels at ``size``×``size``, one CBAM block, a classifier; NaN in the block's MLP if asked."""
    import torch
    from torch import nn

    from cbam import CBAM, data

    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(size), CBAM(8, 2, 3),
                            nn.Flatten(), nn.Linear(8 * size * size, len(data.CLASS_NAMES)))
    if nan:
        with torch.no_grad():
            network[2].channel_attention.fc2.weight[0, 0] = float("nan")
    return network


def test_a_block_with_non_finite_numbers_gets_a_clear_error_and_the_page_goes_on():
    at = session_model(new_app(), tiny_network(6, nan=True), "session-nan")
    for page in ("pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py"):
        go(at, page)
        assert any("non-finite" in e.value for e in at.error), (page, [e.value for e in at.error])
    at.session_state["lab"].model = "demo"
    go(at, "pages/channel.py")
    assert not at.error and len(at.main.get("vega_lite_chart")) >= 5


def test_one_by_one_feature_maps_are_shown_on_every_block_page():
    at = session_model(new_app(), tiny_network(1), "session-1x1")
    for page in ("pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py"):
        go(at, page)
        assert not at.error, (page, [e.value for e in at.error])
        assert len(at.main.get("vega_lite_chart")) >= 1, page
    assert metric(go(at, "pages/spatial.py"), "Feature map") == "1×1"


def test_a_chosen_position_of_ms_shows_its_convolution_with_numbers():
    at = go(new_app(), "pages/spatial.py")
    assert any("The convolution at one position" in h.value for h in at.header)
    at.session_state["lab"].position = (2, 5)  # what a click on Ms sets (ui.show.selection)
    at.run()
    assert any("x = 5, y = 2" in h.value for h in at.header)
    assert any("M_s(x{=}5, y{=}2)" in latex.value for latex in at.latex)
    assert any("the position you clicked" in m.value for m in at.markdown)


def test_a_clicked_channel_becomes_the_channel_with_its_numbers_and_joins_the_comparison():
    """What the Mc chart's click callback does (the click itself: tests/test_browser.py)."""
    from ui.state import Lab

    state = Lab()
    state.pick_channel(9, default_compare=[1, 2, 3])
    assert state.channel == 9 and state.compare == [1, 2, 3, 9]
    state.pick_channel(2, default_compare=[0])
    assert state.channel == 2 and state.compare == [1, 3, 9, 2]  # moved to the end, not repeated
    for c in (20, 21, 22, 23):
        state.pick_channel(c, default_compare=[0])
    assert len(state.compare) == 6 and state.compare[-1] == 23  # at most 6, the oldest dropped
    at = go(new_app(), "pages/channel.py")
    shown = list(at.multiselect(key="w.compare").value)  # the page's default: two most and one least attended
    at.session_state["lab"].pick_channel(9, default_compare=[0, 1])
    at.run()
    assert any("M_c[9]" in latex.value for latex in at.latex)
    assert at.multiselect(key="w.compare").value == [c for c in shown if c != 9] + [9]


def test_the_first_view_pairs_the_demo_with_a_shapes_image_and_says_when_they_do_not_fit():
    at = go(new_app(), "pages/channel.py")
    assert at.session_state["lab"].model == "demo" and at.session_state["lab"].sample == "shapes_task.png"
    assert not any("learned the shapes task" in i.value for i in at.info)
    at.selectbox(key="w.sample").set_value("cat.jpg").run()
    assert any("learned the shapes task" in i.value and "no right answer" in i.value for i in at.info)
    go(at, "pages/layers.py")
    assert any("learned the shapes task" in i.value for i in at.info)


def test_the_guided_walk_goes_through_the_ten_steps_and_follows_a_lesson_link():
    at = app_with_link(step="7")
    go(at, "pages/steps.py")
    assert at.header[0].value.startswith("7 · Squeeze across channels")
    assert at.query_params["step"] == "7"
    seen = [at.header[0].value]
    while not at.button(key="steps.next").disabled:
        at.button(key="steps.next").click().run()
        assert not at.exception and not at.error
        seen.append(at.header[0].value)
    assert [h.split(" · ")[0] for h in seen] == ["7", "8", "9", "10"]
    at.button(key="steps.back").click().run()
    assert at.header[0].value.startswith("9 · ") and at.query_params["step"] == "9"
    assert at.latex and at.info  # the equation and the live numbers
    go(at, "pages/channel.py")
    assert "step" not in at.query_params  # only the guided page carries its step


def test_a_server_measured_without_charts_leaves_out_only_the_charts(monkeypatch):
    at = go(new_app(), "pages/channel.py")
    charts, headers, buttons = (len(at.main.get(kind)) for kind in ("vega_lite_chart", "header", "download_button"))
    assert charts >= 5
    monkeypatch.setenv("CBAM_LAB_NO_CHARTS", "1")  # benchmarks/bench_browser.py --without-charts
    at.run()
    assert not at.exception and not at.error
    assert len(at.main.get("vega_lite_chart")) == 0
    assert (len(at.main.get("header")), len(at.main.get("download_button"))) == (headers, buttons)
