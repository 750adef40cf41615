"""The app with your own network (``streamlit run app.py -- --model-code FILE.py:FUNCTION``) and with
uploaded CBAM-ResNet weights ("Upload weights…"), through AppTest.

AppTest runs app.py in this process, so the command line reaches it as it does under ``streamlit run``:
Streamlit makes ``sys.argv`` ``[app.py, *the arguments after --]``, and the tests set ``sys.argv`` so
(``CBAM_LAB_MODEL_CODE``, the alternative for servers without a command line, has its own test).
The network files are written to tmp_path as a user would write them; they mix the blog's, the
authors' and the tutorial's CBAM blocks (tests/foreign_cbam.py).
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from cbam import explore  # noqa: E402
from cbam.modules import CBAM, hidden_width  # noqa: E402
from ui import own_model  # noqa: E402
from ui.sidebar import ratio_choices  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGES = ["pages/start.py", "pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py",
         "pages/gradcam.py", "pages/shapes.py", "pages/ablations.py"]

NETWORKS = """
    import torch
    from torch import nn
    from foreign_cbam import AuthorsCBAM, BlogCBAM, TutorialBasicBlock, randomize_


    def three():
        # on an 80 px input: blocks at 80×80 (C = 9), 20×20 (C = 21) and 7×7 (C = 24); 5 classes, names unknown
        net = nn.Sequential(
            nn.Conv2d(3, 9, 3, padding=1), BlogCBAM(9, 4, 7),
            nn.AvgPool2d(4), nn.Conv2d(9, 21, 3, padding=1), AuthorsCBAM(21, 8),
            nn.AdaptiveAvgPool2d(7), TutorialBasicBlock(21, 24),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 5),
        )
        return randomize_(net, seed=1)


    def sixteen():
        # 16 blocks (blog, authors', tutorial in turn): 4 at 80×80, 4 at 40×40, 8 at 7×7; 3 classes
        layers = [nn.Conv2d(3, 16, 3, padding=1)]
        for i in range(16):
            if i == 4:
                layers.append(nn.AvgPool2d(2))
            if i == 8:
                layers.append(nn.AdaptiveAvgPool2d(7))
            layers.append((BlogCBAM(16, 4, 7), AuthorsCBAM(16, 4), TutorialBasicBlock(16, 16))[i % 3])
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3)]
        return randomize_(nn.Sequential(*layers), seed=2)


    def pooled_first():
        # every map is 1×1: nothing Grad-CAM could show
        net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 8, 1), BlogCBAM(8, 2, 1),
                            nn.Flatten(), nn.Linear(8, 4))
        return randomize_(net, seed=3)


    def plain():
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


    def broken():
        raise RuntimeError("this network needs a GPU")
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture()
def networks(tmp_path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(textwrap.dedent(NETWORKS))
    return path


def command_line(monkeypatch, *args: str) -> None:
    """What ``streamlit run app.py -- ARGS`` gives the script."""
    monkeypatch.setattr(sys, "argv", [str(APP), *args])
    monkeypatch.delenv(own_model.ENV_VAR, raising=False)


def new_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, (page, [e.value for e in at.error])
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def layer_select(at: AppTest):
    return at.selectbox(key="w.layer")


def test_every_page_renders_with_your_network_of_three_blocks(networks, monkeypatch):
    command_line(monkeypatch, "--model-code", f"{networks}:three", "--input-size", "80")
    at = new_app()
    model = at.selectbox(key="w.model")
    assert model.value.startswith("own-") and model.value == at.session_state["lab"].model  # selected at once
    assert model.format_func(model.value) == "Your model: three() of my_net.py"
    assert [o.split(" · ")[0] for o in layer_select(at).options] == ["1", "4", "6.cbam"]
    assert layer_select(at).options[0] == "1 · 9 ch · 80×80" and layer_select(at).options[-1].endswith("24 ch · 7×7")
    for page in PAGES:
        go(at, page)
    # Layer by layer: every block, and the prediction by class index (the network's 5 classes have no names)
    go(at, "pages/layers.py")
    assert len(at.dataframe[0].value) == 3
    assert [row for row in at.dataframe[0].value["H×W"]] == ["80×80", "20×20", "7×7"]
    prediction = next(m.value for m in at.markdown if m.value.startswith("**Prediction:**"))
    assert "class " in prediction and prediction.count("%") == 5
    # Grad-CAM finds the last feature map before the classifier: the tutorial block's output, 7×7
    go(at, "pages/gradcam.py")
    assert [o.split(" (")[0] for o in at.selectbox(key="gradcam.class").options] == [f"class {i}" for i in range(5)]
    assert any("`6`" in c.value and "7×7" in c.value for c in at.caption), [c.value for c in at.caption]
    # the step-by-step pages at the 80×80 block with odd C = 9, and at the 20×20 block with C = 21
    for layer, size in (("1", "80×80"), ("4", "20×20")):
        layer_select(at).set_value(layer).run()
        assert at.session_state["lab"].layer == layer
        go(at, "pages/spatial.py")
        assert metric(at, "Feature map") == size
        go(at, "pages/channel.py")
        ratios = [int(r) for r in at.select_slider(key="w.ratio").options]
        channels = int(metric(at, "Channels C"))
        assert len({hidden_width(channels, r) for r in ratios}) == len(ratios), (layer, ratios)
        assert int(metric(at, "Hidden width C/r")) == hidden_width(channels, at.session_state["lab"].ratio)
    # the authors' block with C = 21 and 2 hidden units has r = 10; r = 8 would give the same MLP
    assert ratios == [1, 2, 4, 10, 16]


def test_the_readme_example_opens_on_layer_by_layer_with_its_four_blocks(monkeypatch):
    command_line(monkeypatch, "--model-code", f"{APP.parent / 'docs/examples/my_cbam_net.py'}:build", "--input-size", "128")
    at = go(new_app(), "pages/layers.py")
    assert at.selectbox(key="w.model").format_func(at.session_state["lab"].model) == "Your model: build() of my_cbam_net.py"
    assert list(at.dataframe[0].value["H×W"]) == ["64×64", "32×32", "16×16", "8×8"]


def test_sixteen_blocks_from_80_to_7_through_the_environment_variable(networks, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.setenv(own_model.ENV_VAR, f"{networks}:sixteen --input-size 80 --mean 0.5 0.5 0.5 --std 0.25 0.25 0.25")
    at = new_app()
    assert len(layer_select(at).options) == 16
    assert at.session_state["lab"].layer == layer_select(at).value
    go(at, "pages/layers.py")
    sizes = list(at.dataframe[0].value["H×W"])
    assert sizes[:4] == ["80×80"] * 4 and sizes[4:8] == ["40×40"] * 4 and sizes[8:] == ["7×7"] * 8
    for page in ("pages/full.py", "pages/gradcam.py"):
        go(at, page)
    layer_select(at).set_value("1").run()
    go(at, "pages/spatial.py")
    assert metric(at, "Feature map") == "80×80"


def test_grad_cam_says_when_a_network_has_no_map_to_show(networks, monkeypatch):
    command_line(monkeypatch, "--model-code", f"{networks}:pooled_first", "--input-size", "32")
    at = new_app()
    at.switch_page("pages/gradcam.py").run()
    assert not at.exception
    assert any("Grad-CAM cannot be computed for this network" in e.value and "larger than 1×1" in e.value
               for e in at.error), [e.value for e in at.error]


def _mismatched_weights(tmp_path: Path) -> Path:
    path = tmp_path / "other.pth"
    torch.save({"0.weight": torch.zeros(4, 3, 3, 3)}, path)
    return path


@pytest.mark.parametrize(
    "args, case",
    [
        (lambda net, tmp: ["--model-code", f"{tmp}/nowhere.py:build"], "file not found"),
        (lambda net, tmp: ["--model-code", f"{net}:buld"], "function not found"),
        (lambda net, tmp: ["--model-code", f"{net}:broken"], "the function raised an error"),
        (lambda net, tmp: ["--model-code", f"{net}:plain"], "no CBAM block"),
        (lambda net, tmp: ["--model-code", f"{net}:three", "--weights", str(_mismatched_weights(tmp))],
         "weights do not fit"),
        (lambda net, tmp: ["--model-code", f"{net}:three", "--weights", f"{tmp}/none.pth"], "weights file not readable"),
        (lambda net, tmp: ["--model-code", f"{net}:three", "--input-size", "big"], "bad command line"),
    ],
    ids=["missing file", "missing function", "function raises", "no CBAM", "weights do not fit", "no weights file",
         "bad argument"],
)
def test_each_failure_of_your_model_gives_its_error_and_the_previous_model_stays(
        networks, tmp_path, monkeypatch, args, case):
    command_line(monkeypatch)
    at = new_app()
    at.selectbox(key="w.model").set_value("kernel-3").run()
    command_line(monkeypatch, *args(networks, tmp_path))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and f"was not loaded: {case} — " in errors[0], errors
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    assert at.session_state["lab"].model == "kernel-3"
    assert not any(o.startswith("Your model") for o in at.selectbox(key="w.model").options)
    at.switch_page("pages/layers.py").run()
    assert not at.exception and len(at.dataframe[0].value) > 0


def timm_weights():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, block_args={"attn_layer": "cbam"}).eval()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return net, buffer.getvalue()


def open_upload_panel(at: AppTest) -> AppTest:
    at.selectbox(key="w.model").set_value("+upload-weights").run()
    assert not at.exception
    assert any("Upload the weights of a CBAM-ResNet" in m.value for m in at.markdown)
    return at


def test_uploaded_timm_weights_become_the_sessions_model_with_timms_logits(monkeypatch):
    reference, content = timm_weights()
    runs = []

    def recorded(model, x, *args, **kwargs):
        run = run_network(model, x, *args, **kwargs)
        runs.append((x, run))
        return run

    run_network = explore.run_network
    monkeypatch.setattr(explore, "run_network", recorded)
    command_line(monkeypatch)
    at = open_upload_panel(new_app())
    at.number_input(key="w.upload_input_size").set_value(64).run()
    at.get("file_uploader")[-1].upload("timm_resnet18.pth", content, "application/octet-stream").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    state = at.session_state["lab"]
    name = state.model
    assert name.startswith("session-") and at.selectbox(key="w.model").value == name
    _, card = state.session_models[name]
    assert card.title.startswith("CBAM-ResNet-18 (timm's") and card.title.endswith("timm_resnet18.pth")
    assert len(layer_select(at).options) == 8 and layer_select(at).options[0] == "layer1.0.cbam · 64 ch · 16×16"
    go(at, "pages/layers.py")
    assert len(at.dataframe[0].value) == 8
    x, run = runs[-1]
    assert x.shape == (1, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
    torch.testing.assert_close(run.logits, expected, rtol=0, atol=1e-4 * max(1.0, float(expected.abs().max())))
    prediction = next(m.value for m in at.markdown if m.value.startswith("**Prediction:**"))
    assert "class " not in prediction  # 1000 outputs: ImageNet's class names


def test_a_bad_weights_file_gives_an_error_and_the_previous_model_stays(monkeypatch):
    command_line(monkeypatch)
    at = new_app()
    at.selectbox(key="w.model").set_value("kernel-3").run()
    open_upload_panel(at)
    at.get("file_uploader")[-1].upload("broken.pth", b"not a checkpoint at all", "application/octet-stream").run()
    assert not at.exception
    assert any("broken.pth could not be used" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["lab"].model == "kernel-3" and not at.session_state["lab"].session_models
    at.switch_page("pages/channel.py").run()
    assert not at.exception and at.session_state["lab"].model == "kernel-3"


@pytest.mark.parametrize("channels", [1, 2, 3, 5, 7, 9, 21, 24, 33, 64, 100, 255, 2048])
def test_the_ratio_slider_offers_one_r_per_hidden_width_including_the_blocks_own(channels):
    for hidden in sorted(h for h in {1, 2, 3, channels // 4, channels // 16, channels} if 1 <= h <= channels):
        own = channels // hidden
        if hidden_width(channels, own) != hidden:
            continue  # no r gives this width: cbam.adopt refuses such a block
        block = CBAM(channels, own, 7)
        ratios = ratio_choices(block)
        widths = [hidden_width(channels, r) for r in ratios]
        assert own in ratios and len(set(widths)) == len(widths), (channels, own, ratios)
        assert widths == sorted(widths, reverse=True) and widths[0] == channels and widths[-1] == 1


@pytest.mark.parametrize("spec", ["nowhere.py:build", "my_net.py:buld", "my_net.py:plain"],
                         ids=["missing file", "missing function", "no CBAM"])
def test_in_chinese_a_failure_of_your_model_reads_in_chinese(networks, monkeypatch, spec):
    import re

    from test_i18n import english_words

    monkeypatch.chdir(networks.parent)  # a short path: tmp_path's own words are English
    command_line(monkeypatch)
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.query_params["lang"] = "zh"
    at.run()
    command_line(monkeypatch, "--model-code", spec)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and re.search(r"[\u4e00-\u9fff]", errors[0]), errors
    assert not english_words(errors[0]), (english_words(errors[0]), errors[0])
    assert own_model.problem().startswith("Your model (--model-code) was not loaded: ")  # the server's log: English
