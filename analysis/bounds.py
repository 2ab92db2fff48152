"""The bounds of ``THEORY.md``: statements, and their right-hand sides from a group's :class:`TheoryConstants`.

Bounds (``n = 1, 2, ...``; method in brackets; symbols in :mod:`analysis.constants`):

* B1 ``herding_hull``     [uniform]: ``L_n <= (V_T + delta2)/n + sqrt(delta2 M) (n-1)/n`` with
  ``M = min(DT2, delta2 + V_T)``; ``= V_T / n`` (<= D2 / (2n)) when ``T = Phi a`` exactly. Valid for any
  ``T``; O(1/n) only for ``T in M``.
* B2 ``herding_general``  [uniform]: ``L_n <= L(Phi a*) + V(a*) H_n / n``; no assumption.
* B3 ``fcfw_sublinear``   [reoptimized-simplex]: ``L_n - Lstar <= h1 / (1 + (n-1) h1 / (4 D2))``,
  ``h1 = L1 - Lstar``; no assumption.
* B4 ``fcfw_linear``      [reoptimized-simplex]: ``L_n - d2 <= (L1 - d2)(1 - r^2/(DT2 - d2))^(n-1)`` with
  ``d2 = dist(T, aff M)^2``; needs ``T``'s projection onto ``aff M`` in the relative interior of ``M``
  with margin ``r > 0`` (for ``T in aff M``: ``L_n <= L1 (1 - r^2/DT2)^(n-1)``).
* B5 ``free_linear``      [reoptimized]: ``L_n - L_span <= (L1_free - L_span)(1 - mu2)^(n-1)``; no
  assumption (vacuous when ``mu2`` is tiny).

Each bound has one *rate constant* (``RATE_CONSTANT``); :func:`bound_curve` with ``optimism = k`` returns
the bound with that constant made ``k`` times more optimistic -- what ``analysis.check`` uses to say how
wrong a constant could be and still pass (``THEORY.md`` section 8a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import TheoryConstants


@dataclass
class BoundSpec:
    key: str
    method: str
    statement: str
    assumption: str
    every_target: bool  # the checked statement holds for every target: a FAIL is never an assumption's fault


BOUNDS = {
    "herding_hull": BoundSpec("herding_hull", "uniform",
                              "L_n <= (V_T + d2)/n + sqrt(d2 M)(n-1)/n, d2 = dist(Phi a, T)^2, M = min(D_T^2, d2 + V_T);"
                              " = V_T/n <= D^2/(2n) when T = Phi a",
                              "none (O(1/n) only when T is in the convex hull M)", True),
    "herding_general": BoundSpec("herding_general", "uniform", "L_n <= L(Phi a*) + V(a*) H_n / n", "none", True),
    "fcfw_sublinear": BoundSpec("fcfw_sublinear", "reoptimized-simplex",
                                "L_n - L* <= h1 / (1 + (n-1) h1 / (4 D^2)),  h1 = L_1 - L*", "none", True),
    "fcfw_linear": BoundSpec("fcfw_linear", "reoptimized-simplex",
                             "L_n - d_A^2 <= (L_1 - d_A^2)(1 - r^2 / (D_T^2 - d_A^2))^(n-1), d_A = dist(T, aff M)",
                             "the projection of T onto aff M is in the relative interior of M, margin r > 0", False),
    "free_linear": BoundSpec("free_linear", "reoptimized",
                             "L_n - L_span <= (L_1,free - L_span)(1 - mu^2)^(n-1)", "none", True),
}

# the constant that sets each bound's rate, and which way is "more optimistic" (section 8a of THEORY.md)
RATE_CONSTANT = {"herding_hull": "V_T (divided by k)", "herding_hull_D2": "D^2/2 (divided by k)",
                 "herding_general": "V(a*) (divided by k)", "fcfw_sublinear": "1/D^2 (times k)",
                 "fcfw_linear": "r^2/D_T^2 (times k)", "free_linear": "mu^2 (times k)"}


def harmonic(n: np.ndarray) -> np.ndarray:
    return np.cumsum(1.0 / np.arange(1, int(n.max()) + 1))[n - 1]


def herding_hull(n: np.ndarray, variance: float, delta2: float, dt2: float) -> np.ndarray:
    """B1's absolute right-hand side ``(V + d2)/n + sqrt(d2 M)(n-1)/n``, ``M = min(D_T^2, d2 + V)``.

    ``V = V(a)``, ``d2 = |Phi a - T|^2`` for one ``a`` in the simplex (THEORY.md §3). ``M`` bounds every
    ``L_k``: ``f_k`` lies in the hull (``L_k <= D_T^2``) and B2 with ``H_k/k <= 1`` (``L_k <= d2 + V``).
    With ``d2 = 0`` (``T = Phi a``) this is ``V/n``.
    """
    n = np.asarray(n, dtype=np.float64)
    big = min(dt2, delta2 + variance)
    return (variance + delta2) / n + np.sqrt(max(delta2, 0.0) * max(big, 0.0)) * (n - 1) / n


def bound_curve(c: TheoryConstants, key: str, n: np.ndarray, optimism: float = 1.0) -> np.ndarray | None:
    """Relative right-hand side (divided by ``E``) of bound ``key`` at ``n``; ``None`` if undefined.

    ``optimism = k > 1`` makes the bound's rate constant ``k`` times more optimistic (``RATE_CONSTANT``):
    a deliberately wrong bound, for the check's resolution. Every bound is non-increasing in ``k``.
    """
    n = np.asarray(n)
    e, k = c.energy, float(optimism)
    if key == "herding_hull":
        return herding_hull(n, c.V_T / k, c.delta2, c.DT2) / e
    if key == "herding_hull_D2":  # V(a) <= D^2/2 (Lemma 0)
        return herding_hull(n, c.D2 / 2 / k, c.delta2, c.DT2) / e
    if key == "herding_general":
        return (c.L_a_star + c.V_a_star / k * harmonic(n) / n) / e
    if key == "fcfw_sublinear":
        h1 = max(c.L1 - c.Lstar, 0.0)
        return (c.Lstar + (h1 / (1 + k * (n - 1) * h1 / (4 * c.D2)) if c.D2 > 0 else 0 * n)) / e
    if key == "fcfw_linear":
        if "fcfw_linear" in c.violations or c.DT2 - c.aff_dist2 <= 0:
            return None
        d2 = c.aff_dist2
        q = min(max(1.0 - k * c.r2_over_DT2, 0.0), 1.0)
        return (d2 + max(c.L1 - d2, 0.0) * q ** (n - 1)) / e
    if key == "free_linear":
        q = min(max(1.0 - k * c.mu2, 0.0), 1.0)
        return (c.L_span + (c.L1_free - c.L_span) * q ** (n - 1)) / e
    raise KeyError(key)


def bound_curves(c: TheoryConstants, n_max: int) -> dict[str, np.ndarray | None]:
    """Relative right-hand sides (divided by ``E``) for ``n = 1 .. n_max``; ``None`` if undefined."""
    n = np.arange(1, n_max + 1)
    return {key: bound_curve(c, key, n) for key in ("herding_hull", "herding_hull_D2", "herding_general",
                                                     "fcfw_sublinear", "fcfw_linear", "free_linear")}
