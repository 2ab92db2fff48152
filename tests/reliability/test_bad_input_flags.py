"""Flags: sizes bounded before anything is allocated, integers range-checked, every flag checked before the
expensive work, and explicit values the data cannot meet refused (never clamped silently).

Rows of README's "Bad input" table (``test_bad_input_flags.py::...``).
"""

from __future__ import annotations

import time

import pytest

from .conftest import CALIB, assert_user_error


@pytest.mark.parametrize("command, args, words", [
    pytest.param("prune", ["--data", "random:3x10000x10000"], "random:3x10000x10000 asks for images of 300,000,000 "
                 "values each, more than the 16,777,216 allowed", id="random-image-too-large"),
    pytest.param("prune", ["--data", "random:3x1024x1024"], "random:3x1024x1024 with 512 images would take 6.0 GiB, "
                 "more than the 2 GiB allowed", id="random-set-too-large"),
    pytest.param("eval", ["--latency-batch", "100000000"], "--latency-batch must be between 1 and 1024, got 100000000",
                 id="latency-batch")])
def test_sizes_bounded_before_allocating(cli, files, tmp_path, command, args, words):
    """Sizes from flags and specs are checked before anything of that size is allocated (it would take minutes
    and tens of GB, or never finish): the refusal comes within seconds."""
    out = tmp_path / "out.pt"
    common = {"prune": ["--model", files.lenet, "--keep", "0.5", "--out", out, "--calib", "8", "--no-progress"],
              "eval": ["--model", files.lenet, "--data", "random:1x28x28"]}[command]
    start = time.monotonic()
    assert_user_error(cli(command, *common, *args), command, words, outputs=(out,))
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("command, value", [("prune", "-1"), ("analyze", "4294967296"), ("train", "-5"),
                                            ("baseline", "99999999999999999999")])
def test_seed_out_of_range(cli, files, tmp_path, command, value):
    """--seed must be a value every generator (torch, NumPy, Python) accepts: 0 .. 2**32 - 1."""
    out = tmp_path / "out"
    common = {"prune": ["--model", files.lenet, "--keep", "0.5", "--out", out, *CALIB],
              "analyze": ["--model", files.lenet, "--out", out, *CALIB],
              "train": ["--model", "lenet300-100", "--data", "random:1x28x28", "--out", out],
              "baseline": ["--method", "dense", "--data", "random:1x28x28", "--max-steps", "2", "--out", out]}[command]
    assert_user_error(cli(command, *common, "--seed", value), command,
                      f"--seed must be between 0 and 4294967295, got {int(value)}", outputs=(out,))


@pytest.mark.parametrize("args, words", [
    pytest.param(["--calib", "0"], "--calib must be at least 1, got 0", id="calib-0"),
    pytest.param(["--test-images", "20000"], "--test-images must be between 1 and 10,000 (the data has that many), "
                 "got 20000", id="test-images-above-data"),
    pytest.param(["--finetune-epochs", "0"], "--finetune-epochs must be a positive number, got 0.0",
                 id="finetune-epochs-0"),
    pytest.param(["--methods", "reoptimized,reoptimized"], "--methods names a method twice", id="method-twice"),
    pytest.param(["--model", "resnet50"], "no default training recipe for resnet50", id="model-without-recipe")])
def test_demo_flags_checked_before_training(cli, tmp_path, monkeypatch, args, words):
    """``demo`` checks every flag before it trains (or loads) the cached model: with an empty model cache the
    refusal comes at once and nothing is trained (the cache stays empty)."""
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    start = time.monotonic()
    assert_user_error(cli("demo", "--model", "small-cnn", "--out", out, *args), "demo", words, outputs=(out,))
    assert time.monotonic() - start < 30 and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("command, args, words", [
    pytest.param("train", ["--train-images", "100000"], "--train-images 100000 asks for more images than "
                 "random:1x28x28 has (512); use --train-images 512 or fewer (0: all)", id="train-images"),
    pytest.param("eval", ["--limit", "5000"], "--limit 5000 asks for more images than random:1x28x28 has (128); use "
                 "--limit 128 or fewer (0: all)", id="eval-limit"),
    pytest.param("baseline", ["--train-images", "100000"], "--train-images 100000 asks for more images than "
                 "random:1x28x28 has", id="baseline-train-images")])
def test_explicit_size_above_the_data_refused(cli, files, tmp_path, command, args, words):
    """A count you give that the data cannot meet is refused with the largest valid value, never clamped
    silently (as --calib always did; defaults adapt instead, see README)."""
    out = tmp_path / "run"
    common = {"train": ["--model", "lenet300-100", "--data", "random:1x28x28", "--out", out],
              "eval": ["--model", files.lenet, "--data", "random:1x28x28"],
              "baseline": ["--method", "dense", "--data", "random:1x28x28", "--max-steps", "2", "--out", out]}[command]
    assert_user_error(cli(command, *common, *args), command, words, outputs=(out,))
