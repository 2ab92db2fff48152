"""Corrupt or tampered files: one line, exit 2, nothing written -- and never a stale result or a hang.

Rows of README's "Bad input" table (``test_bad_input_files.py::...``). The model cache is always a
temporary folder (``$GREEDYPRUNE_CACHE``), never the real one.
"""

from __future__ import annotations

import os
import signal
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import greedyprune
from greedyprune.models import build_model, cached_model_path

from .conftest import assert_user_error, write_image_folder

EVAL = ["--data", "random:1x28x28", "--limit", "8"]


@contextmanager
def must_return_within(seconds: int):
    """Fail (instead of hanging the test run) if the block blocks, e.g. on opening a FIFO."""
    def stop(signum, frame):
        raise AssertionError(f"blocked for more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------------------------- model cache
def _cache_entry(tamper: str) -> Path:
    """A cached small-cnn entry (test accuracy 0.875) in $GREEDYPRUNE_CACHE, then tampered with."""
    from greedyprune.models.integrity import hash_path, write_entry
    path = cached_model_path("small-cnn")
    torch.manual_seed(0)
    model = build_model("small-cnn")
    info = {"spec": dict(model.greedyprune_spec), "recipe": {}, "test_acc": 0.875, "steps": 1}
    entry = {**info, "state_dict": model.state_dict()}
    write_entry(path, entry, info)  # as greedyprune writes it: with model.pt.sha256
    if tamper in ("swapped-weights", "hash-record-damaged"):
        if tamper == "swapped-weights":  # other weights under the same accuracy, the recorded hash left alone
            torch.manual_seed(1)
            torch.save({**entry, "state_dict": build_model("small-cnn").state_dict()}, path)
        else:
            hash_path(path).write_text("{not json")
        return path
    hash_path(path).unlink()  # an entry as greedyprune wrote it before hashes were recorded, then edited
    state = dict(entry["state_dict"])
    if tamper == "not-a-dict":
        content = [1, 2, 3]
    elif tamper == "spec-missing":
        content = {k: v for k, v in entry.items() if k != "spec"}
    elif tamper == "another-architecture":
        content = {**entry, "spec": {"name": "lenet300-100", "num_classes": 10},
                   "state_dict": build_model("lenet300-100").state_dict()}
    elif tamper == "wrong-shapes":
        state["0.weight"] = torch.zeros(16, 1, 3, 3)
        content = {**entry, "state_dict": state}
    else:  # accuracy-missing
        content = {k: v for k, v in entry.items() if k != "test_acc"}
    torch.save(content, path)
    return path


@pytest.mark.parametrize("tamper, words", [
    pytest.param("not-a-dict", "it holds a list, not a cache entry", id="not-a-dict"),
    pytest.param("spec-missing", "its spec 'None' does not name small-cnn", id="spec-missing"),
    pytest.param("another-architecture", "its spec \"{'name': 'lenet300-100', 'num_classes': 10}\" does not name "
                 "small-cnn", id="another-architecture"),
    pytest.param("wrong-shapes", "weights do not match small-cnn: 0.weight is (16, 1, 3, 3) in the file but "
                 "(32, 1, 3, 3) in the model", id="wrong-shapes"),
    pytest.param("accuracy-missing", "its test accuracy None is not a fraction in [0, 1]", id="accuracy-missing"),
    pytest.param("swapped-weights", "is not the", id="swapped-weights"),
    pytest.param("hash-record-damaged", "hash record", id="hash-record-damaged")])
def test_tampered_model_cache_entry(cli, tmp_path, monkeypatch, tamper, words):
    """``eval --model small-cnn`` reads the cached model: a tampered entry is refused (never used with the
    accuracy recorded for another model, never silently retrained over)."""
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    path = _cache_entry(tamper)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    result = cli("eval", "--model", "small-cnn", *EVAL)
    assert_user_error(result, "eval", f"the cached model {path} is damaged or was changed", words,
                      f"delete {path.parent} to retrain it")
    assert "87.50" not in result.err + result.out and "top-1" not in result.out
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before


@pytest.mark.parametrize("kind, words", [
    pytest.param("empty", "$GREEDYPRUNE_CACHE is set but empty; unset it (the default is ~/.cache/greedyprune)",
                 id="empty"),
    pytest.param("file", "is not a folder; set it to a folder (created when missing) or unset it", id="file"),
    pytest.param("unwritable", "is not writable", id="unwritable")])
def test_model_cache_variable_refused(cli, tmp_path, monkeypatch, read_only_dir, kind, words):
    """$GREEDYPRUNE_CACHE that cannot hold the cache: one line before anything is trained (the empty one used to
    train into ./models)."""
    value = {"empty": "", "file": str(tmp_path / "a-file"), "unwritable": str(read_only_dir / "cache")}[kind]
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("GREEDYPRUNE_CACHE", value)
    monkeypatch.chdir(tmp_path)
    line = assert_user_error(cli("eval", "--model", "small-cnn", *EVAL), "eval", words)
    assert "$GREEDYPRUNE_CACHE" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and (tmp_path / "a-file").read_text() == "x"


# ---------------------------------------------------------------------------------------------- model files
@pytest.mark.parametrize("report_json, words", [
    pytest.param("5", "holds a malformed pruning report (not a JSON object)", id="valid-json-not-an-object"),
    pytest.param('{"method": "m", "budget": {}, "groups": "abc"}', "holds a malformed pruning report (TypeError",
                 id="groups-not-a-list"),
    pytest.param('{"method": "m", "budget": {}, "groups": [{"name": "a", "channels_before": "x", "channels_after": 1, '
                 '"error": "big", "seconds": 0}]}', "holds a malformed pruning report (ValueError", id="wrong-types"),
    pytest.param("[" * 100_000 + "]" * 100_000, "holds a pruning report nested too deeply to read",
                 id="nested-very-deep")])
def test_stored_report_malformed_inside(cli, files, tmp_path, report_json, words):
    """A model file whose stored report is JSON, but not a pruning report ``info`` can show."""
    data = torch.load(files.lenet, weights_only=True)
    path = tmp_path / "odd.pt"
    torch.save({**data, "report_json": report_json}, path)
    assert_user_error(cli("info", "--model", path), "info", words, "re-save the model")


@pytest.mark.parametrize("source, spec, words", [
    pytest.param("lenet300-100", {"name": "small-cnn", "num_classes": 10}, "does not hold a small-cnn (as its spec "
                 "says): 3.weight has (100, 300) but small-cnn has (64, 32, 3, 3); missing: 0.weight, 0.bias (+4 more)",
                 id="spec-names-another-model"),
    pytest.param("resnet18-fmnist", {"name": "resnet18", "num_classes": 10}, "conv1.weight has (64, 1, 3, 3) but "
                 "resnet18 has (64, 3, 7, 7)", id="same-family-other-stem"),
    pytest.param("lenet300-100", {"name": "lenet300-100", "num_classes": 10**12}, "its spec asks for "
                 "1,000,000,000,000 classes (at most 100,000)", id="num-classes-terabytes")])
def test_model_file_spec_does_not_fit_its_weights(cli, tmp_path, source, spec, words):
    """A model file whose spec names another architecture than its weights (or asks for terabytes of outputs):
    refused before the architecture is built."""
    path = tmp_path / "odd.pt"
    greedyprune.save(path, build_model(source))
    data = torch.load(path, weights_only=True)
    torch.save({**data, "spec": spec}, path)
    with must_return_within(60):
        assert_user_error(cli("info", "--model", path), "info", words)


@pytest.mark.parametrize("flag", ["--weights", "--model"])
def test_input_file_is_a_fifo(cli, tmp_path, flag):
    """A FIFO given as a file to read is refused without opening it (opening would block forever)."""
    fifo = tmp_path / "w.pth"
    os.mkfifo(fifo)
    args = ["--model", "lenet300-100", "--weights", fifo] if flag == "--weights" else ["--model", fifo]
    with must_return_within(60):
        assert_user_error(cli("eval", *args, *EVAL), "eval", f"checkpoint {fifo} is a FIFO (named pipe), not a "
                          "regular file")


# ------------------------------------------------------------------------------------------------ images
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims ``width x height`` pixels in a few bytes (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size, words", [
    pytest.param(20_000, "Image size (400000000 pixels) exceeds limit of 178956970 pixels", id="above-the-limit"),
    pytest.param(10_000, "Image size (100000000 pixels) exceeds limit of 89478485 pixels", id="in-the-warning-range")])
def test_png_decompression_bomb(cli, files, tmp_path, size, words):
    """A PNG whose header claims 100-400 million pixels is refused before it is decoded."""
    out, folder = tmp_path / "out.pt", write_image_folder(tmp_path / "images")
    _png_header_only(folder / "a" / "bomb.png", size, size)
    assert_user_error(cli("prune", "--model", files.mnv3, "--keep", "0.5", "--out", out, "--data",
                          f"imagefolder:{folder}", "--calib", "7", "--no-progress"), "prune",
                      f"cannot read image {folder / 'a' / 'bomb.png'} (too large to decode: {words})",
                      "--skip-bad-images", outputs=(out,))


def test_png_decompression_bomb_skipped_with_flag(cli, files, tmp_path):
    out, folder = tmp_path / "out.pt", write_image_folder(tmp_path / "images")
    _png_header_only(folder / "a" / "bomb.png", 20_000, 20_000)
    result = cli("prune", "--model", files.mnv3, "--keep", "0.5", "--refit", "none", "--out", out, "--data",
                 f"imagefolder:{folder}", "--calib", "7", "--no-progress", "--skip-bad-images")
    assert result.code == 0, result.err
    assert result.lines == [f"greedyprune: skipped 1 unreadable image(s), e.g. {folder / 'a' / 'bomb.png'} "
                            "(each replaced by the next readable one)"]
    assert out.exists()


# ------------------------------------------------------------------------------------------- Fashion-MNIST
def _idx(kind: str, n: int, values: np.ndarray | None = None, magic: int | None = None) -> bytes:
    if kind == "images":
        header = struct.pack(">IIII", magic or 2051, n, 28, 28)
        body = np.zeros(n * 784, np.uint8) if values is None else values
    else:
        header = struct.pack(">II", magic or 2049, n)
        body = (np.arange(n) % 10).astype(np.uint8) if values is None else values
    return header + body.tobytes()


@pytest.mark.parametrize("case, words", [
    pytest.param("empty", "train-images-idx3-ubyte is empty (0 bytes)", id="empty"),
    pytest.param("short", "train-images-idx3-ubyte is truncated: its header promises 100 images (78,416 bytes) but it "
                 "holds 39,216 bytes", id="short"),
    pytest.param("label-out-of-range", "train-labels-idx1-ubyte holds label 12, outside 0..9", id="label-out-of-range"),
    pytest.param("not-idx", "train-images-idx3-ubyte is not an IDX images file", id="not-idx"),
    pytest.param("counts-differ", "holds 100 images but", id="counts-differ"),
    pytest.param("gzip-corrupt", "train-images-idx3-ubyte.gz is not a readable gzip file", id="gzip-corrupt"),
    pytest.param("fifo", "train-images-idx3-ubyte is a FIFO (named pipe), not a regular file", id="fifo")])
def test_fashion_mnist_file_refused(cli, files, tmp_path, monkeypatch, case, words):
    """Damaged IDX files under $GREEDYPRUNE_DATA: one line naming the file and how to fix it (no traceback, no
    hang, no allocation from a header that lies)."""
    folder = tmp_path / "fmnist"
    folder.mkdir()
    images, labels = folder / "train-images-idx3-ubyte", folder / "train-labels-idx1-ubyte"
    labels.write_bytes(_idx("labels", 100))
    if case == "empty":
        images.write_bytes(b"")
    elif case == "short":
        images.write_bytes(_idx("images", 100)[:16 + 50 * 784])
    elif case == "label-out-of-range":
        images.write_bytes(_idx("images", 100))
        labels.write_bytes(_idx("labels", 100, np.full(100, 12, np.uint8)))
    elif case == "not-idx":
        images.write_bytes(_idx("images", 100, magic=0x12345678))
    elif case == "counts-differ":
        images.write_bytes(_idx("images", 100))
        labels.write_bytes(_idx("labels", 90))
    elif case == "gzip-corrupt":
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    else:
        os.mkfifo(images)
    monkeypatch.setenv("GREEDYPRUNE_DATA", str(folder))
    out = tmp_path / "out.pt"
    with must_return_within(60):
        assert_user_error(cli("prune", "--model", files.lenet, "--data", "fashion-mnist", "--calib", "8", "--keep",
                              "0.5", "--out", out, "--no-progress"), "prune", words, outputs=(out,))


# ------------------------------------------------------------------------------------------------ baselines
@pytest.mark.parametrize("name, content, words", [
    pytest.param("result.json", b"{broken", "run record {out}/result.json is not valid JSON", id="result-json"),
    pytest.param("result.json", b'{"steps": "many"}', "run record {out}/result.json is damaged (not a JSON object "
                 "with numeric steps and seconds)", id="result-json-fields"),
    pytest.param("mask.pt", "list", "{out}/mask.pt is damaged: a mask or initial weights should be a dict of named "
                 "tensors", id="mask-pt")])
def test_baseline_run_file_damaged(cli, tmp_path, name, content, words):
    """A damaged file of an earlier baseline run in --out: refused before the baseline writes anything."""
    out = tmp_path / "runs"
    out.mkdir()
    if content == "list":
        torch.save([1, 2, 3], out / name)
    else:
        (out / name).write_bytes(content)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_user_error(cli("baseline", "--method", "static", "--data", "random:1x28x28", "--max-steps", "4",
                          "--no-progress", "--out", out), "baseline", words.format(out=out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
