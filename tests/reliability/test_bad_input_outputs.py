"""Outputs that must not be written are refused before any work, and nothing that was there is touched.

Rows of README's "Bad input" table (``test_bad_input_outputs.py::...``). "Before any work" is checked by
making the work itself fail the test if it is reached (the pruning, the training).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import torch

import greedyprune
from greedyprune.errors import UserError

from .conftest import CALIB, assert_user_error


@pytest.fixture
def no_work(monkeypatch):
    """Pruning and training fail the test if they start: a refusal must come before them."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the work started before the outputs were checked")
    monkeypatch.setattr(sys.modules["greedyprune.prune"].Pruner, "run", forbidden)
    monkeypatch.setattr(sys.modules["greedyprune.train"], "train", forbidden)


def _plant(kind: str, path: Path) -> None:
    """Put a ``kind`` of thing at ``path``: folder, symlink (to a file with content), fifo, read-only file."""
    if kind == "folder":
        path.mkdir()
    elif kind == "symlink":
        (path.parent / "real-target").write_bytes(b"someone's file")
        path.symlink_to(path.parent / "real-target")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "read-only":
        path.write_bytes(b"protected")
        path.chmod(0o444)


def _unchanged(kind: str, path: Path) -> None:
    if kind == "folder":
        assert path.is_dir() and list(path.iterdir()) == []
    elif kind == "symlink":
        assert path.is_symlink() and (path.parent / "real-target").read_bytes() == b"someone's file"
    elif kind == "fifo":
        assert stat.S_ISFIFO(os.lstat(path).st_mode)
    elif kind == "read-only":
        assert path.read_bytes() == b"protected" and stat.S_IMODE(path.stat().st_mode) == 0o444


@pytest.mark.parametrize("kind, words", [
    pytest.param("ends-in-slash", "ends in '/' (a folder); give a file name", id="ends-in-slash"),
    pytest.param("symlink", "is a symbolic link (to ", id="symlink"),
    pytest.param("fifo", "is a FIFO (named pipe), not a regular file; greedyprune writes only regular files",
                 id="fifo"),
    pytest.param("device", "/dev/null is a character device, not a regular file", id="device"),
    pytest.param("read-only", "is read-only (mode -r--r--r--); make it writable (chmod u+w) or choose another path",
                 id="read-only")])
def test_output_path_refused(cli, files, tmp_path, no_work, kind, words):
    """``prune --out X`` where X must not be replaced: one line before any work, and X is as it was."""
    out = tmp_path / "out.pt"
    if kind == "ends-in-slash":
        target = f"{tmp_path / 'new'}/"
    elif kind == "device":
        target = "/dev/null"
    else:
        _plant(kind, out)
        target = out
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", target, *CALIB), "prune", words)
    if kind == "ends-in-slash":
        assert not (tmp_path / "new").exists()
    elif kind == "device":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    else:
        _unchanged(kind, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kind", ["folder", "symlink", "fifo", "read-only"])
def test_report_path_refused_before_work(cli, files, tmp_path, no_work, kind):
    """``prune --out o.pt`` when o.pt.json (its report) cannot be written: refused before the pruning; an earlier
    o.pt is byte for byte as it was."""
    out = tmp_path / "o.pt"
    out.write_bytes(b"an earlier model")
    _plant(kind, tmp_path / "o.pt.json")
    words = {"folder": "is a folder", "symlink": "is a symbolic link", "fifo": "is a FIFO",
             "read-only": "is read-only"}[kind]
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, *CALIB), "prune",
                      f"--out {out}: its report {out}.json {words}")
    assert out.read_bytes() == b"an earlier model"
    _unchanged(kind, tmp_path / "o.pt.json")


@pytest.mark.parametrize("name, kind", [("model.pt", "symlink"), ("checkpoint.pt", "fifo"),
                                        ("model.pt.json", "folder")])
def test_train_output_refused_before_training(cli, tmp_path, no_work, name, kind):
    """``train --out DIR`` checks DIR/checkpoint.pt, DIR/model.pt and DIR/model.pt.json before it trains."""
    run = tmp_path / "run"
    run.mkdir()
    _plant(kind, run / name)
    words = {"symlink": "is a symbolic link", "fifo": "is a FIFO", "folder": "is a folder"}[kind]
    assert_user_error(cli("train", "--model", "lenet300-100", "--data", "random:1x28x28", "--out", run), "train",
                      f"--out {run}: its ", f"{run / name} {words}")
    _unchanged(kind, run / name)


@pytest.mark.parametrize("command", ["analyze", "demo"])
def test_output_folder_of_other_files_refused(cli, files, tmp_path, monkeypatch, no_work, command):
    """An --out folder holding files the command did not create is refused (``--force`` overrides); nothing is
    trained, and the files there are untouched."""
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.md").write_text("my own report")
    args = {"analyze": ["--model", files.lenet, *CALIB], "demo": ["--model", "small-cnn"]}[command]
    assert_user_error(cli(command, *args, "--out", out), command, f"--out {out} is not empty (notes.txt, report.md)",
                      f"was not made by greedyprune {command}", "pass --force to write into it")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.md"]
    assert (out / "report.md").read_text() == "my own report" and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("change, words", [
    pytest.param(["--data", "fashion-mnist"], "--data 'random:1x28x28' there, 'fashion-mnist' now", id="data"),
    pytest.param(["--train-images", "128"], "--train-images 256 there, 128 now", id="train-images"),
    pytest.param(["--lr", "0.05"], "lr 0.1 there, 0.05 now", id="options"),
    pytest.param(["--model", "OTHER"], "--model ", id="model-file-changed")])
def test_train_resume_with_other_settings(cli, files, tmp_path, change, words):
    """``train --out DIR`` continues DIR/checkpoint.pt only with what it was started with; anything else is
    refused with a line naming the difference, and the earlier run's files are untouched."""
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    greedyprune.save(other, greedyprune.load(files.lenet).apply(lambda m: m.reset_parameters()
                                                                 if hasattr(m, "reset_parameters") else None))
    run = tmp_path / "run"
    start = ["--model", files.lenet, "--data", "random:1x28x28", "--train-images", "256", "--batch-size", "64",
             "--lr", "0.1", "--epochs", "0.5", "--out", run]
    assert cli("train", *start).code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    again = list(start)
    for flag, value in zip(change[::2], change[1::2]):
        again[again.index(flag) + 1] = other if value == "OTHER" else value
    line = assert_user_error(cli("train", *again), "train", f"{run / 'checkpoint.pt'} is from a different run (started "
                             "with other settings: ", words, "--no-resume")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    if change[0] == "--model":
        assert "sha256" in line


@pytest.mark.parametrize("report, words", [
    pytest.param({"x": object()}, "it is not JSON data (cannot write object as JSON)",
                 id="not-json-data"),
    pytest.param([1, 2, 3], "it could not be read back", id="not-an-object"),
    pytest.param({"method": "m", "budget": {}, "groups": [{"name": "a"}]}, "could not be read back ("
                 "the report holds a malformed pruning report (TypeError", id="malformed-groups")])
def test_api_save_refuses_a_report_it_could_not_read_back(tmp_path, report, words):
    """``greedyprune.save(path, model, report)``: a report ``load_report``/``info`` could not read back is refused
    before anything is written (an earlier pair stays as it was)."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    greedyprune.save(tmp_path / "m.pt", model, {"run": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(UserError) as info:
        greedyprune.save(tmp_path / "m.pt", model, report)
    assert words in str(info.value) and "nothing was written" in str(info.value) and "\n" not in str(info.value)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
