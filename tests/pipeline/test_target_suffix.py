"""The recorded targets keep the latest visits within the budget (a suffix): the prune pass runs the original
network only up to the first of them, and the pruned model is the same bit for bit."""

import importlib

import torch
from torch import nn

import greedyprune
from greedyprune.walk.targets import TargetCache

from .conftest import tv_model

prune_module = importlib.import_module("greedyprune.prune")


def outputs(value: float, numel: int = 4) -> dict[str, tuple[torch.Tensor, bool]]:
    return {"layer": (torch.full((numel,), float(value), dtype=torch.float32), False)}  # 16 bytes


def test_cache_keeps_the_latest_whole_visits_within_budget():
    cache = TargetCache(budget=5 * 16)
    for index in range(4):  # visits of 2, 1, 2, 2 batches: 7 batches, 5 fit
        for batch in range(1 if index == 1 else 2):
            cache.record(index, outputs(10 * index + batch))
            assert cache.bytes <= cache.budget
    assert [i for i in range(4) if cache.covers(i)] == [1, 2, 3]  # visit 0 forgotten whole, the rest kept
    assert cache.bytes == 5 * 16
    assert cache.take(0, 2) is None
    assert [float(b["layer"][0]) for b in cache.take(2, 2)] == [20.0, 21.0]
    assert not cache.covers(2) and cache.covers(3) and cache.bytes == 3 * 16


def test_a_visit_forgotten_while_recorded_records_no_more_batches():
    cache = TargetCache(budget=2 * 16)
    cache.record(0, outputs(0))
    cache.record(1, outputs(1))
    cache.record(1, outputs(2))  # over budget: visit 0 goes, visit 1 fits
    assert not cache.covers(0) and cache.covers(1)
    cache.record(1, outputs(3))  # visit 1 alone is over budget now: forgotten, and its next batch ignored
    cache.record(1, outputs(4))
    assert not cache.recorded and cache.bytes == 0
    cache.record(2, outputs(5))  # later visits are recorded again
    assert cache.covers(2) and cache.take(2, 1) is not None
    big = TargetCache(budget=8)
    big.record(0, outputs(0))  # one batch larger than the budget
    assert not big.recorded and TargetCache(budget=0).take(0, 1) is None


def test_a_suffix_of_targets_gives_the_same_model_and_spares_the_original_after_it(monkeypatch):
    """ResNet-18 with streams: a budget of about half of all targets records the second half of the visits;
    in the prune pass the original's convs before the first recorded visit run, those after it do not."""
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batches = [x[:4], x[4:]]
    full = {}

    def recording(budget):
        full["cache"] = TargetCache(1 << 40)
        return full["cache"]

    with monkeypatch.context() as patch:
        patch.setattr(prune_module, "TargetCache", recording)
        greedyprune.Pruner(tv_model("resnet18"), batches, flops=0.5, streams=True, progress=False, refit=None)
    sizes = full["cache"].sizes
    half = sum(sizes.values()) // 2
    monkeypatch.setattr(prune_module, "TargetCache", lambda budget: TargetCache(half))
    pruner = greedyprune.Pruner(tv_model("resnet18"), batches, flops=0.5, streams=True, progress=False, refit=None)
    covered = [i for i in range(len(pruner.groups)) if pruner.walker.targets.covers(i)]
    assert covered and covered == list(range(covered[0], len(pruner.groups))) and covered[0] > 1
    calls: dict[str, int] = {}
    forward = nn.Conv2d.forward
    names = {id(m): n for n, m in pruner.original.named_modules()}

    def counting(self, inp):
        if id(self) in names:
            calls[names[id(self)]] = calls.get(names[id(self)], 0) + 1
        return forward(self, inp)

    with monkeypatch.context() as patch:
        patch.setattr(nn.Conv2d, "forward", counting)
        pruned, _ = pruner.run()
    first = pruner.groups[covered[0]]  # the first replayed visit: the original's consumers of earlier ones ran
    earlier = {c.target for g in pruner.groups[:covered[0]] for c in g.consumers}
    later = {c.target for g in pruner.groups[covered[0]:] for c in g.consumers} - earlier
    assert all(calls.get(t, 0) > 0 for t in earlier if t in names.values()), (first.name, calls)
    assert later and not any(calls.get(t, 0) for t in later), calls
    monkeypatch.setattr(prune_module, "TargetCache", TargetCache)
    reference, _ = greedyprune.prune(tv_model("resnet18"), batches, flops=0.5, streams=True, progress=False,
                                     refit=None, cache_mb=0)
    with torch.no_grad():
        assert torch.equal(pruned(x), reference(x))
    assert all(torch.equal(a, b) for a, b in zip(pruned.state_dict().values(), reference.state_dict().values()))
