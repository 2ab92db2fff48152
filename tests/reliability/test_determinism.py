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

from .conftest import CALIB


def _state(path) -> dict[str, torch.Tensor]:
    return greedyprune.load(path).state_dict()


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _report(path) -> dict:
    report = json.loads(path.with_suffix(".json").read_text())
    report.pop("seconds")
    for group in report["groups"]:
        group.pop("seconds")
    return report


@pytest.mark.parametrize("method, budget", [("reoptimized", ["--flops", "0.5"]), ("random", ["--keep", "0.4"]),
                                            ("uniform", ["--params", "0.6"])])
def test_cli_runs_twice_give_identical_models_and_selections(cli, files, tmp_path, method, budget):
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for out in outs:
        result = cli("prune", "--model", files.lenet, "--method", method, *budget, "--seed", "3", "--out", out, *CALIB)
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
        pruned, report = greedyprune.prune(model, batches, "reoptimized", keep=0.5, progress=False)
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
    importing everything afresh, with its own allocator and thread pool) write identical model files."""
    from .conftest import run_cli_subprocess
    outs = [tmp_path / "first.pt", tmp_path / "second.pt"]
    for out in outs:
        done = run_cli_subprocess("prune", "--model", files.lenet, "--flops", "0.5", "--out", out, *CALIB)
        assert done.returncode == 0, done.stderr
    assert _same_tensors(_state(outs[0]), _state(outs[1]))
    assert _report(outs[0]) == _report(outs[1])
    assert _state(outs[0])["1.weight"].shape[0] < 300  # it did prune
