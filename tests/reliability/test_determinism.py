"""Same seed and inputs -> the identical selection and the identical pruned model on CPU (bit for bit);
the saved report records versions, seed and device.
"""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

import greedyprune
from greedyprune import greedy_select_gram
from greedyprune.paths import report_path

from .conftest import CALIB


def _state(path) -> dict[str, torch.Tensor]:
    return greedyprune.load(path).state_dict()


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _report(path) -> dict:
    report = json.loads(report_path(path).read_text())
    report.pop("seconds")
    for group in report["groups"]:
        group.pop("seconds")
    for timing in ("seconds", "cpu_seconds"):
        (report["refit"] or {}).pop(timing, None)
    return report


@pytest.mark.parametrize("method, budget", [("reoptimized", ["--flops", "0.5"]), ("random", ["--keep", "0.4"]),
                                            ("uniform", ["--params", "0.6"])])
def test_cli_runs_twice_give_identical_models_and_selections(cli, files, tmp_path, method, budget):
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for out in outs:
        result = cli("prune", "--model", files.lenet, "--method", method, *budget, "--seed", "3", "--refit", "none",
                     "--out", out, *CALIB)
        assert result.code == 0, result.err
    assert _same_tensors(_state(outs[0]), _state(outs[1]))
    first, second = _report(outs[0]), _report(outs[1])
    assert first == second  # widths, per-pick error curves, notes: everything but the timings
    assert first["seed"] == 3 and first["device"] == "cpu" and first["method"] == method
    assert set(first["versions"]) >= {"greedyprune", "torch", "torchvision", "python"}
    assert first["versions"]["torch"] == torch.__version__
    assert first["versions"]["greedyprune"] == greedyprune.__version__


def test_random_selection_depends_on_the_seed(cli, files, tmp_path):
    for seed in ("0", "1"):
        result = cli("prune", "--model", files.lenet, "--method", "random", "--keep", "0.4", "--seed", seed,
                     "--out", tmp_path / f"s{seed}.pt", *CALIB)
        assert result.code == 0, result.err
    assert not _same_tensors(_state(tmp_path / "s0.pt"), _state(tmp_path / "s1.pt"))


def test_torchvision_model_twice_identical():
    """BatchNorm folding, depthwise slicing and SE bias corrections are deterministic too (MobileNetV3)."""
    def run():
        torch.manual_seed(0)
        model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
        g = torch.Generator().manual_seed(1)
        batches = [torch.randn(4, 3, 16, 16, generator=g) for _ in range(2)]
        pruned, report = greedyprune.prune(model, batches, "reoptimized", keep=0.5, refit=None, progress=False)
        return pruned.state_dict(), [(r.name, r.channels_after, r.errors) for r in report.groups]
    (state_a, groups_a), (state_b, groups_b) = run(), run()
    assert groups_a == groups_b
    assert _same_tensors(state_a, state_b)


@pytest.mark.parametrize("method", sorted(greedyprune.selection.registered_methods))
def test_engine_twice_identical(method):
    g = torch.Generator().manual_seed(0)
    f = torch.randn(40, 30, generator=g, dtype=torch.float64)
    t = f[:10].sum(0)
    args = (f @ f.T, f @ t, t @ t, 12)
    options = greedyprune.selection.registered_methods[method].accepted(scores=f.abs().sum(1), seed=5)
    a = greedy_select_gram(*args, method=method, **options)
    b = greedy_select_gram(*args, method=method, **options)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.coefficients, b.coefficients)
    assert torch.equal(a.errors, b.errors)


def test_two_fresh_processes_write_bit_identical_models(files, tmp_path):
    """Determinism across processes, not only within one: two new `greedyprune prune` processes (each
    importing everything afresh, with its own allocator and thread pool) write identical model files; with the
    default options, so the global refit (L-BFGS) is part of what must repeat bit for bit."""
    from .conftest import run_cli_subprocess
    outs = [tmp_path / "first.pt", tmp_path / "second.pt"]
    for out in outs:
        done = run_cli_subprocess("prune", "--model", files.lenet, "--flops", "0.5", "--out", out, *CALIB)
        assert done.returncode == 0, done.stderr
    assert _same_tensors(_state(outs[0]), _state(outs[1]))
    assert _report(outs[0]) == _report(outs[1])
    assert _state(outs[0])["1.weight"].shape[0] < 300  # it did prune
    assert _report(outs[0])["refit"]["iterations"] >= 1  # and refit


def test_registered_name_without_weights_is_seeded_and_announced(cli, tmp_path):
    """``prune --model NAME`` without --weights (no trained recipe): the random weights come from --seed, so two
    identical commands give the identical model (they used to differ in parameter count), another seed gives
    other weights, and a warning says the weights are random."""
    from greedyprune.cli.common import load_model
    args = ["--model", "mobilenet_v3_small", "--data", "random:3x32x32", "--calib", "8", "--batch-size", "8",
            "--keep", "0.5", "--refit", "none", "--no-progress"]
    for name in ("a", "b"):
        result = cli("prune", *args, "--out", tmp_path / f"{name}.pt")
        assert result.code == 0, result.err
        assert result.lines == ["greedyprune: warning: mobilenet_v3_small without --weights has RANDOM weights "
                                "(seeded with --seed 0; no trained recipe for it); pass --weights FILE to use "
                                "trained ones"]
    assert _same_tensors(_state(tmp_path / "a.pt"), _state(tmp_path / "b.pt"))
    assert _report(tmp_path / "a.pt")["params_after"] == _report(tmp_path / "b.pt")["params_after"]
    rng = torch.get_rng_state()
    same = [load_model("resnet18", seed=0).state_dict() for _ in range(2)]
    other = load_model("resnet18", seed=1).state_dict()
    assert torch.equal(torch.get_rng_state(), rng)  # seeded on the side: torch's global RNG is left alone
    assert _same_tensors(*same) and not torch.equal(same[0]["conv1.weight"], other["conv1.weight"])


def test_batch_size_changes_only_the_rounding(cli, files, tmp_path):
    """The statistics are sums over all calibration images, so --batch-size changes only the order of the
    float32 products' summation: the same channels are kept and the errors agree within 1e-5 (README says
    where this could still flip a near-tie)."""
    reports = []
    for size in ("5", "16", "48"):
        out = tmp_path / f"bs{size}.pt"
        result = cli("prune", "--model", files.lenet, "--flops", "0.5", "--refit", "none", "--out", out, "--data",
                     "random:1x28x28", "--calib", "48", "--batch-size", size, "--no-progress")
        assert result.code == 0, result.err
        reports.append(_report(out))
    for report in reports[1:]:
        assert [g["kept"] for g in report["groups"]] == [g["kept"] for g in reports[0]["groups"]]
        for g, ref in zip(report["groups"], reports[0]["groups"]):
            assert g["error"] == pytest.approx(ref["error"], rel=1e-5)
