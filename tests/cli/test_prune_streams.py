"""``greedyprune prune --streams``: residual streams are pruned only when asked, and the report says so."""

from __future__ import annotations

import torch
import torchvision

from greedyprune.cli.main import main
from greedyprune.modelfile import load_report


def test_streams_flag_prunes_the_residual_streams(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "w.pth")
    common = ["prune", "--model", "resnet18", "--weights", str(tmp_path / "w.pth"), "--data", "random:3x32x32",
              "--calib", "16", "--keep", "0.5", "--refit", "none", "--no-progress"]
    names = {}
    for flag in ([], ["--streams"]):
        out = tmp_path / f"p{len(flag)}.pt"
        assert main(common + flag + ["--out", str(out)]) == 0, capsys.readouterr().err
        report = load_report(out)
        names[bool(flag)] = {g["name"] for g in report["groups"]}
        assert report["options"]["streams"] is bool(flag)
    assert not any(name.endswith(".stream") for name in names[False])
    assert {"layer1.stream", "layer4.stream"} <= names[True]
    assert names[False] < names[True]
