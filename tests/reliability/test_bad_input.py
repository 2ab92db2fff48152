"""Each bad input gives one stderr line naming the problem and the fix, exit code 2, and no output file.

One test per row of the "Failure behaviour" table in README.md.
"""

from __future__ import annotations

import pytest
import torch

import greedyprune
from greedyprune.errors import UserError

from .conftest import CALIB, assert_user_error, run_cli_subprocess, write_image_folder


# ------------------------------------------------------------------------------------------ model / weights
def test_unknown_model_name(cli, tmp_path):
    out = tmp_path / "out.pt"
    line = assert_user_error(cli("prune", "--model", "resnet5O", "--keep", "0.5", "--out", out, *CALIB), "prune",
                             "unknown model 'resnet5O'", "choose one of", "resnet50", outputs=(out,))
    assert "lenet300-100" in line


def test_weights_file_missing(cli, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", "lenet300-100", "--weights", tmp_path / "nope.pth", "--keep", "0.5",
                          "--out", out, *CALIB), "prune", "nope.pth does not exist", "check the path", outputs=(out,))


def test_weights_file_not_a_checkpoint(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", "lenet300-100", "--weights", files.garbage, "--keep", "0.5",
                          "--out", out, *CALIB), "prune", "garbage.pth is not a PyTorch checkpoint",
                      "written by torch.save", outputs=(out,))


def test_weights_file_empty(cli, files, tmp_path):
    assert_user_error(cli("eval", "--model", "lenet300-100", "--weights", files.empty, "--data", "random:1x28x28"),
                      "eval", "empty.pth is empty (0 bytes)", "re-save or re-download")


def test_weights_file_truncated(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", "lenet300-100", "--weights", files.truncated, "--keep", "0.5",
                          "--out", out, *CALIB), "prune", "truncated.pth is not a readable PyTorch checkpoint",
                      "truncated or corrupt", "re-save or re-download", outputs=(out,))


def test_weights_do_not_match_architecture(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    line = assert_user_error(cli("prune", "--model", "lenet300-100", "--weights", files.cnn_weights, "--keep", "0.5",
                                 "--out", out, *CALIB), "prune", "weights do not match lenet300-100",
                             "3.weight is (64, 32, 3, 3) in the file but (100, 300) in the model",
                             "missing from the file: 1.weight", "not in the model: 0.weight", outputs=(out,))
    assert "(+" in line  # long key lists are cut, with the count of the rest


def test_plain_weights_given_as_model_file(cli, files):
    assert_user_error(cli("info", "--model", files.lenet_weights), "info", "not a greedyprune model file",
                      "load_weights")


def test_weights_with_a_model_file(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--weights", files.lenet_weights, "--keep", "0.5",
                          "--out", out, *CALIB), "prune", "--weights is only for registered model names",
                      outputs=(out,))


@pytest.mark.parametrize("content, words", [
    pytest.param({"spec": "lenet300-100", "state_dict": {}}, "its spec 'lenet300-100' is not", id="spec-not-a-dict"),
    pytest.param({"spec": {"name": "lenet300-100"}, "state_dict": {"1.weight": 3}},
                 "its state_dict is not a dict of named tensors", id="state-dict-not-tensors"),
    pytest.param("report", "holds a malformed pruning report (not a JSON object); re-save the model",
                 id="report-not-json")])
def test_malformed_model_file(cli, files, tmp_path, content, words):
    """A file that loads safely but is not what greedyprune wrote (edited, or another tool's)."""
    path = tmp_path / "odd.pt"
    if content == "report":
        data = torch.load(files.lenet, weights_only=True)
        content = {**data, "report_json": "{not json"}
    torch.save(content, path)
    assert_user_error(cli("info", "--model", path), "info", words)


def test_damaged_training_checkpoint(cli, tmp_path):
    """``train --out DIR`` resumes from DIR/checkpoint.pt; one with the right tag but missing entries is refused."""
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "greedyprune-train/1", "config": {}}, run / "checkpoint.pt")
    assert_user_error(cli("train", "--model", "small-cnn", "--data", "random:1x28x28", "--epochs", "0.05", "--out", run),
                      "train", "checkpoint.pt is a damaged training checkpoint", "--no-resume",
                      outputs=(run / "model.pt",))


# ------------------------------------------------------------------------------------------------------ data
def test_data_folder_missing(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data",
                          f"imagefolder:{tmp_path / 'no-such-folder'}", "--calib", "4", "--no-progress"), "prune",
                      "no-such-folder does not exist", "imagefolder:DIR", outputs=(out,))


def test_data_folder_empty(cli, files, tmp_path):
    out, empty = tmp_path / "out.pt", tmp_path / "empty"
    empty.mkdir()
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data",
                          f"imagefolder:{empty}", "--calib", "4", "--no-progress"), "prune",
                      "has no class sub-folders", "<class>/<image>", outputs=(out,))


def test_data_folder_without_images(cli, files, tmp_path):
    out, folder = tmp_path / "out.pt", tmp_path / "classes-only"
    (folder / "cat").mkdir(parents=True)
    (folder / "dog").mkdir()
    (folder / "dog" / "notes.txt").write_text("not an image")
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data",
                          f"imagefolder:{folder}", "--calib", "4", "--no-progress"), "prune",
                      "2 class folders but no images", outputs=(out,))


def test_unreadable_image_stops_by_default(cli, files, tmp_path):
    out, folder = tmp_path / "out.pt", write_image_folder(tmp_path / "images")
    (folder / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a JPEG")
    assert_user_error(cli("prune", "--model", files.mnv3, "--keep", "0.5", "--out", out, "--data",
                          f"imagefolder:{folder}", "--calib", "7", "--no-progress"), "prune",
                      "cannot read image", "broken.jpg", "--skip-bad-images", outputs=(out,))


def test_unreadable_image_skipped_and_counted_with_flag(cli, files, tmp_path):
    out, folder = tmp_path / "out.pt", write_image_folder(tmp_path / "images")
    (folder / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a JPEG")
    result = cli("prune", "--model", files.mnv3, "--keep", "0.5", "--refit", "none", "--out", out, "--data",
                 f"imagefolder:{folder}", "--calib", "7", "--no-progress", "--skip-bad-images")
    assert result.code == 0, result.err
    assert result.lines == [f"greedyprune: skipped 1 unreadable image(s), e.g. {folder / 'a' / 'broken.jpg'} "
                            "(each replaced by the next readable one)"]
    assert greedyprune.load(out).greedyprune_spec["name"] == "mobilenet_v3_small"


def test_every_image_unreadable_with_flag(cli, tmp_path):
    folder = tmp_path / "images"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert_user_error(cli("eval", "--model", "mobilenet_v3_small", "--data", f"imagefolder:{folder}",
                          "--skip-bad-images"), "eval", "no image under", "could be read", "2 unreadable")


def test_unknown_dataset(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data", "imagenet",
                          "--calib", "4", "--no-progress"), "prune", "unknown dataset 'imagenet'",
                      "fashion-mnist, imagefolder, random", outputs=(out,))


def test_fine_tuning_on_data_of_the_wrong_shape(cli, files, tmp_path):
    run = tmp_path / "run"
    assert_user_error(cli("train", "--model", files.lenet, "--data", "random:3x32x32", "--epochs", "0.1",
                          "--out", run), "train", "cannot run on the training images of shape (3, 32, 32)",
                      "layer '1' (Linear)", "input shape the model was built for", outputs=(run / "model.pt",))


def test_fine_tuning_a_model_with_fewer_outputs_than_classes(cli, tmp_path):
    import greedyprune
    from greedyprune.models import build_model
    greedyprune.save(tmp_path / "five.pt", build_model("lenet300-100", num_classes=5))
    run = tmp_path / "run"
    assert_user_error(cli("train", "--model", tmp_path / "five.pt", "--data", "random:1x28x28", "--epochs", "0.1",
                          "--out", run), "train", "the model has 5 outputs but the data has 10 classes",
                      "train a model built for this data", outputs=(run / "model.pt",))


def test_model_given_twice(cli, files):
    assert_user_error(cli("info", files.lenet, "--model", files.cnn_weights), "info", "model given twice",
                      "give it once")


def test_data_shape_does_not_fit_model(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data", "random:3x32x32",
                          "--calib", "8", "--no-progress"), "prune", "cannot run on the calibration images of shape (3, 32, 32)",
                      "layer '1' (Linear)", "input shape the model was built for", outputs=(out,))


# ------------------------------------------------------------------------------------------ calibration size
def test_calibration_larger_than_dataset(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data", "random:1x28x28",
                          "--calib", "600", "--no-progress"), "prune", "--calib 600", "has (512)",
                      "use --calib 512 or fewer", outputs=(out,))


def test_calibration_too_small_for_the_statistics(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data", "random:1x28x28",
                          "--calib", "1", "--no-progress"), "prune", "calibration set is too small for group '1'",
                      "need at least 2", "--calib 2", outputs=(out,))


@pytest.mark.parametrize("flag, value", [("--calib", "0"), ("--batch-size", "0")])
def test_calibration_sizes_below_one(cli, files, tmp_path, flag, value):
    out = tmp_path / "out.pt"
    args = {"--calib": "16", "--batch-size": "8", flag: value}
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--data", "random:1x28x28",
                          "--no-progress", *[x for kv in args.items() for x in kv]), "prune",
                      f"{flag} must be at least 1", outputs=(out,))


def test_fewer_calibration_batches_than_ranks(tmp_path):
    """2 gloo ranks, 1 batch: both ranks stop with the same message (no rank hangs in a collective)."""
    import torch.multiprocessing as mp
    # fork: the ranks start in well under a second (spawn would re-import torch in each)
    mp.start_processes(_rank_with_one_batch, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    messages = {(tmp_path / f"rank{r}.txt").read_text() for r in range(2)}
    assert len(messages) == 1
    message = messages.pop()
    assert "1 of 2 ranks got no calibration batch (1 batches for 2 ranks)" in message
    assert "give at least 2 batches" in message and "\n" not in message


def _write_prune_outcome(model, batches, out_dir: str, rank: int) -> None:
    """Prune at keep 0.5 and write the UserError it raised (or "no error") to ``out_dir/rank<rank>.txt``."""
    try:
        greedyprune.prune(model, batches, keep=0.5, progress=False)
        message = "no error"
    except UserError as err:
        message = str(err)
    with open(f"{out_dir}/rank{rank}.txt", "w") as handle:
        handle.write(message)


def _rank_with_one_batch(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist
    from torch import nn
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
        _write_prune_outcome(model, [torch.randn(8, 6)], out_dir, rank)
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------- budgets
@pytest.mark.parametrize("flag, value", [("--keep", "0"), ("--keep", "1.5"), ("--flops", "-0.1"), ("--params", "2"),
                                         ("--flops", "nan"), ("--latency", "0")])
def test_budget_outside_zero_one(cli, files, tmp_path, flag, value):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, flag, value, "--out", out, *CALIB), "prune",
                      f"{flag} must be a fraction in (0, 1]", outputs=(out,))


def test_no_budget(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--out", out, *CALIB), "prune",
                      "give a budget: --keep F, --flops F, --params F or --latency F", outputs=(out,))


@pytest.mark.parametrize("budget", [pytest.param(["--flops", "0.001"], id="flops"),
                                    pytest.param(["--params", "0.001", "--allocation", "uniform"], id="params-uniform")])
def test_budget_that_would_empty_a_group(cli, files, tmp_path, budget):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, *budget, "--out", out, *CALIB), "prune",
                      "cannot be met without emptying a group", "with every pruned group at one channel",
                      "the smallest reachable fraction is 0.003", "raise the target above", outputs=(out,))


def test_dead_channels_would_empty_a_group(cli, files, tmp_path):
    """Every ReLU of layer 1 is off on the calibration images: nothing to select, so no group is emptied silently."""
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.dead_model, "--keep", "0.5", "--out", out, *CALIB), "prune",
                      "group '1': no channel can be selected", "does not vary over the calibration images",
                      "constant or dead", "check the weights", outputs=(out,))


# ---------------------------------------------------------------------------------------- numerics / device
def test_non_finite_activations_name_the_layer(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.nan_model, "--keep", "0.5", "--out", out, *CALIB), "prune",
                      "non-finite activations", "layer '0' (Conv2d)", "its own weights hold NaN/Inf",
                      "reload the weights", outputs=(out,))


def test_non_finite_activations_in_analyze(cli, files, tmp_path):
    out = tmp_path / "analysis"
    assert_user_error(cli("analyze", "--model", files.nan_model, "--out", out, *CALIB), "analyze",
                      "layer '0' (Conv2d)", outputs=(out,))


@pytest.mark.parametrize("command", ["prune", "eval", "analyze", "train"])
def test_cuda_requested_without_cuda(cli, files, tmp_path, command):
    assert not torch.cuda.is_available()  # this machine: CPU only
    out = tmp_path / "out"
    args = {"prune": ["--model", files.lenet, "--keep", "0.5", "--out", out, *CALIB],
            "eval": ["--model", files.lenet, "--data", "random:1x28x28"],
            "analyze": ["--model", files.lenet, "--out", out, *CALIB],
            "train": ["--model", "small-cnn", "--data", "random:1x28x28", "--out", out]}[command]
    assert_user_error(cli(command, *args, "--device", "cuda"), command, "CUDA requested but not available",
                      "--device cpu", outputs=(out,))


def test_unknown_device(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, "--device", "tpu", *CALIB),
                      "prune", "unknown device 'tpu'", "use cpu, cuda or cuda:N", outputs=(out,))


# ------------------------------------------------------------------------------------------------- outputs
def test_output_under_a_read_only_folder(cli, files, read_only_dir):
    out = read_only_dir / "pruned.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, *CALIB), "prune",
                      "is not writable", "choose a writable path", outputs=(out,))


def test_output_under_a_file(cli, files, tmp_path):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "pruned.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", out, *CALIB), "prune",
                      "is a file, not a folder", outputs=(out,))
    assert (tmp_path / "afile").read_text() == "x"


def test_output_is_a_folder(cli, files, tmp_path):
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--out", tmp_path, *CALIB), "prune",
                      "is a folder; give a file name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["analyze", "train"])
def test_output_folder_not_writable(cli, files, tmp_path, command):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "run"
    model = {"analyze": files.lenet, "train": "small-cnn"}[command]
    extra = CALIB if command == "analyze" else ["--data", "random:1x28x28"]
    assert_user_error(cli(command, "--model", model, "--out", out, *extra), command, "is not writable",
                      "afile is a file, not a folder", outputs=(out,))


def test_output_missing(cli, files):
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", *CALIB), "prune", "--out is required")


def test_report_path_blocked_keeps_the_earlier_model(tmp_path):
    """The model and its JSON report are one output, checked before either is written: a blocked report path
    leaves an earlier pruned.pt exactly as it was (it is neither replaced nor deleted)."""
    (tmp_path / "pruned.pt").write_bytes(b"an earlier model")
    (tmp_path / "pruned.pt.json").mkdir()  # the report's path is taken by a folder
    with pytest.raises(UserError, match=r"the report .*pruned.pt.json is a folder; give a file name"):
        greedyprune.save(tmp_path / "pruned.pt", torch.nn.Sequential(torch.nn.Linear(2, 2)), {"method": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pruned.pt", "pruned.pt.json"]
    assert (tmp_path / "pruned.pt").read_bytes() == b"an earlier model"


# --------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("args, prog, words", [
    pytest.param(["--keep", "half"], "greedyprune prune", "argument --keep: invalid float value: 'half'",
                 id="not-a-number"),
    pytest.param(["--method", "best"], "greedyprune prune", "argument --method: invalid choice: 'best'",
                 id="not-a-choice"),
    pytest.param(["--no-such-flag"], "greedyprune", "unrecognized arguments: --no-such-flag", id="unknown-option")])
def test_malformed_arguments(files, tmp_path, capsys, args, prog, words):
    from greedyprune.cli.main import main
    with pytest.raises(SystemExit) as info:
        main(["prune", "--model", str(files.lenet), "--out", str(tmp_path / "out.pt"), *args])
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    assert words in lines[0] and f"see {prog} --help" in lines[0]
    assert not (tmp_path / "out.pt").exists()


# -------------------------------------------------------------------------------- real process, --debug
def test_real_process_prints_one_line(files, tmp_path):
    """What a shell sees from the console script: the one line and exit 2 (in-process tests cover the rest)."""
    out = tmp_path / "out.pt"
    plain = run_cli_subprocess("prune", "--model", "lenet300-100", "--weights", files.truncated, "--keep", "0.5",
                               "--out", out)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr, plain.stderr
    assert plain.stderr.strip().count("\n") == 0 and "truncated or corrupt" in plain.stderr
    assert not out.exists()


def test_debug_flag_shows_the_traceback(files, tmp_path):
    """``greedyprune --debug ...`` lets the exception (and so its traceback) through."""
    from greedyprune.cli.main import main
    with pytest.raises(UserError, match="unknown model"):
        main(["--debug", "prune", "--model", "nosuch", "--keep", "0.5", "--out", str(tmp_path / "o.pt")])



# ------------------------------------------------------------------------------ baselines: options checked first
BASELINE = ["--data", "random:1x28x28", "--max-steps", "4", "--no-progress"]


@pytest.mark.parametrize("args, words", [
    pytest.param(["--method", "lth", "--rounds", "-1"], "--rounds must be between 0 (derive from --sparsity) and 200, "
                 "got -1", id="lth-rounds-negative"),
    pytest.param(["--method", "lth", "--rounds", "500"], "--rounds must be between 0 (derive from --sparsity) and 200, "
                 "got 500", id="lth-rounds-too-many"),
    pytest.param(["--method", "lth", "--prune-rate", "1.5"], "--prune-rate must be a fraction in (0, 1), got 1.5",
                 id="lth-prune-rate"),
    pytest.param(["--method", "lth", "--control-sparsities", "abc"], "--control-sparsities takes comma-separated "
                 "fractions in [0, 1), got 'abc'; e.g. --control-sparsities 0.79,0.96", id="lth-control-sparsities"),
    pytest.param(["--method", "snip", "--samples-per-class", "0"], "--samples-per-class must be at least 1",
                 id="snip-samples-per-class"),
    pytest.param(["--method", "rigl", "--update-interval", "0"], "--update-interval must be at least 1 step, got 0",
                 id="rigl-update-interval"),
    pytest.param(["--method", "rigl", "--alpha", "2"], "--alpha (the initial drop fraction) must be in [0, 1], got 2.0",
                 id="rigl-alpha"),
    pytest.param(["--method", "set", "--end-fraction", "0"], "--end-fraction (last update, as a fraction of "
                 "training) must be in (0, 1], got 0.0", id="set-end-fraction"),
    pytest.param(["--method", "static", "--batch-size", "0"], "--batch-size must be >= 1, got 0",
                 id="batch-size-zero"),
    pytest.param(["--method", "lth", "--batch-size", "100000"], "--batch-size 100000 is larger than the 128 training "
                 "images (every step would use all of them); use --batch-size 128 or fewer", id="batch-size-above-data"),
])
def test_baseline_option_out_of_range(cli, tmp_path, args, words):
    """Every option is checked before the baseline writes anything (no init.pt, no round_00/)."""
    out = tmp_path / "runs"
    assert_user_error(cli("baseline", *args, *BASELINE, "--out", out), "baseline", words,
                      outputs=(out / "init.pt", out / "round_00", out / "mask.pt", out))


def test_baseline_data_shape_does_not_fit_model(cli, tmp_path):
    out = tmp_path / "runs"
    assert_user_error(cli("baseline", "--method", "rigl", "--model", "small-cnn", *BASELINE, "--data", "random:1x8x8",
                          "--out", out), "baseline", "cannot run on the training images of shape (1, 8, 8)",
                      "(Linear)", "input shape the model was built for", outputs=(out,))


# ------------------------------------------------------------------- ranks: one rank's bad batch stops them all
@pytest.mark.parametrize("case, words", [
    pytest.param("first-batch", "the calibration images contain NaN/Inf values; check the data", id="first-batch"),
    pytest.param("later-batch", "the calibration images contain NaN/Inf values; check the data", id="later-batch"),
    pytest.param("overflow", "non-finite activations (NaN/Inf) reach the consumer of group", id="overflow")])
def test_non_finite_batch_on_one_rank(tmp_path, case, words):
    """2 gloo ranks; only rank 1's shard is bad: both raise the same one-line UserError, neither hangs."""
    messages = _run_two_ranks(_rank_with_a_bad_batch, tmp_path, case)
    assert len(set(messages)) == 1, messages
    assert words in messages[0] and "\n" not in messages[0]


def _run_two_ranks(target, tmp_path, *args, timeout: float = 120) -> list[str]:
    """Fork 2 gloo ranks running ``target(rank, init_file, out_dir, *args)``; their ``rankR.txt`` (fails on a hang)."""
    import time

    import torch.multiprocessing as mp
    context = mp.start_processes(target, args=(str(tmp_path / "init"), str(tmp_path), *args), nprocs=2, join=False,
                                 start_method="fork")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {timeout} s (a rank hangs in a collective)")
    return [(tmp_path / f"rank{r}.txt").read_text() for r in range(2)]


def _rank_with_a_bad_batch(rank: int, init_file: str, out_dir: str, case: str) -> None:
    from datetime import timedelta

    import torch.distributed as dist
    from torch import nn
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
        batches = [torch.randn(8, 6, generator=torch.Generator().manual_seed(i)) for i in range(4)]
        if case == "first-batch":  # rank r takes batches r, r + 2: batch 1 is rank 1's first
            batches[1][0, 0] = float("nan")
        elif case == "later-batch":
            batches[3][2, 1] = float("inf")
        else:  # finite inputs, but rank 1's second batch overflows float32 inside the model
            with torch.no_grad():
                model[0].weight.fill_(1e15)
            batches[3] = torch.full((8, 6), 1e30)
        _write_prune_outcome(model, batches, out_dir, rank)
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- messages that name the flag to fix
@pytest.mark.parametrize("flag, value, words", [
    pytest.param("--groups", ",", "--groups ',' names no group; give 'all', comma-separated group names, or 'list'",
                 id="groups"),
    pytest.param("--methods", ",", "--methods ',' names no method; give 'all' or some of", id="methods"),
    pytest.param("--seeds", "0", "--seeds must be at least 1 for the random baseline, got 0; or leave random out of "
                 "--methods", id="seeds"),
    pytest.param("--n-max", "0", "--n-max must be at least 1 kept channel", id="n-max")])
def test_analyze_option_names_the_flag(cli, files, tmp_path, flag, value, words):
    out = tmp_path / "analysis"
    assert_user_error(cli("analyze", "--model", files.lenet, flag, value, "--out", out, *CALIB), "analyze", words,
                      outputs=(out / "curves.json",))


def test_latency_table_without_a_latency_budget(cli, files, tmp_path):
    out, table = tmp_path / "out.pt", tmp_path / "lat.pt.json"
    table.write_text('{"options": {"latency_seconds": {}}}')
    assert_user_error(cli("prune", "--model", files.lenet, "--flops", "0.5", "--latency-table", table, "--out", out,
                          *CALIB), "prune", "--latency-table is used only with --latency F or --allocation latency",
                      outputs=(out,))


def test_latency_round_to_without_a_latency_budget(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--flops", "0.5", "--latency-round-to", "8", "--out", out,
                          *CALIB), "prune", "--latency-round-to is used only with --latency F or --allocation latency",
                      outputs=(out,))
    with pytest.raises(UserError, match=r"latency_round_to is used only with a latency= target or allocation='latency'"):
        greedyprune.prune(greedyprune.load(files.lenet), [torch.randn(8, 1, 28, 28)], flops=0.5, latency_round_to=8,
                          progress=False)


def test_latency_table_missing_from_the_report(cli, files, tmp_path):
    out, report = tmp_path / "out.pt", tmp_path / "other.json"
    report.write_text('{"options": {"damping": 0.0001}}')
    assert_user_error(cli("prune", "--model", files.lenet, "--latency", "0.6", "--latency-table", report, "--out", out,
                          *CALIB), "prune", "other.json: no latency table in it (options.latency_seconds)",
                      "give the report (OUT.json) of a run made with --latency or --allocation latency", outputs=(out,))


def test_latency_table_of_another_model(files):
    model = greedyprune.load(files.lenet)
    batches = [torch.randn(8, 1, 28, 28)]
    with pytest.raises(UserError, match=r"the latency table has no time for node\(s\) .* \(a table of another model\?\)"):
        greedyprune.prune(model, batches, latency=0.5, latency_seconds={"maxpool": 0.001}, progress=False)


def test_two_budgets(cli, files, tmp_path):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--flops", "0.5", "--out", out, *CALIB),
                      "prune", "give one budget, not --keep 0.5 and --flops 0.5: --keep, --flops, --params or --latency",
                      outputs=(out,))


def test_weights_file_cut_short(cli, files, tmp_path):
    """A checkpoint cut after 5 KB: torch's zip reader says EINVAL; the user is told what that means."""
    cut = tmp_path / "cut.pth"
    cut.write_bytes(files.lenet_weights.read_bytes()[:5000])
    out = tmp_path / "out.pt"
    line = assert_user_error(cli("prune", "--model", "lenet300-100", "--weights", cut, "--keep", "0.5", "--out", out,
                                 *CALIB), "prune", "cut.pth is not a readable PyTorch checkpoint (incomplete zip "
                             "archive); it may be truncated or corrupt", outputs=(out,))
    assert "Errno" not in line


@pytest.mark.parametrize("device, words", [
    pytest.param("cpu:1", "unknown device 'cpu:1': there is one CPU device; use --device cpu", id="cpu-1"),
    pytest.param("", "unknown device ''; use cpu, cuda or cuda:N", id="empty")])
def test_device_that_does_not_exist(cli, files, tmp_path, device, words):
    out = tmp_path / "out.pt"
    assert_user_error(cli("prune", "--model", files.lenet, "--keep", "0.5", "--device", device, "--out", out, *CALIB),
                      "prune", words, outputs=(out,))


def test_training_batch_larger_than_data(cli, tmp_path):
    run = tmp_path / "run"
    assert_user_error(cli("train", "--model", "small-cnn", "--data", "random:1x28x28", "--batch-size", "100000",
                          "--out", run), "train", "--batch-size 100000 is larger than the 512 training images",
                      "use --batch-size 512 or fewer", outputs=(run / "model.pt", run / "checkpoint.pt"))


@pytest.mark.parametrize("command, args, words", [
    pytest.param("train", ["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0, got -1",
                 id="train-checkpoint-every"),
    pytest.param("train", ["--train-images", "-5"], "--train-images must be at least 1 (0: all images), got -5",
                 id="train-train-images"),
    pytest.param("baseline", ["--method", "dense", "--train-images", "-5"], "--train-images must be at least 1 "
                 "(0: all images), got -5", id="baseline-train-images"),
    pytest.param("eval", ["--limit", "-5"], "--limit must be at least 1 image (0: all), got -5", id="eval-limit")])
def test_option_checks_name_the_flag(cli, files, tmp_path, command, args, words):
    run = tmp_path / "run"
    common = {"train": ["--model", "small-cnn", "--data", "random:1x28x28", "--out", run],
              "baseline": [*BASELINE, "--out", run],
              "eval": ["--model", files.lenet, "--data", "random:1x28x28"]}[command]
    assert_user_error(cli(command, *common, *args), command, words, outputs=(run,))
