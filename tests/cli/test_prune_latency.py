"""``greedyprune prune --latency`` / ``--allocation latency`` / ``--latency-table``: from the command line."""

from __future__ import annotations

import json

import torch
import torchvision

import greedyprune
from greedyprune.cli.main import main
from greedyprune.modelfile import load_report


def test_latency_budget_and_a_recorded_table_from_the_command_line(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "w.pth")
    common = ["prune", "--model", "resnet18", "--weights", str(tmp_path / "w.pth"), "--data", "random:3x32x32",
              "--calib", "16", "--streams", "--refit", "none", "--no-progress"]
    first = tmp_path / "lat.pt"
    assert main(common + ["--latency", "0.6", "--out", str(first)]) == 0, capsys.readouterr().err
    assert "latency model (node times measured on cpu)" in capsys.readouterr().out
    report = load_report(first)
    assert 0.5 < report["options"]["latency_model_kept"] <= 0.6 and report["budget"]["latency"] == 0.6
    # the same node times again: the same widths, for a FLOPs target ranked by latency as well
    models = []
    for name in ("a.pt", "b.pt"):
        out = tmp_path / name
        args = ["--flops", "0.5", "--allocation", "latency", "--latency-table", f"{first}.json"]
        assert main(common + args + ["--out", str(out)]) == 0, capsys.readouterr().err
        assert load_report(out)["options"]["latency_seconds"] == report["options"]["latency_seconds"]
        models.append(greedyprune.load(out).state_dict())
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"options": {}}))
    assert main(common + ["--latency", "0.6", "--latency-table", str(bad), "--out", str(tmp_path / "c.pt")]) == 2
    assert "no latency table in it" in capsys.readouterr().err
    assert main(common + ["--flops", "0.5", "--latency-table", f"{first}.json", "--out", str(tmp_path / "e.pt")]) == 2
    assert "--latency-table is used only with --latency F or --allocation latency" in capsys.readouterr().err
    assert main(common + ["--latency", "0.6", "--flops", "0.5", "--out", str(tmp_path / "d.pt")]) == 2
    assert "give one budget" in capsys.readouterr().err
    assert not (tmp_path / "c.pt").exists() and not (tmp_path / "d.pt").exists()
