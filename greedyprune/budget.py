"""Widths per channel group: a kept fraction, or a global FLOPs / parameter target.

Cost model. Every Conv2d/Linear's FLOPs (measured once with ``torch.utils.flop_counter``) and every
parameter tensor's size scale with the width ratios ``w_g / N_g`` of the groups its input and output
channels belong to, so ``cost(w) = sum_m base_m * prod_{g in deps(m)} (w_g / N_g) + fixed`` exactly
(the product matters when a layer's input and output are both pruned, as in a Bottleneck's conv2).

Allocation for a global target (``allocation="error"``): starting from full width, repeatedly remove
one channel from the group with the smallest increase of relative reconstruction error per unit of
cost saved, ``(e_g(w_g - 1) - e_g(w_g)) / (cost(w) - cost(w - 1_g))``, where ``e_g`` is the group's
greedy (``reoptimized``) error curve -- until the target is met. Every method then prunes to the
same widths, so comparisons are at matched cost. ``allocation="uniform"`` instead finds one kept
fraction for all groups (bisection) that meets the target. No group is pruned below one channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .adapters.base import ChannelGroup
from .errors import UserError


def check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise UserError(f"--{name} must be a fraction in (0, 1], got {value}")


def keep_widths(groups: list[ChannelGroup], keep: float) -> list[int]:
    """Same kept fraction in every group (rounded, at least one channel)."""
    check_fraction("keep", keep)
    return [max(1, int(round(keep * g.width))) for g in groups]


@dataclass
class CostModel:
    """``cost(widths) = fixed + sum_m base[m] * r[dep_in[m]] * r[dep_out[m]]`` with ``r = w / N`` (r[-1] = 1)."""

    base: np.ndarray
    dep_in: np.ndarray
    dep_out: np.ndarray
    fixed: float
    full_widths: np.ndarray

    def cost(self, widths: np.ndarray) -> float:
        r = np.append(np.asarray(widths, dtype=float) / self.full_widths, 1.0)
        return float(self.fixed + (self.base * r[self.dep_in] * r[self.dep_out]).sum())

    def saving_per_channel(self, widths: np.ndarray) -> np.ndarray:
        """Exact cost saved by removing one channel from each group (vector over groups)."""
        return np.array([self.cost(widths) - self.cost(widths - np.eye(len(widths), dtype=int)[g])
                         for g in range(len(widths))])


def _dependencies(groups: list[ChannelGroup]) -> dict[int, list[int]]:
    """module id -> [group of its input channels, group of its output channels] (-1 = not pruned)."""
    deps: dict[int, list[int]] = {}
    for gi, g in enumerate(groups):
        deps.setdefault(id(g.consumer), [-1, -1])[0] = gi
        for s in g.slices:
            entry = deps.setdefault(id(s.module), [-1, -1])
            if s.kind == "in":
                entry[0] = gi
            elif s.kind in ("out", "bn"):
                entry[1] = gi
            else:  # depthwise: one ratio (input and output are the same channels)
                entry[1] = gi
    return deps


def cost_model(model: nn.Module, groups: list[ChannelGroup], example: torch.Tensor, kind: str) -> CostModel:
    """Build the exact cost model of ``kind`` ("flops" or "params") for ``model``'s groups."""
    deps = _dependencies(groups)
    names = {name: module for name, module in model.named_modules()}
    base, dep_in, dep_out, fixed = [], [], [], 0.0
    if kind == "flops":
        was = model.training
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example[:1])
        model.train(was)
        counts = counter.get_flop_counts()
        total = float(sum(counts["Global"].values()))
        root = type(model).__name__  # the counter names modules "<RootClass>.<path>"
        for name, module in names.items():
            key = f"{root}.{name}" if name else root
            if isinstance(module, (nn.Conv2d, nn.Linear)) and key in counts:
                flops = float(sum(counts[key].values()))
                d = deps.get(id(module), [-1, -1])
                base.append(flops)
                dep_in.append(d[0])
                dep_out.append(d[1])
                total -= flops
        fixed = total
    elif kind == "params":
        for module in model.modules():
            d = deps.get(id(module), [-1, -1])
            for pname, p in module.named_parameters(recurse=False):
                base.append(float(p.numel()))
                is_matrix = pname == "weight" and p.dim() > 1 and not isinstance(module, nn.modules.batchnorm._BatchNorm)
                dep_in.append(d[0] if is_matrix else -1)
                dep_out.append(d[1])
    else:
        raise ValueError(f"cost kind must be 'flops' or 'params', got {kind!r}")
    return CostModel(np.array(base), np.array(dep_in, dtype=int), np.array(dep_out, dtype=int), fixed,
                     np.array([g.width for g in groups], dtype=float))


def _unreachable(model_cost: CostModel, target: float) -> UserError:
    """The one-line error for a target below what one channel per group costs (it says what is reachable)."""
    floor = model_cost.cost(np.ones_like(model_cost.full_widths)) / model_cost.cost(model_cost.full_widths)
    return UserError(f"cost target {target} cannot be met without emptying a group: with every group at one channel "
                     f"the model keeps {floor:.3f} of it; raise the target above {floor:.3f}")


def allocate_by_error(model_cost: CostModel, curves: list[torch.Tensor], target: float) -> list[int]:
    """Greedy removal by smallest error increase per cost saved until ``cost <= target * full cost``."""
    widths = model_cost.full_widths.astype(int).copy()
    goal = target * model_cost.cost(widths)
    errs = [np.concatenate([[1.0], c.detach().cpu().double().numpy()]) for c in curves]  # errs[g][n] after n picks
    while model_cost.cost(widths) > goal:
        saving = model_cost.saving_per_channel(widths)
        rise = np.array([errs[g][w - 1] - errs[g][w] if w > 1 and w < len(errs[g]) else
                         (0.0 if w >= len(errs[g]) else np.inf) for g, w in enumerate(widths)])
        rise = np.where(widths > 1, np.maximum(rise, 0.0), np.inf)
        ratio = np.where(saving > 0, rise / np.maximum(saving, 1e-300), np.inf)
        if not np.isfinite(ratio).any():
            raise _unreachable(model_cost, target)
        widths[int(np.argmin(ratio))] -= 1
    return widths.tolist()


def allocate_uniform(model_cost: CostModel, target: float) -> list[int]:
    """One kept fraction for all groups, the largest that meets the target (bisection)."""
    full = model_cost.full_widths
    goal = target * model_cost.cost(full)
    widths_of = lambda f: np.maximum(1, np.round(f * full)).astype(int)  # noqa: E731
    if model_cost.cost(widths_of(0.0)) > goal:
        raise _unreachable(model_cost, target)
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if model_cost.cost(widths_of(mid)) <= goal else (lo, mid)
    return widths_of(lo).tolist()
