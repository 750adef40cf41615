"""python -m cbam inspect / models --model-code FILE.py:FUNCTION: your own network, its CBAM blocks adopted.

The model files are written to tmp_path as a user would write them; the mixed one imports the
blog's, the authors' and the tutorial's blocks from tests/foreign_cbam.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from cbam.cli import main
from cbam.samples import SAMPLES_DIR
from cbam.usercode import ModelCodeError, load_model_code, network_from_code

ROOT = Path(__file__).resolve().parent.parent
CAT = str(SAMPLES_DIR / "cat.jpg")

MIXED = """
    import torch
    from torch import nn
    from foreign_cbam import AuthorsCBAM, BlogCBAM, TutorialBasicBlock, randomize_


    def build():
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), BlogCBAM(16, 4, kernel_size=7),        # 64×64
            nn.Conv2d(16, 32, 3, stride=2, padding=1), AuthorsCBAM(32, 8),        # 32×32
            TutorialBasicBlock(32, 32, stride=2),                                 # 16×16
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 5),
        )
        return randomize_(net, seed=1)


    def plain():
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


    def broken():
        raise RuntimeError("this network needs a GPU")


    def not_a_network():
        return [1, 2, 3]
"""


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent(MIXED))
    return path


def test_inspect_writes_every_output_for_a_mixed_network(model_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["inspect", CAT, "--model-code", f"{model_file}:build", "--input-size", "64",
                 "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == f"{model_file}:build" and summary["model_title"] == "build() of mynet.py"
    assert [row["block"] for row in summary["blocks"]] == ["1", "3", "4.cbam"]
    assert [row["H×W"] for row in summary["blocks"]] == ["64×64", "32×32", "16×16"]
    assert summary["layer"] == "4.cbam" and len(summary["top5"]) == 5  # 5 outputs: classes "0".."4"
    assert {row["class"] for row in summary["top5"]} == {"0", "1", "2", "3", "4"}
    for name in summary["files"]:
        assert (out / name).stat().st_size > 0, name
    trace = np.load(out / "trace.npz")
    assert trace["spatial_mask"].shape == (1, 1, 16, 16)
    assert "wrote" in capsys.readouterr().out


def test_models_lists_each_block_and_what_it_was(model_file, capsys):
    assert main(["models", "--model-code", f"{model_file}:build", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["block"], r["implementation"]) for r in rows] == [("1", "blog"), ("3", "authors"), ("4.cbam", "tutorial")]
    assert [r["kernel_size"] for r in rows] == [7, 7, 7] and rows[1]["spatial_pool_order"] == "max-avg"
    assert main(["models", "--model-code", f"{model_file}:build"]) == 0
    assert "4.cbam" in capsys.readouterr().out


def test_weights_are_loaded_before_the_blocks_are_adopted(model_file, tmp_path, capsys):
    reference = load_model_code(f"{model_file}:build")
    with torch.no_grad():
        for p in reference.parameters():
            p.mul_(-1.5)
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    model, card, adopted = network_from_code(f"{model_file}:build", tmp_path / "w.pt", input_size=64)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x), rtol=0, atol=1e-5)
    assert "w.pt" in card.description and card.input_size == 64 and len(adopted) == 3


def test_weights_of_a_cbam_resnet_in_another_layout_are_converted(tmp_path, capsys):
    cbamresnet = pytest.importorskip("pytorchcv.models.cbamresnet")
    (tmp_path / "resnet.py").write_text("from cbam.models import cbam_resnet18\n\ndef build():\n    return cbam_resnet18()\n")
    source = cbamresnet.cbam_resnet18(pretrained=False)
    torch.save(source.state_dict(), tmp_path / "pytorchcv.pth")
    model, _, adopted = network_from_code(f"{tmp_path / 'resnet.py'}:build", tmp_path / "pytorchcv.pth")
    assert len(adopted) == 8 and set(adopted.values()) == {"cbam"}
    assert torch.equal(model.layer2[1].cbam.spatial_attention.conv.weight,
                       source.features.stage2.unit2.cbam.sp_gate.conv.conv.weight)


@pytest.mark.parametrize(
    "spec, extra, message",
    [
        ("missing.py:build", [], "no such file: "),
        ("{file}:nope", [], "defines no function 'nope'; it defines broken, build, not_a_network, plain"),
        ("{file}:broken", [], "broken() in {file} raised RuntimeError: this network needs a GPU"),
        ("{file}:not_a_network", [], "not_a_network() in {file} returned a list, not a torch.nn.Module"),
        ("{file}:plain", [], "has no CBAM block"),
        ("{file}:build", ["--weights", "{weights}"], "the weights do not fit the network of"),
        ("{file}", [], "needs FILE.py:FUNCTION"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "models"])
def test_each_failure_is_one_line_and_exit_status_2(model_file, tmp_path, capsys, command, spec, extra, message):
    weights = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 8)}, weights)
    fill = {"file": model_file, "weights": weights}
    argv = [command, *([CAT, "--out", str(tmp_path / "out")] if command == "inspect" else []),
            "--model-code", spec.format(**fill), *[a.format(**fill) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message.format(**fill) in err
    assert not (tmp_path / "out").exists()


def test_as_a_subprocess_there_is_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cbam", "models", "--model-code", f"{tmp_path}/none.py:build"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: no such file: {tmp_path}/none.py (from --model-code {tmp_path}/none.py:build)"


def test_model_and_model_code_do_not_go_together(model_file, tmp_path, capsys):
    assert main(["inspect", CAT, "--out", str(tmp_path), "--model", "demo", "--model-code", f"{model_file}:build"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["models", "--weights", str(tmp_path / "w.pt")]) == 2
    assert "--weights goes with --model-code" in capsys.readouterr().err


def test_untouched_cbam_like_modules_are_reported_as_warnings(tmp_path, capsys):
    pytest.importorskip("timm")
    (tmp_path / "light.py").write_text(textwrap.dedent("""
        from torch import nn
        from timm.layers.cbam import CbamModule, LightCbamModule

        def build():
            return nn.Sequential(nn.Conv2d(3, 32, 3), LightCbamModule(32), CbamModule(32))
    """))
    assert main(["models", "--model-code", f"{tmp_path / 'light.py'}:build"]) == 0
    captured = capsys.readouterr()
    assert "warning: cbam.adopt left 1 (LightCbamModule) untouched" in captured.err
    assert "2 " in captured.out and "timm" in captured.out


def test_load_model_code_errors_have_a_kind(model_file):
    with pytest.raises(ModelCodeError) as error:
        load_model_code(f"{model_file}:broken")
    assert error.value.kind == "function raised"
