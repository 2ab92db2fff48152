"""`greedyprune info MODEL`: a model name or file -> channel groups (traced) and frozen channels; one-line refusals."""

import torch
from torch import nn

import greedyprune
from greedyprune.cli.main import main
from greedyprune.models import ModelEntry, build_model, registered_models


def _groups(printed: str) -> dict[str, list[str]]:
    """Group name -> the printed columns (kind, width, partition, exact, ...) from info's table."""
    lines = printed.split("channel groups:")[1].split("frozen channels:")[0].splitlines()[2:]
    return {line.split()[0]: line.split()[1:] for line in lines if line.strip()}


def test_info_on_a_torchvision_name(capsys):
    assert main(["info", "resnet18"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("resnet18: torchvision resnet18 (weights=None; 11.7M params); 1000 classes; "
                              "default data imagefolder:DIR; input 3x224x224")
    groups = _groups(printed)
    assert "channel groups: 12 (8 internal, 4 stream)" in printed
    assert groups["layer1.0.conv1"][:4] == ["internal", "64", "1", "true"]
    assert groups["layer1.stream"][:4] == ["stream", "64", "1", "true"]
    assert " ".join(groups["layer4.stream"][4:]) == ("3: layer4.0.conv2, layer4.0.downsample.0 +1 -> "
                                                     "2: layer4.1.conv1, fc")  # producers -> consumers
    frozen = printed.split("frozen channels:")[1]
    assert "fc" in frozen and "1000  the model's output (class logits)" in frozen


def test_info_on_timm_and_grouped_conv_names(capsys):
    assert main(["info", "timm:resnet18"]) == 0
    assert "channel groups: 12 (8 internal, 4 stream)" in capsys.readouterr().out
    assert main(["info", "resnext50_32x4d", "--input", "3x64x64"]) == 0
    printed = capsys.readouterr().out
    assert "input 3x64x64" in printed
    partitions = {name: int(cols[2]) for name, cols in _groups(printed).items()}
    assert partitions["layer1.0.conv1"] == 32  # read by conv2, a 32-group conv: equal kept count per conv group


def test_info_on_a_model_file(tmp_path, capsys):
    torch.manual_seed(0)
    greedyprune.save(tmp_path / "lenet.pt", build_model("lenet300-100"))
    assert main(["info", str(tmp_path / "lenet.pt")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{tmp_path / 'lenet.pt'}: lenet300-100; input 1x28x28")
    assert set(_groups(printed)) == {"1", "3"} and "no pruning report stored" in printed


def test_models_without_a_prunable_group_or_trace_are_one_line(monkeypatch, capsys):
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else -self.conv(x)  # data-dependent: torch.fx cannot trace it

    monkeypatch.setitem(registered_models, "test-linear", ModelEntry(
        lambda n: nn.Sequential(nn.Flatten(), nn.Linear(784, n)), 10, (1, 28, 28), "fashion-mnist"))
    monkeypatch.setitem(registered_models, "test-branchy", ModelEntry(lambda n: Branchy(), 10, (3, 8, 8), "random"))
    assert main(["info", "test-linear"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("greedyprune info: error: test-linear has no prunable channel group: 1 (10 channels) is frozen: "
                   "the model's output (class logits)")
    assert main(["info", "test-branchy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("greedyprune info: error: torch.fx cannot trace Branchy") and "\n" not in err
