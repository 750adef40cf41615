"""The command line: --help, evaluate --json, and a tiny train."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cbam.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "cbam", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command.name in result.stdout


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_evaluate_json_prints_one_object_with_the_scores(capsys):
    assert main(["evaluate", "--model", "demo", "--samples", "20", "--seed", "1000003", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "demo" and result["samples"] == 20 and result["seed"] == 1000003
    assert 0 <= result["accuracy"] <= 1
    assert list(result["attention"]) == [f"stages.{i}.cbam" for i in range(4)]
    for scores in result["attention"].values():
        assert 0 <= scores["pointing_game"] <= 1 and 0 <= scores["mass_on_target"] <= 1
        assert scores["dead_channel_share"] == 0 and scores["flat_mask_share"] == 0  # the demo's attention is alive
    # The same check on the bundled samples and the other images: no image kills a block.
    assert list(result["other_images"]) == list(result["attention"])
    for health in result["other_images"].values():
        assert health["dead_channel"] == [] and health["flat_mask"] == []
        assert health["min_channel_std"] >= 0.01 and health["min_mask_range"] >= 0.05


def test_evaluate_text_names_the_dead_and_flat_shares(capsys):
    assert main(["evaluate", "--model", "demo", "--samples", "10"]) == 0
    out = capsys.readouterr().out
    assert out.count("dead channel attention 0.0%") == 4 and out.count("flat mask 0.0%") == 4
    assert "bundled samples" in out


def test_evaluate_baseline_uses_grad_cam(capsys):
    assert main(["evaluate", "--model", "baseline", "--samples", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["attention"]) == ["grad_cam:stages.3"]


def test_evaluate_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "cbam", "evaluate", "--model", "demo", "--samples", "10", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy" in json.loads(result.stdout)


def test_tiny_train(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--preset", "tiny", "--epochs", "1", "--steps-per-epoch", "2", "--out", str(out),
                 "--eval-samples", "8", "--no-progress", "--threads", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert Path(summary["weights"]).is_file() and len(summary["sha256"]) == 64
    meta = json.loads((out / "tiny.json").read_text())
    assert meta["training"]["steps"] == 2 and meta["config"]["preset"] == "tiny"
    assert (out / "tiny.log").is_file()


def test_train_set_overrides_any_config_field_with_its_type(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--preset", "tiny", "--out", str(out), "--eval-samples", "0", "--no-progress",
                 "--threads", "1", "--set", "spatial_lr_scale=2.5", "--set", "min_hidden=2",
                 "--set", "mlp_init=nonnegative", "--set", "widths=4,8,8,8", "--set", "spatial_weight_decay=0.5"])
    assert code == 0
    config = json.loads((out / "tiny.json").read_text())["config"]
    assert (config["spatial_lr_scale"], config["min_hidden"], config["mlp_init"]) == (2.5, 2, "nonnegative")
    assert config["spatial_weight_decay"] == 0.5  # an optional field, unset by default: read as a number
    assert config["widths"] == [4, 8, 8, 8]
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", "--out", str(out), "--set", "no_such_field=1"]) == 2
    assert "no_such_field" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", "--out", str(out), "--set", "min_hidden=many"]) == 2
    assert main(["train", "--preset", "tiny", "--out", str(out), "--set", "mlp_init=positive"]) == 2


def test_unknown_model_is_an_error():
    with pytest.raises(KeyError):
        main(["evaluate", "--model", "no-such-model", "--samples", "1", "--json"])
