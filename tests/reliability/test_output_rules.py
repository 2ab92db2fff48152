"""The rules behind the refusals: defaults adapt to the data (and say so), an analysis folder is reused by
analyze, ``--force`` writes into a foreign one without deleting its files, and a failure at the end of an
analysis leaves the earlier one as it was."""

from __future__ import annotations

import json

import pytest

from .conftest import CALIB, write_image_folder


@pytest.mark.parametrize("command, default", [("prune", 512), ("analyze", 256)])
def test_default_calibration_size_adapts_to_small_data_and_says_so(cli, files, tmp_path, command, default):
    """Without --calib on a folder of 32 images: every image is used, with one stderr line saying so (an explicit
    --calib above 32 is refused: README row 21)."""
    folder = write_image_folder(tmp_path / "images", per_class=16, size=8)
    out = tmp_path / "out"
    extra = ["--keep", "0.5", "--refit", "none"] if command == "prune" else ["--groups", "features.2.hidden", "--n-max", "4",
                                                           "--methods", "reoptimized"]
    result = cli(command, "--model", files.mnv3, "--data", f"imagefolder:{folder}", "--batch-size", "16", *extra,
                 "--out", out if command == "analyze" else tmp_path / "out.pt", "--no-progress")
    assert result.code == 0, result.err
    assert result.lines == [f"greedyprune: --calib defaults to {default} images but imagefolder:{folder} has 32: "
                            "using all 32"]
    if command == "analyze":
        assert json.loads((out / "curves.json").read_text())["source"]["calibration_images"] == 32
    else:
        assert json.loads((tmp_path / "out.pt.json").read_text())["calibration_images"] == 32


def test_default_training_batch_adapts_to_small_data_and_says_so(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--model", "lenet300-100", "--data", "random:1x28x28", "--train-images", "64", "--out", out)
    assert result.code == 0, result.err
    assert "greedyprune: the default batch size 128 is more than the 64 training images; using --batch-size 64" \
        in result.lines
    assert json.loads((out / "model.pt.json").read_text())["config"]["batch_size"] == 64


ANALYZE = ["--groups", "3", "--n-max", "4", "--methods", "reoptimized,random", "--seeds", "1", *CALIB]


def test_analyze_reuses_its_own_folder_and_force_keeps_foreign_files(cli, files, tmp_path):
    out = tmp_path / "analysis"
    assert cli("analyze", "--model", files.lenet, *ANALYZE, "--out", out).code == 0
    assert json.loads((out / ".greedyprune").read_text())["command"] == "analyze"
    assert cli("analyze", "--model", files.lenet, *ANALYZE, "--out", out).code == 0  # its own folder: reused
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert cli("analyze", "--model", files.lenet, *ANALYZE, "--out", foreign).code == 2
    assert cli("analyze", "--model", files.lenet, *ANALYZE, "--out", foreign, "--force").code == 0
    assert (foreign / "notes.txt").read_text() == "mine" and (foreign / "report.md").exists()
    assert not [p.name for p in foreign.iterdir() if p.name.startswith(".staging")]


def test_failure_at_the_end_of_an_analysis_keeps_the_earlier_one(cli, files, tmp_path, monkeypatch):
    """report.md cannot be rendered (after every statistic and plot): the earlier analysis in --out is byte for
    byte as it was, and no staging folder is left."""
    out = tmp_path / "analysis"
    assert cli("analyze", "--model", files.lenet, *ANALYZE, "--out", out).code == 0
    before = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("analysis.report.render_report", broken)
    result = cli("analyze", "--model", files.lenet, *ANALYZE, "--seed", "1", "--out", out)
    assert result.code == 2 and len(result.lines) == 1 and "No space left on device" in result.lines[0], result.err
    assert {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
