"""``allocation="latency"`` for a FLOPs / parameter target: widths ranked by the modelled latency they save, no
slower than the uniform allocation, and refilled up to the target (docs/budget.md, "Latency budgets").

The latency model (:mod:`greedyprune.latency`) ranks the steps; the target stays the FLOPs / parameter one
(``model_cost``). Error curves ``e_g`` are the groups' relative reconstruction errors (``curves[g][n - 1]``
with ``n`` channels kept), as in :func:`greedyprune.budget.allocate_by_error`.
"""

from __future__ import annotations

import numpy as np
import torch

from .budget import allocate_by_error, allocate_uniform, error_rises, errors_after_picks, unreachable_target
from .costmodel import CostModel

__all__ = ["allocate_for_latency", "allocate_traded", "refill"]


def _error_at(errs: np.ndarray, kept: int) -> float:
    """A group's relative error with ``kept`` channels (a curve that stopped early: its last value beyond it)."""
    return float(errs[min(kept, len(errs) - 1)])


def allocate_traded(model_cost: CostModel, curves: list[torch.Tensor], target: float, latency: CostModel,
                    weight: float, kind: str = "cost") -> list[int]:
    """Greedy removal for ``min sum_g e_g(w_g) + weight * latency(w) / latency(full)`` s.t. ``cost <= target``.

    Each step is ranked by its change of that objective per fraction of the (target's) cost it saves,
    ``(rise_g - weight * dlatency_g / latency(full)) / (dcost_g / cost(full))``, smallest first: a step whose
    latency saving outweighs its error rise comes first, cheapest in cost first. ``weight = 0`` is
    :func:`allocate_by_error`; a larger weight keeps the FLOPs in the layers that are fast per FLOP.
    """
    widths = model_cost.full_widths.astype(int).copy()
    full_cost, full_latency = model_cost.cost(widths), latency.cost(widths)
    goal = target * full_cost
    errs = errors_after_picks(curves)
    while model_cost.cost(widths) > goal:
        saving = model_cost.saving_per_step(widths) / full_cost
        change = error_rises(errs, model_cost, widths) - weight * latency.saving_per_step(widths) / full_latency
        score = np.where(saving > 0, change / np.maximum(saving, 1e-300), np.inf)
        if not np.isfinite(score).any():
            raise unreachable_target(model_cost, target, kind)
        g = int(np.argmin(score))
        widths[g] -= model_cost.step_at(widths)[g]
    return widths.tolist()


def allocate_for_latency(model_cost: CostModel, curves: list[torch.Tensor], target: float, latency: CostModel,
                         kind: str = "cost", cap_at_uniform: bool = True,
                         bisections: int = 10) -> tuple[list[int], float | None]:
    """``allocation="latency"`` for a FLOPs / parameter target: ``(widths, weight)`` (None: the uniform widths).

    First the steps ranked by error rise per second of modelled latency saved (:func:`allocate_by_error`
    with ``rank=latency``; ``weight`` 0). With ``cap_at_uniform``, if that is slower by the latency model than
    the uniform allocation at the same target (one kept fraction, :func:`allocate_uniform`) -- the error
    keeps a slow, FLOPs-light layer wide, e.g. a stem feeding a max-pool --, it is replaced by the widths
    of least total error among those no slower than uniform: :func:`allocate_traded` at the weights a
    bisection for the smallest such weight tries (doubling from 1, then ``bisections`` halvings; the
    slowdown is not monotone in the weight, so every trial counts), and the uniform widths themselves.
    Last, :func:`refill` (within the cap where it applies).
    """
    widths = allocate_by_error(model_cost, curves, target, kind, rank=latency)
    if not cap_at_uniform:
        return refill(model_cost, curves, target, latency, widths), 0.0
    uniform = allocate_uniform(model_cost, target, kind)
    cap = latency.cost(np.array(uniform))
    if latency.cost(np.array(widths)) <= cap:
        return refill(model_cost, curves, target, latency, widths, cap), 0.0
    errs = errors_after_picks(curves)
    error = lambda w: sum(_error_at(e, n) for e, n in zip(errs, w))  # noqa: E731 -- total relative error
    best: tuple[float, list[int], float | None] = (error(uniform), uniform, None)  # no slower than uniform: itself

    def tried(weight: float) -> bool:
        nonlocal best
        trial = allocate_traded(model_cost, curves, target, latency, weight, kind)
        if latency.cost(np.array(trial)) > cap:
            return False
        best = min(best, (error(trial), trial, weight), key=lambda b: b[0])
        return True

    lo, hi = 0.0, 1.0
    while not tried(hi):
        if hi >= 2.0 ** 20:
            break
        lo, hi = hi, hi * 2
    for _ in range(bisections):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if tried(mid) else (mid, hi)
    return refill(model_cost, curves, target, latency, best[1], cap), best[2]


def refill(model_cost: CostModel, curves: list[torch.Tensor], target: float, latency: CostModel,
           widths: list[int], cap: float | None = None) -> list[int]:
    """``widths`` with whole steps added back while ``cost <= target * full cost`` (and ``latency <= cap``) hold.

    Removal stops at the first step that meets the target, which with coarse steps (16-channel blocks) can
    leave it well below (ResNet-18 at 28x28: 45.5 % of the FLOPs for a 50 % target). Each round adds one step
    (up to the next multiple of the group's granularity, or its full width) to the group whose step lowers
    the error most per second of modelled latency it adds, among those that still fit; until none fits.
    """
    errs = errors_after_picks(curves)
    w = np.asarray(widths, dtype=int).copy()
    full, steps = model_cost.full_widths.astype(int), model_cost.steps.astype(int)
    goal = target * model_cost.cost(full)
    while True:
        best, best_score = None, -np.inf
        here = latency.cost(w)
        for g in np.flatnonzero(w < full):
            up = w.copy()
            up[g] = min(full[g], (w[g] // steps[g] + 1) * steps[g])
            added = latency.cost(up) - here
            if model_cost.cost(up) > goal or (cap is not None and here + added > cap):
                continue
            drop = _error_at(errs[g], w[g]) - _error_at(errs[g], up[g])
            score = drop / max(added, 1e-300)
            if score > best_score:
                best, best_score = up, score
        if best is None:
            return w.tolist()
        w = best
