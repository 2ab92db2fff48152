"""``greedyprune prune --cache-mb``: the memory kept for original-network values changes the cost, never the result."""

from __future__ import annotations

import torch
import torchvision

import greedyprune
from greedyprune.cli.main import main
from greedyprune.modelfile import load_report


def test_cache_budget_gives_the_same_model_and_bad_values_are_refused(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "w.pth")
    common = ["prune", "--model", "resnet18", "--weights", str(tmp_path / "w.pth"), "--data", "random:3x32x32",
              "--calib", "16", "--flops", "0.5", "--streams", "--refit", "none", "--no-progress"]
    models = {}
    for budget in ("0", "2048"):
        out = tmp_path / f"p{budget}.pt"
        assert main(common + ["--cache-mb", budget, "--out", str(out)]) == 0, capsys.readouterr().err
        assert load_report(out)["options"]["cache_mb"] == int(budget)
        models[budget] = greedyprune.load(out).state_dict()
    assert models["0"].keys() == models["2048"].keys()
    assert all(torch.equal(models["0"][k], models["2048"][k]) for k in models["0"])
    assert main(common + ["--cache-mb", "-1", "--out", str(tmp_path / "bad.pt")]) == 2
    assert capsys.readouterr().err.strip().endswith("--cache-mb must be at least 0, got -1")
    assert not (tmp_path / "bad.pt").exists()
