"""At 224x224 with random weights and keep 0.5: smaller, runs, reports truthfully, reloads."""

import pytest
import torch

import greedyprune
from greedyprune.metrics import count_flops, count_parameters

from .conftest import tv_model


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_small"])
def test_prune_save_load_at_224(name, tmp_path, images):
    model = tv_model(name, num_classes=1000)
    model.greedyprune_spec = {"name": name, "num_classes": 1000}
    x = images(2, size=224)
    pruned, report = greedyprune.prune(model, [x], keep=0.5, precision="float32", refit=None, progress=False)
    assert report.params_after == count_parameters(pruned) < count_parameters(model) == report.params_before
    assert report.flops_after == count_flops(pruned, x) < count_flops(model, x) == report.flops_before
    for g in report.groups:
        assert 1 <= g.channels_after <= max(1, round(0.5 * g.channels_before))
    path = tmp_path / "pruned.pt"
    greedyprune.save(path, pruned, report)
    assert (tmp_path / "pruned.pt.json").exists()
    loaded = greedyprune.load(path)
    with torch.no_grad():
        out = pruned(x)
        assert out.shape == (2, 1000) and torch.isfinite(out).all()
        torch.testing.assert_close(loaded(x), out)
