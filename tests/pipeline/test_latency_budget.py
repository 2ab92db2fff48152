"""Latency budgets: the tensors holding each group, the latency model against a brute-force count on the
pruned model, allocation by latency saved, reproducible widths from a recorded table, bad tables refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import greedyprune
from greedyprune.budget import cost_model
from greedyprune.errors import UserError
from greedyprune.graph import find_groups, trace
from greedyprune.latency import TIMED_OPS

from .conftest import tv_model


def _call_nodes(model: nn.Module, x: torch.Tensor) -> list:
    return [n for n in trace(model, x[:1]).nodes if n.op in TIMED_OPS]


def _random_seconds(model: nn.Module, x: torch.Tensor, seed: int = 0) -> dict[str, float]:
    g = torch.Generator().manual_seed(seed)
    return {n.name: float(torch.rand(1, generator=g)) * 1e-3 for n in _call_nodes(model, x)}


def test_tensors_holding_a_group_are_its_activations(images):
    traced = find_groups(tv_model("resnet18"), images(1, size=32))
    held = {g.name: [r.node for r in g.tensors] for g in traced.groups}
    # the stem's channels are layer1's stream (no downsample there): conv, BN, ReLU, max-pool and the additions
    stem = next(g for g in traced.groups if any(r.node == "maxpool" for r in g.tensors))
    assert stem.name == "layer1.stream"
    assert {"conv1", "bn1", "relu", "maxpool", "add", "add_1"} <= set(held["layer1.stream"])
    assert held["layer1.0.conv1"] == ["layer1_0_conv1", "layer1_0_bn1", "layer1_0_relu"]
    # layer4's stream reaches the pooled and flattened features (the classifier's input)
    assert {"avgpool", "flatten"} <= set(held["layer4.stream"])
    for group in traced.groups:
        for ref in group.tensors:
            assert ref.positions.shape[0] == group.width and ref.positions.unique().numel() == ref.positions.numel()
            assert int(ref.positions.max()) < ref.size


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "regnet_x_400mf", "googlenet"])
def test_latency_model_equals_a_count_on_the_pruned_model(name, images):
    """cost(w) = sum of node times scaled by what each node keeps, counted on the physically pruned model:
    a conv / linear by (input channels kept) x (output rows kept), any other node by its output's elements kept."""
    model, x = tv_model(name), images(4, size=32)
    seconds = _random_seconds(model, x)
    pruner = greedyprune.Pruner(model, [x], keep=0.5, streams=True, refit=None, progress=False)
    g = np.random.default_rng(0)
    widths = {grp.name: grp.partition * int(g.integers(1, grp.width // grp.partition + 1)) for grp in pruner.groups}
    pruned, report = greedyprune.prune(model, [x], widths=widths, streams=True, method="magnitude-norefit",
                                       progress=False)
    full, small = trace(model, x[:1]), trace(pruned, x[:1])
    modules, pruned_modules = dict(model.named_modules()), dict(pruned.named_modules())
    expected = 0.0
    for node in full.nodes:
        if node.op not in TIMED_OPS:
            continue
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, (nn.Conv2d, nn.Linear)):  # weight (out, in / groups): depthwise and grouped too
            a, b = module.weight.shape[:2], pruned_modules[node.target].weight.shape[:2]
            ratio = (b[0] / a[0]) * (b[1] / a[1])
        else:
            value, kept = full.values[node.name], small.values[node.name]
            ratio = kept.numel() / value.numel() if isinstance(value, torch.Tensor) else 1.0
        expected += seconds[node.name] * ratio
    costs = cost_model(model, pruner.groups, x, "latency", nodes=pruner.nodes, seconds=seconds)
    kept = [widths[grp.name] for grp in pruner.groups]
    assert costs.cost(kept) == pytest.approx(expected, rel=1e-9)
    assert costs.cost(costs.full_widths) == pytest.approx(sum(seconds.values()), rel=1e-9)


def test_latency_allocation_prunes_the_slow_layers_more(images):
    model, x = tv_model("resnet18"), images(8, size=32)
    seconds = {k: 1e-6 for k in _random_seconds(model, x)}
    seconds["maxpool"] = 1.0  # the stem's max-pool (layer1's stream) made the slowest node by far
    common = dict(flops=0.6, streams=True, refit=None, progress=False)
    _, by_flops = greedyprune.prune(model, [x], **common)
    _, by_time = greedyprune.prune(model, [x], allocation="latency", latency_seconds=seconds, **common)
    # every step of the stream saves ~1/64 s, any other step ~1e-6 s: the stream goes first (until the FLOPs
    # target is met, or it is down to one channel)
    assert by_time.widths()["layer1.stream"] < by_flops.widths()["layer1.stream"]
    assert by_time.widths()["layer1.stream"] <= 64 * 0.25
    assert by_time.flops_after / by_time.flops_before <= 0.6  # the target is still the FLOPs one
    assert by_time.options["latency_seconds"] == seconds
    assert by_time.options["latency_model_kept"] == pytest.approx(by_time.widths()["layer1.stream"] / 64, abs=0.01)


def test_latency_target_is_met_and_a_recorded_table_repeats_the_widths(images):
    model, x = tv_model("resnet18"), images(8, size=32)
    _, first = greedyprune.prune(model, [x], latency=0.5, streams=True, refit=None, progress=False)
    table = first.options["latency_seconds"]
    assert set(table) == {n.name for n in _call_nodes(model, x)} and all(t >= 0 for t in table.values())
    assert 0.4 < first.options["latency_model_kept"] <= 0.5
    assert first.budget["latency"] == 0.5 and "latency model" in first.table()
    _, again = greedyprune.prune(model, [x], latency=0.5, streams=True, refit=None, progress=False,
                                 latency_seconds=table)
    assert again.widths() == first.widths()


def test_bad_latency_options_are_one_line_errors(images):
    model, x = tv_model("resnet18"), images(4, size=32)
    seconds = _random_seconds(model, x)
    with pytest.raises(UserError, match="latency_seconds is used only with"):
        greedyprune.prune(model, [x], flops=0.5, latency_seconds=seconds, progress=False)
    with pytest.raises(UserError, match="give exactly one budget"):
        greedyprune.prune(model, [x], flops=0.5, latency=0.5, progress=False)
    del seconds["maxpool"]
    with pytest.raises(UserError, match="no time for node.*maxpool"):
        greedyprune.prune(model, [x], latency=0.5, latency_seconds=seconds, progress=False)
    seconds["maxpool"] = float("nan")
    with pytest.raises(UserError, match="time for maxpool is nan"):
        greedyprune.prune(model, [x], latency=0.5, latency_seconds=seconds, progress=False)
    with pytest.raises(UserError, match="allocation must be one of"):
        greedyprune.prune(model, [x], flops=0.5, allocation="fast", progress=False)
