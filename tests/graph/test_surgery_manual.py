"""Layout + apply_selection on hand-written groups: physical removal equals zeroed columns at full width."""

import copy

import torch
from torch import nn

from greedyprune.graph.groups import AxisRef, ChannelGroup, Consumer
from greedyprune.surgery import Layout, apply_selection


def _col(n: int, block: int = 1) -> torch.Tensor:
    return torch.arange(n * block).reshape(n, block)


def test_grouped_consumer_depthwise_flatten():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                          nn.Conv2d(8, 6, 1, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    first = ChannelGroup("0", 8, "internal", [AxisRef("0", "out", _col(8))],
                         [AxisRef("1", "norm", _col(8)), AxisRef("3", "depthwise", _col(8)), AxisRef("4", "norm", _col(8))],
                         [Consumer("5", _col(8), "5", partitions=2)], (0, 5), "0", partition=2)
    second = ChannelGroup("5", 6, "internal", [AxisRef("5", "out", _col(6))], [],
                          [Consumer("8", _col(6, 16), "8")], (5, 8), "5", partition=2)
    x = torch.randn(2, 3, 4, 4)
    pruned, reference = copy.deepcopy(model), copy.deepcopy(model)
    layouts = Layout(pruned), Layout(reference)
    for group, kept in ((second, torch.tensor([0, 2, 3, 5])), (first, torch.tensor([1, 2, 5, 7]))):
        coef = torch.rand(kept.numel()) + 0.5
        target = group.consumers[0].target
        delta = torch.randn(layouts[1].original_size(target, 0))  # over the consumer's original rows
        for net, layout, materialize in ((pruned, layouts[0], True), (reference, layouts[1], False)):
            apply_selection(net, layout, group, kept, coef, {target: delta[layout.current_rows(target)]}, materialize)
    assert pruned[0].out_channels == 4 and pruned[3].groups == 4 and pruned[5].in_channels == 4
    assert pruned[5].out_channels == 4 and pruned[8].in_features == 64
    assert torch.allclose(pruned(x), reference(x), atol=1e-5)
