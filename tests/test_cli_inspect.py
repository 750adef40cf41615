"""python -m cbam inspect: the app's figures, the trace and the statistics for one image, on disk."""

import json
import re
from dataclasses import fields

import numpy as np
import pytest

from cbam import CBAMTrace
from cbam.cli import main
from cbam.samples import SAMPLES_DIR


def test_inspect_writes_figures_trace_statistics_and_summary(tmp_path, capsys):
    out = tmp_path / "cat"
    assert main(["inspect", str(SAMPLES_DIR / "cat.jpg"), "--out", str(out), "--model", "untrained-smallnet",
                 "--layer", "stages.2.cbam", "--ratio", "4", "--kernel", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["layer"] == "stages.2.cbam" and summary["reduction_ratio"] == 4 and summary["kernel_size"] == 3
    assert summary["hidden_width"] == 64 // 4 and len(summary["top5"]) == 5 and len(summary["blocks"]) == 4
    for name in summary["files"]:
        assert (out / name).stat().st_size > 0, name
    for png in ("most_and_least", "kernel", "mask_overlay", "layer_masks", "channel_heatmap"):
        assert (out / f"{png}.png").read_bytes().startswith(b"\x89PNG")
    archive = np.load(out / "trace.npz")
    assert set(archive.files) <= {f.name for f in fields(CBAMTrace)} | {"lp_pool", "lse_pool"}
    assert archive["x"].shape[1] == 64 and archive["spatial_mask"].shape[1] == 1
    np.testing.assert_allclose(archive["out"], archive["x_channel"] * archive["spatial_mask"], rtol=1e-6, atol=1e-7)
    assert (out / "blocks.csv").read_text().splitlines()[0].startswith("block,C,")
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--layer", "nope"], "no CBAM block 'nope'"),
        (["--model", "no-such-model"], "no model named"),
        (["--kernel", "4"], "kernel_size must be a positive odd integer"),
    ],
)
def test_inspect_refuses_bad_options_with_a_message(tmp_path, capsys, argv, message):
    # argparse keeps the last --model, so argv may override the quick untrained default
    assert main(["inspect", str(SAMPLES_DIR / "cat.jpg"), "--out", str(tmp_path), "--model", "untrained-smallnet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_inspect_refuses_a_file_that_is_not_an_image(tmp_path, capsys):
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert main(["inspect", str(fake), "--out", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_inspect_with_lang_zh_writes_figures_titled_in_chinese(tmp_path, monkeypatch, where):
    from cbam import plots

    titles = {}
    drawn = plots.figure_to_png

    def record(fig, *args, **kwargs):
        titles[len(titles)] = fig.get_suptitle()
        return drawn(fig, *args, **kwargs)

    monkeypatch.setattr(plots, "figure_to_png", record)
    command = ["inspect", str(SAMPLES_DIR / "cat.jpg"), "--out", str(tmp_path), "--model", "untrained-smallnet",
               "--ratio", "4"]
    argv = ["--lang", "zh", *command] if where == "before the command" else [*command, "--lang", "zh"]
    assert main(argv) == 0
    assert len(titles) >= 9
    assert all(re.search(r"[\u4e00-\u9fff]", title) for title in titles.values()), titles
    assert re.search(r"[\u4e00-\u9fff]", json.loads((tmp_path / "summary.json").read_text())["notes"][0])


def test_an_unknown_language_is_one_error_line(tmp_path, capsys):
    assert main(["--lang", "fr", "inspect", str(SAMPLES_DIR / "cat.jpg"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --lang takes en or zh, got 'fr'"]
