"""Widths per channel group: a kept fraction, or a global FLOPs / parameter / latency target.

Cost model: :mod:`greedyprune.costmodel` (exact, over traced groups: every Conv2d/Linear's FLOPs and
every parameter's size as a product of width ratios).

Allocation for a global target (``allocation="error"``): starting from full width, repeatedly remove
one step of channels (one granule: the lcm of its partition count and ``round_to``, 1 for most groups
without ``round_to``; from a full width that is no multiple of it, down to the largest multiple) from
the group with the smallest
increase of relative reconstruction error per unit of cost saved,
``(e_g(w_g - s_g) - e_g(w_g)) / (cost(w) - cost(w - s_g 1_g))``, where ``e_g`` is the group's greedy
(``reoptimized``) error curve -- until the target is met. Every method then prunes to the same widths,
so comparisons are at matched cost. ``allocation="latency"`` ranks the steps by the *measured latency* they
save (:mod:`greedyprune.latency`) while the target stays a FLOPs / parameter one -- and, where that is
slower by the latency model than one kept fraction everywhere, trades error for latency
(:mod:`greedyprune.latency_allocation`, ``min sum_g e_g + weight * latency`` at the target); a ``latency=`` target
ranks and stops by the latency model. ``allocation="uniform"`` instead finds one kept fraction for all
groups (bisection) that meets the target. No group goes below one granule (one channel per partition).

``round_to`` (as Torch-Pruning's ``round_to``): every kept width a multiple of it, or the full width.
oneDNN's CPU convolutions compute channels in blocks (16 with AVX-512), so a 3x3 conv with 65 channels
costs about what one with 80 does (experiments/bench_conv_widths.py, docs/budget.md); rounding spends
the FLOPs on whole blocks.
"""

from __future__ import annotations

import numpy as np
import torch

from .costmodel import CostModel, cost_model, granularity
from .errors import UserError
from .graph.groups import ChannelGroup

# how a global target is split over groups (PruneOptions.allocation; see the module docstring)
ALLOCATIONS = ("error", "latency", "uniform")

__all__ = ["ALLOCATIONS", "CostModel", "allocate_by_error", "allocate_uniform", "check_fraction", "check_round_to", "cost_model",
           "error_rises", "errors_after_picks", "unreachable_target",
           "keep_widths"]


def check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise UserError(f"--{name} must be a fraction in (0, 1], got {value}")


def check_round_to(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"round_to must be a whole number of channels >= 1 (1: any width; 8 or 16 suit CPU "
                        f"convolutions), got {value!r}")


def _rounded(fraction: float, full: int, step: int) -> int:
    """``fraction * full`` to the nearest multiple of ``step`` (at least one), capped at ``full``."""
    return min(full, step * max(1, int(round(fraction * full / step))))


def keep_widths(groups: list[ChannelGroup], keep: float, round_to: int = 1) -> list[int]:
    """Same kept fraction in every group, rounded to a multiple of its granularity (at least one), capped at full."""
    check_fraction("keep", keep)
    return [_rounded(keep, g.width, granularity(g, round_to)) for g in groups]


def unreachable_target(model_cost: CostModel, target: float, kind: str) -> UserError:
    """The one-line error for a target below what one channel per group costs (it says what is reachable)."""
    floor = model_cost.floor()
    granule = f"{model_cost.round_to} channels (round_to)" if model_cost.round_to > 1 else "one channel (per partition)"
    return UserError(f"{kind} target {target} cannot be met without emptying a group: with every pruned group at "
                     f"{granule} the model keeps {floor:.3f} of its {kind}; the smallest reachable "
                     f"fraction is {floor:.3f}: raise the target above it (or prune more kinds of groups)")


def error_rises(errs: list[np.ndarray], model_cost: CostModel, widths: np.ndarray) -> np.ndarray:
    """Each group's error rise for its next step (``inf`` where it cannot shrink); ``errs[g][n]`` after n picks."""
    steps = model_cost.step_at(widths)
    rise = np.array([errs[g][w - s] - errs[g][w] if w < len(errs[g]) else (0.0 if w - s >= len(errs[g]) else
                     errs[g][w - s] - errs[g][-1]) for g, (w, s) in enumerate(zip(widths, steps))])
    return np.where(model_cost.can_shrink(widths), np.maximum(rise, 0.0), np.inf)


def errors_after_picks(curves: list[torch.Tensor]) -> list[np.ndarray]:
    """Each group's relative error as an array indexed by channels kept: ``[n]`` after ``n`` picks (``[0] = 1``)."""
    return [np.concatenate([[1.0], c.detach().cpu().double().numpy()]) for c in curves]


def allocate_by_error(model_cost: CostModel, curves: list[torch.Tensor], target: float,
                      kind: str = "cost", rank: CostModel | None = None) -> list[int]:
    """Greedy removal by smallest error increase per cost saved until ``cost <= target * full cost``.

    ``rank``: another cost model over the same groups (e.g. the latency model) whose saving ranks the steps
    instead of ``model_cost``'s; the target is still ``model_cost``'s (e.g. FLOPs).
    """
    rank = rank or model_cost
    widths = model_cost.full_widths.astype(int).copy()
    goal = target * model_cost.cost(widths)
    errs = errors_after_picks(curves)
    while model_cost.cost(widths) > goal:
        saving = rank.saving_per_step(widths)
        ratio = np.where(saving > 0, error_rises(errs, model_cost, widths) / np.maximum(saving, 1e-300), np.inf)
        if not np.isfinite(ratio).any():
            raise unreachable_target(model_cost, target, kind)
        g = int(np.argmin(ratio))
        widths[g] -= model_cost.step_at(widths)[g]
    return widths.tolist()


def allocate_uniform(model_cost: CostModel, target: float, kind: str = "cost") -> list[int]:
    """One kept fraction for all groups, the largest that meets the target (bisection)."""
    full, steps = model_cost.full_widths.astype(int), model_cost.steps.astype(int)
    goal = target * model_cost.cost(full)
    widths_of = lambda f: np.array([_rounded(f, w, s) for w, s in zip(full, steps)])  # noqa: E731
    if model_cost.cost(widths_of(0.0)) > goal:
        raise unreachable_target(model_cost, target, kind)
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if model_cost.cost(widths_of(mid)) <= goal else (lo, mid)
    return widths_of(lo).tolist()
