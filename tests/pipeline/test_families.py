"""Every supported family: keep=1 is exact, masked == materialised, pruned models are smaller."""

import pytest
import torch

import greedyprune
from greedyprune.adapters import find_adapter
from greedyprune.stats import run_stages

from .conftest import mlp, small_cnn, tv_model

FAMILIES = {
    "resnet18": lambda: tv_model("resnet18"),
    "resnet50": lambda: tv_model("resnet50"),
    "mobilenet_v2": lambda: tv_model("mobilenet_v2"),
    "mobilenet_v3_small": lambda: tv_model("mobilenet_v3_small"),
    "mobilenet_v3_large": lambda: tv_model("mobilenet_v3_large"),
    "mlp": mlp,
    "small_cnn": small_cnn,
}


def inputs(name, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    if name == "mlp":
        return torch.randn(n, 1, 8, 8, generator=g)
    if name == "small_cnn":
        return torch.randn(n, 1, 16, 16, generator=g)
    return torch.randn(n, 3, 48, 48, generator=g)


def rel_diff(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", FAMILIES)
def test_stages_compose_to_the_model(name):
    model, x = FAMILIES[name](), inputs(name)
    adapter = find_adapter(model)
    with torch.no_grad():
        assert rel_diff(run_stages(adapter.stages(model), x), model(x)) < 1e-6


@pytest.mark.parametrize("name", FAMILIES)
def test_keep_one_reproduces_the_original(name):
    model, x = FAMILIES[name](), inputs(name)
    pruned, report = greedyprune.prune(model, [x[:3], x[3:]], keep=1.0, progress=False)
    with torch.no_grad():
        assert rel_diff(pruned(x), model(x)) < 1e-4
    assert report.params_after == report.params_before


@pytest.mark.parametrize("name", FAMILIES)
def test_masked_reference_equals_materialized(name):
    model, x = FAMILIES[name](), inputs(name)
    calib = [x[:3], x[3:]]
    # float64 products: the two networks round differently, and float32 statistics could break near-ties
    small, report = greedyprune.prune(model, calib, keep=0.5, precision="float64", progress=False)
    masked, masked_report = greedyprune.prune(model, calib, keep=0.5, materialize=False, precision="float64",
                                              progress=False)
    assert [g.channels_after for g in report.groups] == [g.channels_after for g in masked_report.groups]
    assert report.params_after < report.params_before and masked_report.params_after == report.params_before
    with torch.no_grad():
        assert rel_diff(small(x), masked(x)) < 1e-4
    held_out = inputs(name, seed=1)
    with torch.no_grad():
        assert rel_diff(small(held_out), masked(held_out)) < 1e-4


def test_reports_error_of_the_consumer_output_measured_directly():
    """The engine's reported error is the consumer's actual relative (centred) output error."""
    model = mlp()
    x = inputs("mlp", n=64)
    pruner = greedyprune.Pruner(model, [x[:32], x[32:]], keep=0.4, progress=False)
    report = pruner.step()
    with torch.no_grad():
        target = model[:4](x)  # original output of the first consumer (Linear 40->30)
        got = pruner.model[:4](x)
    centred = target - target.mean(0)
    measured = float(((got - target) ** 2).sum() / (centred ** 2).sum())
    assert report.channels_after == 16
    assert measured == pytest.approx(report.error, rel=1e-4)
    assert report.error < 1.0
