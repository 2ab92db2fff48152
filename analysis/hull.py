"""``L* = min_{a in simplex} ||Phi a - T||^2`` with a certified bracket, whatever the candidates' scales.

* :func:`hull_projection` solves the QP with cvxpy in rescaled weights ``v_i = a_i ||phi_i||`` (unit
  columns: a candidate 1e6 times louder than the others does not swamp the solver), polishes the answer
  with an exact equality-constrained solve on its support (:func:`polish`), also tries any weights the
  caller already has (the centroid ``1/N``, the margin LP's representation), and keeps the best.
* The bracket is certified from the statistics alone: the upper end ``L(Phi a)`` is the loss of a
  feasible point evaluated exactly from ``(G, b, E)`` (:func:`loss_of`), the lower end subtracts the
  Frank-Wolfe gap (:func:`fw_gap`; ``L(x) - L* <= gap(x)`` by convexity). No solver's own objective value
  is used for anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from .solvers import solve as _solve


def loss_of(gram: np.ndarray, cross: np.ndarray, energy: float, a: np.ndarray) -> float:
    """``L(Phi a) = E - 2 N b.a + N^2 a.G.a`` exactly from the statistics."""
    n = gram.shape[0]
    return float(energy - 2 * n * cross @ a + n * n * a @ gram @ a)


def fw_gap(gram: np.ndarray, cross: np.ndarray, a: np.ndarray) -> float:
    """``max_i <grad L(x), x - phi_i>`` at ``x = Phi a`` (>= L(x) - L* for a in the simplex)."""
    n = gram.shape[0]
    ga = gram @ a
    inner_x = n * n * a @ ga - n * cross @ a            # <x - T, x>
    inner_phi = n * n * ga - n * cross                   # <x - T, phi_i>
    return float(max(2 * np.max(inner_x - inner_phi), 0.0))


@dataclass
class HullProjection:
    weights: np.ndarray  # a* in the simplex
    upper: float         # L(Phi a*) >= L*  (loss of a feasible point, from the statistics)
    lower: float         # L(Phi a*) - gap(a*) <= L*
    solver: str
    source: str          # which candidate weights won ("qp", "qp+polish", "centroid", "margin LP")


def polish(coords: np.ndarray, target: np.ndarray, norms: np.ndarray, a: np.ndarray,
           rtol: float = 1e-9, rounds: int = 5) -> np.ndarray | None:
    """Exact minimiser of ``||coords a - target||`` over ``{sum a = 1}`` on the support of ``a``; None if it
    leaves the simplex (after dropping the candidates that go negative, ``rounds`` times at most).

    In ``v = norms * a`` the columns are unit vectors and the constraint is ``u.v = 1`` with ``u = 1/norms``;
    ``v = u/|u|^2 + Z y`` (``Z`` an orthonormal basis of ``u``'s complement) turns it into an unconstrained
    least-squares problem in ``y``, solved by SVD. Support: ``v_i > rtol max v`` (scale-free).
    """
    scale = np.where(norms > 0, norms, 1.0)
    v = a * scale
    support = np.nonzero(v > rtol * v.max())[0]
    for _ in range(rounds):
        cols = coords[:, support] / scale[support]
        u = 1.0 / scale[support]
        base = u / (u @ u)
        q, _ = np.linalg.qr(np.column_stack([u, np.eye(len(u))[:, :-1]]))
        null = q[:, 1:]
        y = np.linalg.lstsq(cols @ null, target - cols @ base, rcond=None)[0] if null.shape[1] else np.zeros(0)
        v_sup = base + null @ y
        if v_sup.min() >= -rtol * v_sup.max():
            out = np.zeros_like(a)
            out[support] = np.clip(v_sup, 0, None) / scale[support]
            return out / out.sum()
        support = support[v_sup > 0]
    return None


def hull_projection(gram: np.ndarray, cross: np.ndarray, energy: float, coords: np.ndarray, target: np.ndarray,
                    norms: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> HullProjection:
    """``L*`` over the hull of ``phi_i`` (columns of ``coords``, in-span target ``target``), certified bracket.

    ``norms`` are ``||phi_i||``; ``extra`` maps a name to more weights in the simplex to try (e.g. the
    centroid ``1/N``). The QP is scaled by ``1/sqrt(E)`` and solved in ``v_i = a_i ||phi_i||``.
    """
    n = gram.shape[0]
    scale = np.where(norms > 0, norms, 1.0)
    unit = coords / scale[None, :] / np.sqrt(energy)
    v = cp.Variable(n, nonneg=True)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(unit @ v - target / np.sqrt(energy))), [(1.0 / scale) @ v == 1])
    solver = _solve(problem, ("CLARABEL", "OSQP", "SCS"))
    candidates: dict[str, np.ndarray] = {}
    if v.value is not None and np.isfinite(v.value).all() and np.max(v.value) > 0:
        a = np.clip(np.asarray(v.value, dtype=np.float64), 0, None) / scale
        candidates["qp"] = a / a.sum()
        polished = polish(coords, target, norms, candidates["qp"])
        if polished is not None:
            candidates["qp+polish"] = polished
    for name, w in (extra or {}).items():
        if w is not None and np.all(w >= 0) and w.sum() > 0:
            candidates[name] = w / w.sum()
    if not candidates:  # every solver failed: the best vertex is still a feasible point
        candidates["best vertex"] = np.eye(n)[int(np.argmin(n * n * np.diag(gram) - 2 * n * cross))]
    losses = {k: loss_of(gram, cross, energy, w) for k, w in candidates.items()}
    best = min(losses, key=losses.get)
    upper = max(losses[best], 0.0)
    return HullProjection(candidates[best], upper, max(upper - fw_gap(gram, cross, candidates[best]), 0.0), solver,
                          best)
