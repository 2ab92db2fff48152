"""The walker's shortcuts change how often layers run, never the result.

* the first group's statistics come from the error-curve pass and its pruned-network values from the
  original's run (nothing is pruned before it);
* a pruned group's producers are not rerun: the values already computed are sliced to the kept channels;
* original-network values computed ahead (a residual stream group's run through later blocks) are kept
  for the later visits that read them, and the error-curve pass's consumer outputs are the prune pass's
  targets (both within ``cache_mb``).

Each is compared bit for bit with the walk without it (pruned model outputs and parameters equal).
"""

import importlib

import pytest
import torch
from torch import nn

import greedyprune

from .conftest import tv_model

walker = importlib.import_module("greedyprune.walk.walker")


def run(name: str, streams: bool, dtype: torch.dtype, shortcuts: bool, monkeypatch) -> tuple[torch.Tensor, list, int]:
    """Pruned model's output on the calibration images, its parameters, and the layers the walker ran."""
    model = tv_model(name).to(dtype)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=dtype)
    with monkeypatch.context() as patch:
        if not shortcuts:
            init = walker.GraphWalker.__init__
            patch.setattr(walker.GraphWalker, "__init__",
                          lambda self, *a, **k: init(self, *a, **{**k, "same_start": False, "slicing": False}))
        pruner = greedyprune.Pruner(model, [x[:4], x[4:]], flops=0.5, streams=streams, progress=False,
                                    cache_mb=2048 if shortcuts else 0, refit=None)
        if not shortcuts:
            pruner.first_objective = None
        while pruner.step() is not None:
            pass
        runs = pruner.walker.node_runs
        pruned, _ = pruner.finish()
    with torch.no_grad():
        return pruned(x), [p.detach().clone() for p in pruned.parameters()], runs


@pytest.mark.parametrize("name, streams, dtype", [("resnet18", True, torch.float32), ("resnet18", False, torch.float32),
                                                  ("mobilenet_v3_small", True, torch.float32),
                                                  ("mobilenet_v2", False, torch.float64)])
def test_shortcuts_give_the_same_pruned_model_bit_for_bit(name, streams, dtype, monkeypatch):
    out, params, runs = run(name, streams, dtype, True, monkeypatch)
    ref_out, ref_params, ref_runs = run(name, streams, dtype, False, monkeypatch)
    assert runs < ref_runs  # the shortcuts were taken
    assert torch.equal(out, ref_out)
    assert len(params) == len(ref_params) and all(torch.equal(a, b) for a, b in zip(params, ref_params))


@pytest.mark.parametrize("streams", [False, True])
@pytest.mark.parametrize("cache_mb", [0, 2048])
def test_layers_run_once_per_pass(streams, cache_mb, monkeypatch):
    """ResNet-18, the prune pass: every original conv runs not at all (the error-curve pass's consumer
    outputs are the targets), or with cache_mb=0 once per batch (twice with streams); a pruned conv once (internal groups: producers
    are sliced, not rerun) or at most twice (streams: a stream group's consumers are rerun after its
    surgery), plus the final FLOP count."""
    model = tv_model("resnet18")
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    calls: dict[int, int] = {}
    forward = nn.Conv2d.forward

    def counting(self, inp):
        calls[id(self)] = calls.get(id(self), 0) + 1
        return forward(self, inp)

    pruner = greedyprune.Pruner(model, [x[:4], x[4:]], flops=0.5, streams=streams, progress=False, cache_mb=cache_mb,
                                refit=None)  # the walk only (the refit runs the networks on its own)
    monkeypatch.setattr(nn.Conv2d, "forward", counting)
    original = {id(m) for m in pruner.original.modules() if isinstance(m, nn.Conv2d)}
    pruned = {id(m) for m in pruner.model.modules() if isinstance(m, nn.Conv2d)}
    pruner.run()  # the prune pass (the error curves ran in the constructor)
    monkeypatch.undo()
    batches = 2
    runs = max(calls.get(i, 0) for i in original)
    if cache_mb:
        assert runs == 0, calls
    else:  # nothing kept: a stream group's run through later blocks is repeated by their own groups
        assert batches <= runs <= (2 if streams else 1) * batches, calls
    limit = 1 if not streams else 2
    assert max(calls.get(i, 0) for i in pruned) <= limit * batches + 1, calls
