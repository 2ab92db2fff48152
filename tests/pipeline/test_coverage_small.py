"""Every torchvision family prunes end to end through the public API and the CLI (reduced widths, small inputs).

The same checks as ``experiments/coverage.py`` on full-size models: ``greedyprune.prune(model, images,
flops=0.5, refit=None)`` on a model the user built (no greedyprune spec), output of the right shape, FLOPs target
met, fewer parameters, the dense model untouched, and ``greedyprune.save`` / ``greedyprune.load`` giving
back the same weights and outputs (the reduced configurations are no torchvision builder, so ``load`` is
given an unpruned instance; the CLI tests below, and the coverage script, load by name without one). ViT is the stated exception-or-success: it prunes with the same
checks or is refused with one line.
"""

import json

import pytest
import torch

import greedyprune
from greedyprune.cli.main import main
from greedyprune.errors import UserError
from greedyprune.metrics import count_parameters

from .small_families import SMALL_FAMILIES, small_model

CNN_FAMILIES = [f for f in SMALL_FAMILIES if f != "ViT"]


def _images(size: int, n: int = 16) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def _prune_and_check(model: torch.nn.Module, size: int, folder, unpruned: torch.nn.Module) -> tuple[torch.nn.Module, object]:
    """Prune at half the FLOPs and check everything; ``unpruned`` is a fresh instance of the architecture for load
    (these reduced configurations are no torchvision builder, so load is told the architecture: ``model=``)."""
    images = _images(size)
    x = images[:2]
    with torch.no_grad():
        dense = model(x)
    pruned, report = greedyprune.prune(model, list(images.split(8)), flops=0.5, refit=None, progress=False)
    with torch.no_grad():
        assert torch.equal(model(x), dense)  # the user's model is left as it was
        out = pruned.eval()(x)
    assert out.shape == dense.shape and torch.isfinite(out).all()
    assert report.flops_after <= 0.51 * report.flops_before
    assert count_parameters(pruned) < count_parameters(model)
    greedyprune.save(folder / "pruned.pt", pruned, report)
    loaded = greedyprune.load(folder / "pruned.pt", model=unpruned)
    a, b = pruned.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        assert torch.equal(loaded(x), out)
    return pruned, report


@pytest.mark.parametrize("family", CNN_FAMILIES)
def test_family_prunes_through_the_public_api(family, tmp_path):
    _prune_and_check(small_model(family), SMALL_FAMILIES[family][1], tmp_path, small_model(family, seed=1))


def test_vit_prunes_or_is_refused_in_one_line(tmp_path):
    try:
        _, report = _prune_and_check(small_model("ViT"), SMALL_FAMILIES["ViT"][1], tmp_path, small_model("ViT", seed=1))
    except UserError as err:
        assert "\n" not in str(err) and str(err)
    else:
        assert any("mlp" in g.name for g in report.groups)


@pytest.mark.parametrize("name", ["squeezenet1_1", "shufflenet_v2_x0_5", "regnet_y_400mf", "timm:resnet18",
                                  "timm:mobilenetv2_100", "timm:efficientnet_b0"])
def test_names_prune_on_the_command_line(name, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    data = ["--data", "random:3x32x32"]
    assert main(["prune", "--model", name, *data, "--calib", "8", "--batch-size", "8", "--flops", "0.5",
                 "--refit", "none", "--out", str(out), "--no-progress"]) == 0
    assert "saved" in capsys.readouterr().out
    assert main(["eval", str(out), *data, "--limit", "4", "--latency-batch", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    dense = greedyprune.models.build_model(name)
    assert result["params"] < count_parameters(dense)
    assert main(["info", str(out), "--input", "3x32x32"]) == 0
    assert "channel groups:" in capsys.readouterr().out
