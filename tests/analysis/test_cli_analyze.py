"""``greedyprune analyze``: which weights a registered name gets, and that the report records them."""

import json
import subprocess
import sys

import torch

from greedyprune.cli.common import load_model
from greedyprune.cli.main import main
from greedyprune.models import trained_model

CALIB = ["--data", "random:1x28x28", "--calib", "32", "--batch-size", "16", "--no-progress"]


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_name_with_a_recipe_loads_the_trained_cache(trained_cache, monkeypatch, capsys):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(trained_cache))
    model = load_model("small-cnn", progress=False)
    cached, acc = trained_model("small-cnn", progress=False)
    assert _same(model, cached) and not model.training
    assert model.greedyprune_weights == {"weights": f"trained cache: {cached.greedyprune_info['path']}",
                                         "test_acc": acc}
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "small-cnn without --weights: the trained model from the cache" in err[0]


def test_imagenet_name_without_weights_is_random_and_warned(capsys):
    torch.manual_seed(0)
    first = load_model("resnet18", warn_random=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RANDOM weights" in err[0] and "--weights" in err[0]
    assert first.greedyprune_weights["weights"] == "random (no --weights)"
    load_model("resnet18")  # prune/eval: random as before, without the warning
    assert capsys.readouterr().err == ""


def test_analyze_records_the_trained_weights(trained_cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(trained_cache))
    out = tmp_path / "out"
    assert main(["analyze", "--model", "small-cnn", "--groups", "3", "--n-max", "10", "--seeds", "1",
                 "--fit-range", "1:8", "--out", str(out), *CALIB]) == 0
    captured = capsys.readouterr()
    assert "the trained model from the cache" in captured.err
    bounds = json.loads((out / "bounds.json").read_text())
    _, acc = trained_model("small-cnn", progress=False)
    assert bounds["source"]["weights"].startswith("trained cache: ") and bounds["source"]["test_acc"] == acc
    curves = json.loads((out / "curves.json").read_text())
    assert curves["fit_range"] == [1, 8] and curves["groups"][0]["fits"]["reoptimized"]["n_range"] == [1, 8]
    assert "Analysed: model: small-cnn; weights: trained cache:" in (out / "report.md").read_text()


def test_groups_list_needs_no_training_and_bad_fit_range(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "empty-cache"))
    assert main(["analyze", "--model", "resnet18-fmnist", "--groups", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out.split()[:2] == ["layer1.0.conv1", "layer1.1.conv1"] and captured.err == ""
    assert not (tmp_path / "empty-cache").exists()
    assert main(["analyze", "--model", "small-cnn", "--fit-range", "8:2", "--out", str(tmp_path / "o"), *CALIB]) == 2
    assert "--fit-range needs 1 <= N_LO < N_HI" in capsys.readouterr().err


def test_highs_banner_does_not_reach_stdout():
    code = ("import cvxpy as cp; from greedyprune.analysis.solvers import solve; x = cp.Variable(2); "
            "p = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1]); print(solve(p, ('HIGHS',)), p.status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout == "HIGHS optimal\n"
