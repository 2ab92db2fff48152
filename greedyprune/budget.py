"""Widths per channel group: a kept fraction, or a global FLOPs / parameter target.

Cost model: :mod:`greedyprune.costmodel` (exact, over traced groups: every Conv2d/Linear's FLOPs and
every parameter's size as a product of width ratios).

Allocation for a global target (``allocation="error"``): starting from full width, repeatedly remove
one step of channels (one per partition; one for most groups) from the group with the smallest
increase of relative reconstruction error per unit of cost saved,
``(e_g(w_g - s_g) - e_g(w_g)) / (cost(w) - cost(w - s_g 1_g))``, where ``e_g`` is the group's greedy
(``reoptimized``) error curve -- until the target is met. Every method then prunes to the same widths,
so comparisons are at matched cost. ``allocation="uniform"`` instead finds one kept fraction for all
groups (bisection) that meets the target. No group goes below one channel per partition.
"""

from __future__ import annotations

import numpy as np
import torch

from .costmodel import CostModel, cost_model
from .errors import UserError
from .graph.groups import ChannelGroup

__all__ = ["CostModel", "allocate_by_error", "allocate_uniform", "check_fraction", "cost_model", "keep_widths"]


def check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise UserError(f"--{name} must be a fraction in (0, 1], got {value}")


def keep_widths(groups: list[ChannelGroup], keep: float) -> list[int]:
    """Same kept fraction in every group (rounded to a multiple of its partition, at least one per partition)."""
    check_fraction("keep", keep)
    return [g.partition * max(1, int(round(keep * g.width / g.partition))) for g in groups]


def _unreachable(model_cost: CostModel, target: float, kind: str) -> UserError:
    """The one-line error for a target below what one channel per group costs (it says what is reachable)."""
    floor = model_cost.floor()
    return UserError(f"{kind} target {target} cannot be met without emptying a group: with every pruned group at "
                     f"one channel (per partition) the model keeps {floor:.3f} of its {kind}; the smallest reachable "
                     f"fraction is {floor:.3f}: raise the target above it (or prune more kinds of groups)")


def allocate_by_error(model_cost: CostModel, curves: list[torch.Tensor], target: float,
                      kind: str = "cost") -> list[int]:
    """Greedy removal by smallest error increase per cost saved until ``cost <= target * full cost``."""
    widths = model_cost.full_widths.astype(int).copy()
    steps = model_cost.steps.astype(int)
    goal = target * model_cost.cost(widths)
    errs = [np.concatenate([[1.0], c.detach().cpu().double().numpy()]) for c in curves]  # errs[g][n] after n picks
    while model_cost.cost(widths) > goal:
        saving = model_cost.saving_per_step(widths)
        rise = np.array([errs[g][w - s] - errs[g][w] if w < len(errs[g]) else (0.0 if w - s >= len(errs[g]) else
                         errs[g][w - s] - errs[g][-1]) for g, (w, s) in enumerate(zip(widths, steps))])
        rise = np.where(widths > steps, np.maximum(rise, 0.0), np.inf)
        ratio = np.where(saving > 0, rise / np.maximum(saving, 1e-300), np.inf)
        if not np.isfinite(ratio).any():
            raise _unreachable(model_cost, target, kind)
        g = int(np.argmin(ratio))
        widths[g] -= steps[g]
    return widths.tolist()


def allocate_uniform(model_cost: CostModel, target: float, kind: str = "cost") -> list[int]:
    """One kept fraction for all groups, the largest that meets the target (bisection)."""
    full, steps = model_cost.full_widths, model_cost.steps
    goal = target * model_cost.cost(full)
    widths_of = lambda f: (steps * np.maximum(1, np.round(f * full / steps))).astype(int)  # noqa: E731
    if model_cost.cost(widths_of(0.0)) > goal:
        raise _unreachable(model_cost, target, kind)
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if model_cost.cost(widths_of(mid)) <= goal else (lo, mid)
    return widths_of(lo).tolist()
