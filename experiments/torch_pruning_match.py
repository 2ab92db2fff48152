"""Torch-Pruning (``torch_pruning``, the ``bench`` extra) pruned to a given FLOPs fraction, for side-by-side benchmarks.

``MetaPruner`` with L1 magnitude importance (``MagnitudeImportance(p=1)``), ``uniform`` (the same ratio in
every coupled group; Torch-Pruning's default) or ``global`` (one threshold on normalised importance over
all groups), the classifier left alone. The pruning ratio is found by bisection so that the FLOPs,
counted by greedyprune's own counter (:func:`greedyprune.metrics.count_flops`), come within ``tolerance``
of the target fraction.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from greedyprune.metrics import count_flops

SCOPES = ("uniform", "global")


def available() -> bool:
    try:
        import torch_pruning  # noqa: F401
    except ImportError:
        return False
    return True


def _classifiers(model: nn.Module) -> list[nn.Module]:
    """The layers whose output is the logits (left unpruned): the last Linear, or the last conv if there is none."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    return [linears[-1] if linears else layers[-1]]


def tp_prune(model: nn.Module, example: torch.Tensor, ratio: float, scope: str, round_to: int = 1) -> nn.Module:
    """A pruned deep copy of ``model``: Torch-Pruning L1 magnitude at ``ratio``, ``uniform`` or ``global``
    (``round_to`` > 1: Torch-Pruning's own ``round_to``, kept channels multiples of it)."""
    import torch_pruning as tp
    net = copy.deepcopy(model).eval()
    pruner = tp.pruner.MetaPruner(net, example[:1], importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=ratio, global_pruning=scope == "global", max_pruning_ratio=0.95,
                                  ignored_layers=_classifiers(net), round_to=round_to if round_to > 1 else None)
    pruner.step()
    return net.eval()


def prune_to_flops(model: nn.Module, example: torch.Tensor, target: float, scope: str, tolerance: float = 0.003,
                   steps: int = 16, round_to: int = 1) -> tuple[nn.Module | None, dict]:
    """Torch-Pruning ``scope`` pruning whose FLOPs fraction is closest to ``target`` (bisection on the ratio).

    Returns ``(model, info)``; ``model`` is None when even the largest ratio keeps more than ``target``
    (``info["floor"]`` says what it reached), when no ratio lands within 2 points of ``target`` (``round_to``
    steps too coarse; ``info["reason"]`` says which), or Torch-Pruning fails (``info["error"]``).
    """
    dense = count_flops(model, example)
    lo, hi, best, best_gap, tried = 0.0, 0.95, None, float("inf"), []
    try:
        for _ in range(steps):
            ratio = (lo + hi) / 2
            net = tp_prune(model, example, ratio, scope, round_to)
            fraction = count_flops(net, example) / dense
            tried.append((ratio, fraction))
            if abs(fraction - target) < best_gap:
                best, best_gap = (net, ratio, fraction), abs(fraction - target)
            if best_gap <= tolerance:
                break
            lo, hi = (ratio, hi) if fraction > target else (lo, ratio)
    except Exception as err:  # Torch-Pruning's own failure on this model: a row, not a crash
        return None, {"scope": scope, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:160]}",
                      "tried": tried}
    net, ratio, fraction = best
    if best_gap > max(tolerance, 0.02):
        floor = min(f for _, f in tried)
        reason = (f"floor {floor:.1%} above target" if floor > target else
                  f"no ratio within 2 points of {target:.1%} (closest {fraction:.1%}: its steps are too coarse)")
        return None, {"scope": scope, "floor": floor, "closest": fraction, "reason": reason, "tried": tried}
    return net, {"scope": scope, "ratio": ratio, "flops_fraction": fraction, "round_to": round_to, "tried": tried}
