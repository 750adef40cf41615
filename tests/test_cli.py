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


def test_unknown_model_is_an_error():
    with pytest.raises(KeyError):
        main(["evaluate", "--model", "no-such-model", "--samples", "1", "--json"])
