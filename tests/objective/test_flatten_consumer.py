"""A Linear after flatten (many columns per channel): its statistics stay channel-level, equal to the covariance path.

The group of ``conv``'s 10 channels is read by ``fc`` after ``flatten`` of 8x8 maps: 64 columns per channel,
640 inputs. The covariance path holds 640^2 numbers; the objective must hold at most ``C^2`` and the
consumer's weight, and give the same ``(G, b, E)`` and offsets as the covariance path.
"""

import torch
from torch import nn

from greedyprune.objective import registered_objectives
from greedyprune.pipeline.networks import trace_groups
from greedyprune.pipeline.state import PruneState
from greedyprune.pipeline.statistics import collect
from greedyprune.walk import GraphWalker


class FlattenNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.conv, self.fc = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 10, 3, padding=1), nn.Linear(640, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(torch.relu(self.stem(x)))), 1))


def flatten_problem(product_dtype=torch.float64):
    torch.manual_seed(0)
    model = FlattenNet().double().eval()
    batches = [torch.randn(n, 3, 8, 8, dtype=torch.float64) for n in (6, 5)]
    nodes, groups = trace_groups(model, batches[0])
    group = next(g for g in groups if any(c.target == "fc" for c in g.consumers))
    assert group.width == 10
    walker = GraphWalker(nodes, model, None, batches, [group])
    objective = registered_objectives["reconstruction"](group, PruneState(model, model).views(group), product_dtype)
    return objective, collect(objective, walker, 0)


def held_tensors(obj, seen=None):
    """Sizes of all tensors reachable from ``obj``'s attributes (lists, tuples, dicts, objects)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj.numel()]
    if isinstance(obj, nn.Module):
        return []
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else \
        vars(obj).values() if hasattr(obj, "__dict__") else []
    return [n for item in items for n in held_tensors(item, seen)]


def test_flatten_consumer_statistics_are_channel_level():
    objective, problem = flatten_problem()
    assert problem.gram.shape == (10, 10)
    assert max(held_tensors(objective)) <= 640 * 5  # the consumer's weight; the covariance would be 640^2


def test_flatten_consumer_statistics_equal_the_covariance_path(monkeypatch):
    from greedyprune.stats import contributions
    objective, fast = flatten_problem()
    monkeypatch.setattr(contributions, "contributions_are_cheaper", lambda *args: False)
    reference_objective, full = flatten_problem()
    assert max(held_tensors(reference_objective)) == 640 * 640  # the forced covariance path
    torch.testing.assert_close(fast.gram, full.gram, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast.cross, full.cross, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast.energy, full.energy, rtol=1e-12, atol=0)
    kept = torch.tensor([1, 2, 5, 8])
    g = torch.linalg.solve(fast.gram[kept][:, kept], fast.cross[kept])
    got, want = objective.offsets(kept, g), reference_objective.offsets(kept, g)
    torch.testing.assert_close(got["fc"], want["fc"], rtol=1e-10, atol=1e-10)
