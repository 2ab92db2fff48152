"""prune, its budget's error curves and analyze all collect statistics through the one graph walker.

Every Conv2d call is counted, and whether it came from the walker (``walk.execute.run_node``) or not.
Outside the walker only whole-model passes on one batch are allowed (checking the model runs, counting
FLOPs); a second way of walking the network (hooks on stages, re-running the model per group) would
call layers outside the walker once per group and batch, and the walker's own count per batch is
bounded (cuts are cached: no layer runs once per group).
"""

import importlib

import pytest
import torch
from torch import nn

import greedyprune
from analysis import group_statistics

walk_execute = importlib.import_module("greedyprune.walk.execute")  # the module (the package exports a function)

from .conftest import tv_model


@pytest.fixture
def counted(monkeypatch):
    """Conv2d calls: {"walker": n, "outside": n}."""
    counts = {"walker": 0, "outside": 0}
    inside = [False]
    run_node, forward = walk_execute.run_node, nn.Conv2d.forward

    def counting_run_node(node, env, root):
        inside[0] = True
        try:
            return run_node(node, env, root)
        finally:
            inside[0] = False

    def counting_forward(self, x):
        counts["walker" if inside[0] else "outside"] += 1
        return forward(self, x)

    monkeypatch.setattr(walk_execute, "run_node", counting_run_node)
    monkeypatch.setattr(nn.Conv2d, "forward", counting_forward)
    return counts


def test_prune_with_error_curves_and_analyze_use_only_the_walker(counted):
    model = tv_model("resnet18")
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batches = [x[:4], x[4:]]
    _, report = greedyprune.prune(model, batches, flops=0.6, refit=None, progress=False)  # the walker's passes only
    assert len(report.groups) == 8
    # outside: 5 whole passes of one batch (tracing, checking the model runs, FLOPs before and after,
    # the cost model's per-layer FLOPs)
    assert counted["outside"] <= 5 * convs, counted
    # the walker per batch: error curves (the original once) + pruning (the pruned network once: its
    # cut moves on by slicing; the original not at all: the curves' consumer outputs are its targets)
    assert convs * len(batches) < counted["walker"] <= 2 * convs * len(batches), counted
    counted.update(walker=0, outside=0)
    greedyprune.prune(model, batches, flops=0.6, refit=None, progress=False, cache_mb=0)  # the targets computed again
    assert 2 * convs * len(batches) < counted["walker"] <= 3 * convs * len(batches), counted
    counted.update(walker=0, outside=0)
    stats = group_statistics(model, batches)
    assert len(stats) == 8
    assert counted["outside"] <= 2 * convs, counted  # tracing (twice: names, then the walk)
    assert counted["walker"] == convs * len(batches), counted  # every layer once per batch
