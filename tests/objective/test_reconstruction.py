"""The reconstruction objective of a multi-consumer group against a brute-force computation.

Group A (6 channels) is read by a dense 3x3 conv whose output rows an earlier group pruned, a grouped
1x1 conv (2 partitions), a 1x1 conv over a concatenation with another group's channels (already
pruned, its offset added to that conv's bias) and a Linear after pooling and flatten (4 features per
channel). The brute force stacks every consumer's per-channel contributions ``c_{k,i}`` (the layer run
on its input with only channel i's columns left) and targets (the original output minus what the other
columns give now), centres them per row and forms ``G = C C^T``, ``b = C T``, ``E = T.T`` directly.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from greedyprune.graph.groups import AxisRef, ChannelGroup, Consumer
from greedyprune.objective import registered_objectives
from greedyprune.pipeline.state import PruneState
from greedyprune.pipeline.statistics import collect
from greedyprune.surgery import apply_selection
from greedyprune.walk import GraphWalker


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.bn, self.g = nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Conv2d(3, 3, 1)
        self.b, self.e = nn.Conv2d(6, 4, 3, padding=1), nn.Conv2d(4, 2, 1)
        self.c, self.d, self.fc = nn.Conv2d(6, 4, 1, groups=2), nn.Conv2d(9, 5, 1), nn.Linear(24, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.a(x)))
        out = self.e(F.relu(self.b(h))).mean((2, 3)) + self.c(h).mean((2, 3))[:, :2]
        out = out + self.d(torch.cat([h, F.relu(self.g(x))], 1)).mean((2, 3))[:, :2]
        return out + self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 2), 1))[:, :2]


def cols(n, block=1, offset=0):
    return (offset + torch.arange(n * block)).reshape(n, block)


GROUP_B = ChannelGroup("b", 4, "internal", [AxisRef("b", "out", cols(4))], [], [Consumer("e", cols(4), "e")],
                       (0, 0), "b")
GROUP_C = ChannelGroup("g", 3, "internal", [AxisRef("g", "out", cols(3))], [], [Consumer("d", cols(3, offset=6), "d")],
                       (0, 0), "g")
GROUP_A = ChannelGroup("a", 6, "internal", [AxisRef("a", "out", cols(6))], [AxisRef("bn", "norm", cols(6))],
                       [Consumer("b", cols(6), "b"), Consumer("c", cols(6), "c", partitions=2),
                        Consumer("d", cols(6), "d"), Consumer("fc", cols(6, 4), "fc")], (0, 0), "a", partition=2)


def inputs_of(model, targets, x):
    seen, handles = {}, [model.get_submodule(t).register_forward_pre_hook(
        lambda m, args, t=t: seen.__setitem__(t, args[0])) for t in targets]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return seen


def rows_by_positions(module, out):
    return out.transpose(0, 1).reshape(out.shape[1], -1) if isinstance(module, nn.Conv2d) else out.T


def masked(x, module, columns):
    """``x`` with only ``columns`` (of the consumer's input axis) left."""
    keep = torch.zeros(x.shape[1], dtype=torch.bool)
    keep[columns] = True
    shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
    return x * keep.to(x).reshape(shape)


def setup():
    torch.manual_seed(0)
    original = Net().double().eval()
    original.bn.running_mean.uniform_(-0.5, 0.5)
    original.bn.running_var.uniform_(0.5, 2.0)
    pruned = copy.deepcopy(original)
    state = PruneState(pruned, original)
    for group, kept in ((GROUP_B, torch.tensor([0, 2, 3])), (GROUP_C, torch.tensor([1, 2]))):  # earlier groups
        target = group.consumers[0].target
        offsets = {target: torch.randn(state.layout.size(target, 0), dtype=torch.float64)}
        state.record(group, kept, offsets)
        apply_selection(pruned, state.layout, group, kept, torch.rand(kept.numel()) + 0.5, offsets)
    x = torch.randn(12, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return original, pruned, state, [x[:5], x[5:]]


def brute_force(original, pruned, state, batches):
    """(C (6, D), T (D,), reference energy) stacked over consumers and batches, centred per row."""
    contributions, targets, reference = [[] for _ in range(6)], [], 0.0
    for consumer in GROUP_A.consumers:
        module, source = pruned.get_submodule(consumer.target), original.get_submodule(consumer.target)
        rows, original_rows = state.kept_rows(consumer.target)
        columns = state.layout.current_columns(consumer)
        others = [c for c in range(module.weight.shape[1] * getattr(module, "groups", 1)) if c not in columns.reshape(-1).tolist()]
        per_channel, target = [[] for _ in range(6)], []
        for xb in batches:
            x_in = inputs_of(pruned, [consumer.target], xb)[consumer.target]
            with torch.no_grad():
                y = rows_by_positions(source, source(inputs_of(original, [consumer.target], xb)[consumer.target]))
                fixed = rows_by_positions(module, module(masked(x_in, module, others)))[rows]
                target.append(y[original_rows] - fixed)
                for i in range(6):
                    out = module(masked(x_in, module, columns[i])) - module.bias.reshape((1, -1) + (1,) * (x_in.dim() - 2))
                    per_channel[i].append(rows_by_positions(module, out)[rows])
        target = torch.cat(target, 1)
        targets.append((target - target.mean(1, keepdim=True)).reshape(-1))
        with torch.no_grad():
            original_target = target + torch.cat([rows_by_positions(module, module(masked(
                inputs_of(pruned, [consumer.target], xb)[consumer.target], module, others)))[rows] for xb in batches], 1)
        reference += float((original_target - original_target.mean(1, keepdim=True)).pow(2).sum())
        for i in range(6):
            c = torch.cat(per_channel[i], 1)
            contributions[i].append((c - c.mean(1, keepdim=True)).reshape(-1))
    return torch.stack([torch.cat(c) for c in contributions]), torch.cat(targets), reference


def test_multi_consumer_statistics_equal_the_brute_force_sums():
    original, pruned, state, batches = setup()
    walker = GraphWalker(list(fx.symbolic_trace(original).graph.nodes), original, pruned, batches, [GROUP_A])
    objective = registered_objectives["reconstruction"](GROUP_A, state.views(GROUP_A), torch.float64)
    problem = collect(objective, walker, 0)
    c, t, reference = brute_force(original, pruned, state, batches)
    torch.testing.assert_close(problem.gram, c @ c.T, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(problem.cross, c @ t, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(problem.energy, t @ t, rtol=1e-9, atol=1e-9)
    assert float(problem.reference_energy) == pytest.approx(reference, rel=1e-9)
    assert float(problem.reference_energy) != float(problem.energy)  # d's other columns are subtracted
    assert float(problem.gram[0, 3]) != 0 and float(problem.gram[0, 1]) != 0  # consumers sum over partitions


def test_offsets_leave_every_consumer_with_zero_mean_error():
    original, pruned, state, batches = setup()
    walker = GraphWalker(list(fx.symbolic_trace(original).graph.nodes), original, pruned, batches, [GROUP_A])
    objective = registered_objectives["reconstruction"](GROUP_A, state.views(GROUP_A), torch.float64)
    problem = collect(objective, walker, 0)
    kept = torch.tensor([0, 2, 3, 5])
    coefficients = torch.linalg.solve(problem.gram[kept][:, kept], problem.cross[kept])
    offsets = objective.offsets(kept, coefficients)
    before = {xb_index: inputs_of(pruned, [c.target for c in GROUP_A.consumers], xb) for xb_index, xb in enumerate(batches)}
    present = {c.target: state.layout.present(c.target, 1).clone() for c in GROUP_A.consumers}
    state.record(GROUP_A, kept, offsets)
    apply_selection(pruned, state.layout, GROUP_A, kept, coefficients, offsets)
    for consumer in GROUP_A.consumers:
        module, source = pruned.get_submodule(consumer.target), original.get_submodule(consumer.target)
        keep = torch.isin(present[consumer.target], state.layout.present(consumer.target, 1)).nonzero().squeeze(1)
        rows, original_rows = state.kept_rows(consumer.target)
        residual = []
        for index, xb in enumerate(batches):
            x_in = before[index][consumer.target].index_select(1, keep)
            with torch.no_grad():
                got = rows_by_positions(module, module(x_in))[rows]
                want = rows_by_positions(source, source(inputs_of(original, [consumer.target], xb)[consumer.target]))
            residual.append(got - want[original_rows])
        mean = torch.cat(residual, 1).mean(1)
        assert float(mean.abs().max()) < 1e-9, (consumer.target, mean)
