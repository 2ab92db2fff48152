"""Cost to reach an accuracy on the closed-form quadratic: error traces and "samples to eps".

Shared by ``experiments/bilevel_quadratic.py`` and the cost-ordering tests, so both count the same way.

A trace records, after every outer iteration of one seeded run, the oracle cost so far (samples,
first-order gradient calls, second-order products) and the relative squared error
``||x_t - x*||^2 / ||x*||^2``. Over several seeds, :func:`cost_to` is the cost at the first iteration
where the seed-mean error is at most ``eps^2`` and stays at most ``1.5 eps^2`` for the next 20% of
iterations (so a single lucky dip does not count).
"""

from __future__ import annotations

import torch

from .base import SolverOptions, make_solver
from .quadratic import QuadraticBilevel

Trace = list[dict[str, float]]


def error_trace(solver: str, options: SolverOptions, seed: int, budget: int,
                problem: QuadraticBilevel | None = None) -> Trace:
    """One run from ``x0 = y0 = 0`` until ``budget`` samples: cost and relative squared error per iteration."""
    problem = problem if problem is not None else QuadraticBilevel(seed=0)
    x_star, _ = problem.solution()
    zero = torch.zeros_like(x_star)
    scale = float(x_star.double().norm() ** 2)
    out: Trace = []

    def record(s) -> bool:
        out.append({**s.cost.as_dict(), "error": float((s.x[0] - x_star).double().norm() ** 2) / scale})
        return s.cost.samples >= budget

    make_solver(solver, problem, zero, zero, options, torch.Generator().manual_seed(seed)).run(10 ** 9, record)
    return out


def mean_errors(traces: list[Trace]) -> list[float]:
    """Seed-mean relative squared error per iteration (over the iterations every trace has)."""
    n = min(len(t) for t in traces)
    return [sum(t[i]["error"] for t in traces) / len(traces) for i in range(n)]


def cost_to(traces: list[Trace], eps: float) -> dict[str, float] | None:
    """Seed-mean cost (samples, gradients, products) when the mean error reaches eps^2 and stays (module doc)."""
    mean = mean_errors(traces)
    n = len(mean)
    for i in range(n):
        if mean[i] <= eps ** 2 and all(m <= 1.5 * eps ** 2 for m in mean[i:min(n, int(i * 1.2) + 2)]):
            return {k: sum(t[i][k] for t in traces) / len(traces) for k in ("samples", "gradients", "products")}
    return None


def samples_to(traces: list[Trace], eps: float) -> int | None:
    """Samples of :func:`cost_to` (None: not reached within the traces)."""
    cost = cost_to(traces, eps)
    return None if cost is None else int(round(cost["samples"]))
