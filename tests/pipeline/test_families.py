"""Every supported family, on its traced channel groups: the groups ``streams=False`` prunes are the ones
the architecture says (block-internal channels), the traced graph is the model, keep=1 is exact, masked
== materialised, and the pruned model's layers shrink by exactly the removed channels of each group."""

import re

import pytest
import torch
from torch import nn
from torchvision.models import ResNet
from torchvision.models.mobilenetv2 import InvertedResidual as InvertedResidualV2
from torchvision.models.mobilenetv3 import InvertedResidual as InvertedResidualV3
from torchvision.models.resnet import BasicBlock, Bottleneck

import greedyprune
from greedyprune.graph import find_groups
from greedyprune.pipeline.networks import Networks

from .conftest import mlp
from .record_kept_channels import MODELS
from .record_kept_channels import inputs as record_inputs

FAMILIES = MODELS  # the same seven models the kept-channel record covers


def inputs(name, n=6, seed=0):
    return record_inputs(name, n, seed, size=48)


def rel_diff(a, b):
    return float((a - b).abs().max() / b.abs().max())


def expected_internal_groups(model: nn.Module) -> list[tuple[str, int]]:
    """(name, width) of the groups ``streams=False`` should prune, read off the architecture, in forward order.

    ResNet: each block's conv1 (and a bottleneck's conv2); MobileNetV2/V3: the expansion channels of each
    inverted residual that has an expansion conv (a 1x1 dense conv first), named ``features.N.hidden``;
    a plain chain: the outputs of every Conv2d / Linear but the last.
    """
    if isinstance(model, ResNet):
        found = []
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            for i, block in enumerate(getattr(model, stage)):
                convs = ["conv1"] if isinstance(block, BasicBlock) else ["conv1", "conv2"]
                assert isinstance(block, (BasicBlock, Bottleneck))
                found += [(f"{stage}.{i}.{c}", getattr(block, c).out_channels) for c in convs]
        return found
    if hasattr(model, "features") and any(isinstance(b, (InvertedResidualV2, InvertedResidualV3)) for b in model.features):
        found = []
        for i, block in enumerate(model.features):
            if isinstance(block, (InvertedResidualV2, InvertedResidualV3)):
                first = next(m for m in block.modules() if isinstance(m, nn.Conv2d))
                if first.kernel_size == (1, 1) and first.groups == 1:
                    found.append((f"features.{i}.hidden", first.out_channels))
        return found
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return [(name, m.weight.shape[0]) for name, m in layers[:-1]]


@pytest.mark.parametrize("name", FAMILIES)
def test_internal_groups_are_the_architectures_block_internal_channels(name):
    model, x = FAMILIES[name](), inputs(name)
    networks = Networks.build(model, torch.device("cpu"), x)
    internal = networks.prunable(streams=False)
    assert [(g.name, g.width) for g in internal] == expected_internal_groups(model)
    for group in internal:  # one producer whose output rows are the channels
        assert group.kind == "internal" and len(group.producers) == 1
        assert networks.original.get_submodule(group.producers[0].target).weight.shape[0] == group.width
    streams = sorted(g.name for g in networks.prunable(streams=True) if g.kind == "stream")
    if name.startswith("resnet"):  # each stage's residual stream, pruned only with streams=True
        assert streams == ["layer1.stream", "layer2.stream", "layer3.stream", "layer4.stream"]
    elif name.startswith("mobilenet"):  # the stages with residual additions
        assert streams and all(re.fullmatch(r"features\.stream\d", s) for s in streams)
    else:
        assert streams == []


@pytest.mark.parametrize("name", FAMILIES)
def test_traced_graph_computes_the_model(name):
    model, x = FAMILIES[name](), inputs(name)
    traced = find_groups(model, x[:1])
    with torch.no_grad():
        assert rel_diff(traced.graph_module(x), model(x)) < 1e-6


@pytest.mark.parametrize("name", FAMILIES)
def test_keep_one_reproduces_the_original(name):
    model, x = FAMILIES[name](), inputs(name)
    pruned, report = greedyprune.prune(model, [x[:3], x[3:]], keep=1.0, refit=None, progress=False)
    with torch.no_grad():
        assert rel_diff(pruned(x), model(x)) < 1e-4
    assert report.params_after == report.params_before


@pytest.mark.parametrize("name", FAMILIES)
def test_masked_reference_equals_materialized(name):
    model, x = FAMILIES[name](), inputs(name)
    calib = [x[:3], x[3:]]
    # float64 products: the two networks round differently, and float32 statistics could break near-ties
    small, report = greedyprune.prune(model, calib, keep=0.5, precision="float64", refit=None, progress=False)
    masked, masked_report = greedyprune.prune(model, calib, keep=0.5, materialize=False, precision="float64",
                                              refit=None, progress=False)
    assert [g.channels_after for g in report.groups] == [g.channels_after for g in masked_report.groups]
    assert report.params_after < report.params_before and masked_report.params_after == report.params_before
    with torch.no_grad():
        assert rel_diff(small(x), masked(x)) < 1e-4
    held_out = inputs(name, seed=1)
    with torch.no_grad():
        assert rel_diff(small(held_out), masked(held_out)) < 1e-4


def axis_size(model: nn.Module, ref) -> int:
    """Length, read off the tensors, of the channel axis an ``AxisRef`` slices in ``model``."""
    if ref.kind == "param":
        return model.get_parameter(ref.target).shape[ref.axis]
    module = model.get_submodule(ref.target)
    if ref.kind == "norm" and getattr(module, "running_mean", None) is not None:
        assert module.running_mean.shape == module.running_var.shape == module.weight.shape
    if ref.kind == "depthwise":
        assert module.weight.shape[1] == 1 and module.groups == module.weight.shape[0]
    return module.weight.shape[0]


def input_width(module: nn.Module) -> int:
    """A Conv2d's input channels or a Linear's input features, read off the weight."""
    return module.weight.shape[1] * (module.groups if isinstance(module, nn.Conv2d) else 1)


@pytest.mark.parametrize("name", FAMILIES)
def test_pruned_layers_lose_exactly_the_removed_channels(name):
    """Every producer, carrier and consumer of each pruned group shrinks by (removed channels) x block."""
    model, x = FAMILIES[name](), inputs(name)
    pruned, report = greedyprune.prune(model, [x[:3], x[3:]], keep=0.5, refit=None, progress=False)
    groups = {g.name: g for g in find_groups(model, x[:1]).groups}
    assert [g.name for g in report.groups] == [n for n, _ in expected_internal_groups(model)]
    for entry in report.groups:
        group, removed = groups[entry.name], entry.channels_before - entry.channels_after
        assert entry.channels_before == group.width and 0 < removed < group.width
        for ref in group.producers + group.carriers:
            shrunk = axis_size(model, ref) - axis_size(pruned, ref)
            assert shrunk == removed * ref.positions.shape[1], (entry.name, ref.target)
        for consumer in group.consumers:
            shrunk = input_width(model.get_submodule(consumer.target)) - input_width(pruned.get_submodule(consumer.target))
            assert shrunk == removed * consumer.columns.shape[1], (entry.name, consumer.target)
    with torch.no_grad():
        assert pruned(x).shape == model(x).shape


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
