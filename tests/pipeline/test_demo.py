"""``greedyprune demo`` end to end on real Fashion-MNIST (the small CNN of the ``trained_cache`` fixture)."""

import json

import greedyprune
from greedyprune.modelfile import load_report
from greedyprune.cli.main import main


def test_demo_prunes_compares_and_plots(trained_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(trained_cache))
    out = tmp_path / "demo"
    assert main(["demo", "--model", "small-cnn", "--calib", "64", "--test-images", "300", "--finetune-images", "128",
                 "--curve-groups", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "reoptimized+refit" in printed and "magnitude" in printed and "BN recal" in printed
    rows = json.loads((out / "demo.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["reoptimized+refit", "reoptimized", "magnitude"]
    dense = rows[0]["top1_dense"]
    assert dense > 0.6  # a trained model on real data, not chance
    for row in rows:
        assert abs(row["flops_after"] / row["flops_before"] - 0.5) < 0.03
        assert row["params_after"] < row["params_before"]
        assert row["top1_bn_recalibrated"] == row["top1_pruned"]  # small-cnn has no BatchNorm: recalibration is a no-op
        assert row["top1_finetuned"] is not None and row["top1_pruned"] > 0.5
        model = greedyprune.load(out / f"{row['method']}.pt")
        assert sum(p.numel() for p in model.parameters()) == row["params_after"]
    assert rows[1]["mean_group_error"] < rows[2]["mean_group_error"]  # greedy reconstructs better at the same widths
    assert rows[0]["mean_group_error"] == rows[1]["mean_group_error"]  # the refit comes after the same selection
    refit = load_report(out / "reoptimized+refit.pt")["refit"]
    assert refit["error_after"] <= refit["error_before"]
    assert load_report(out / "reoptimized.pt")["refit"] is None  # a name without +refit: no refit, by any default
    assert len(list(out.glob("decay_*.png"))) == 2
