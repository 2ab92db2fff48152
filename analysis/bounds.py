"""Theory constants of one group and the right-hand sides of the bounds in ``THEORY.md``.

Symbols (as in ``THEORY.md``; all losses are absolute, bound curves are divided by ``E``):

* ``D2  = max_ij |phi_i - phi_j|^2 = N^2 max_ij (G_ii + G_jj - 2 G_ij)``         (hull diameter^2)
* ``DT2 = max_i |phi_i - T|^2 = max_i (N^2 G_ii - 2 N b_i + E)``                (farthest vertex from T)
* ``L1  = min_i |phi_i - T|^2``              (first pick of ``uniform`` and ``reoptimized-simplex``)
* ``L1_free = E - max_j b_j^2 / G_jj``        (first pick of ``reoptimized``)
* ``Lstar = min_{a in simplex} |Phi a - T|^2`` (QP; bracket ``[Lstar_lower, Lstar]``, ``Lstar`` is
  the loss of the returned feasible ``a*`` so it is never below the true value)
* ``V(a) = sum_i a_i |phi_i - Phi a|^2 = N^2 (sum_i a_i G_ii - a'Ga)``; ``V_T = V(1/N) = N tr G - E``
  when ``T`` is the centroid, else ``V(a*)``; ``delta2 = |Phi a - T|^2`` for that same ``a`` (0 up to
  rounding in the centroid case)
* ``r`` interior margin, ``t_max`` largest min barycentric weight, ``mu2`` span covering,
  ``L_span = E - b'G^+b`` (best free least-squares loss).

Bounds (``n = 1, 2, ...``; method in brackets; see THEORY.md for statements and proofs):

* B1 ``herding_hull``     [uniform]: ``L_n <= (V_T + delta2)/n + sqrt(delta2 M) (n-1)/n`` with
  ``M = min(DT2, delta2 + V_T)``; ``= V_T / n`` (<= D2 / (2n)) when ``T = Phi a`` exactly. Valid for any
  ``T``; O(1/n) only for ``T in M``.
* B2 ``herding_general``  [uniform]: ``L_n <= L(Phi a*) + V(a*) H_n / n``; no assumption.
* B3 ``fcfw_sublinear``   [reoptimized-simplex]: ``L_n - Lstar <= h1 / (1 + (n-1) h1 / (4 D2))``,
  ``h1 = L1 - Lstar``; no assumption.
* B4 ``fcfw_linear``      [reoptimized-simplex]: ``L_n <= L1 (1 - r^2/DT2)^(n-1)``; needs ``T`` in the
  relative interior of ``M`` with margin ``r > 0``.
* B5 ``free_linear``      [reoptimized]: ``L_n - L_span <= (L1_free - L_span)(1 - mu2)^(n-1)``; no
  assumption (vacuous when ``mu2`` is tiny).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .geometry import embed, hull_projection, interior_depth, loss_of, span_covering
from .group import GroupStatistics

HULL_RTOL = 1e-8   # T counts as inside M when Lstar / E <= this
MARGIN_RTOL = 1e-9  # a margin r <= this * D_T is rounding: T is on the relative boundary


@dataclass
class BoundSpec:
    key: str
    method: str
    statement: str
    assumption: str


BOUNDS = {
    "herding_hull": BoundSpec("herding_hull", "uniform",
                              "L_n <= (V_T + d2)/n + sqrt(d2 M)(n-1)/n, d2 = dist(Phi a, T)^2, M = min(D_T^2, d2 + V_T);"
                              " = V_T/n <= D^2/(2n) when T = Phi a",
                              "T in the convex hull M (for the O(1/n) form; valid for any T)"),
    "herding_general": BoundSpec("herding_general", "uniform", "L_n <= L(Phi a*) + V(a*) H_n / n",
                                 "none"),
    "fcfw_sublinear": BoundSpec("fcfw_sublinear", "reoptimized-simplex",
                                "L_n - L* <= h1 / (1 + (n-1) h1 / (4 D^2)),  h1 = L_1 - L*", "none"),
    "fcfw_linear": BoundSpec("fcfw_linear", "reoptimized-simplex", "L_n <= L_1 (1 - r^2 / D_T^2)^(n-1)",
                             "T in the relative interior of M with margin r > 0"),
    "free_linear": BoundSpec("free_linear", "reoptimized",
                             "L_n - L_span <= (L_1,free - L_span)(1 - mu^2)^(n-1)", "none"),
}


@dataclass
class TheoryConstants:
    """Everything the bounds need, computed from ``(G, b, E)`` (absolute losses, not divided by E)."""

    name: str
    N: int
    energy: float
    rank: int
    affine_dim: int
    centroid_target: bool
    D2: float
    DT2: float
    L1: float
    L1_free: float
    Lstar: float
    Lstar_lower: float
    qp_solver: str
    a_star_support: int
    L_a_star: float
    V_a_star: float
    V_T: float
    V_T_source: str
    delta2: float
    in_hull: bool
    aff_dist2: float
    r: float
    r_method: str
    r_cert: float
    r_exact: float | None
    t_max: float
    mu2: float
    mu2_method: str
    mu2_eig: float
    L_span: float
    seconds: float = 0.0
    violations: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        keys = ("D2", "DT2", "L1", "L1_free", "Lstar", "Lstar_lower", "L_a_star", "V_a_star", "V_T", "delta2",
                "aff_dist2", "L_span")
        rel = {k: getattr(self, k) / self.energy for k in keys}
        out["relative_to_E"] = rel
        out["r2_over_DT2"] = self.r ** 2 / self.DT2 if self.DT2 > 0 else 0.0
        return out


def compute_constants(group: GroupStatistics, hull_rtol: float = HULL_RTOL,
                      cover_max_rank: int = 128) -> TheoryConstants:
    """All constants of ``THEORY.md`` for one group (cvxpy for the QP and the LPs)."""
    start = time.perf_counter()
    group = group.validated()
    gram, cross = group.gram.numpy(), group.cross.numpy()
    energy = float(group.energy)
    n = gram.shape[0]
    diag = np.diag(gram)
    d2 = float(n * n * np.max(diag[:, None] + diag[None, :] - 2 * gram))
    vertex_loss = n * n * diag - 2 * n * cross + energy
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = np.where(diag > 0, cross ** 2 / diag, 0.0)
    centroid = group.is_centroid_target()
    timings: dict[str, float] = {}
    tick = time.perf_counter()
    emb = embed(gram, cross, energy)
    proj = hull_projection(gram, cross, energy, emb, centroid)
    timings["qp"], tick = time.perf_counter() - tick, time.perf_counter()
    a_star = proj.weights
    v_a = float(n * n * (a_star @ diag - a_star @ gram @ a_star))
    if centroid:
        v_t, v_src = float(n * np.trace(gram) - energy), "centroid weights a = 1/N (exact)"
        delta2 = max(loss_of(gram, cross, energy, np.full(n, 1.0 / n)), 0.0)  # rounding only
    else:
        v_t, v_src = v_a, "QP weights a* (T is not the centroid)"
        delta2 = max(loss_of(gram, cross, energy, a_star), 0.0)
    depth = interior_depth(emb)
    timings["margin_lp"], tick = time.perf_counter() - tick, time.perf_counter()
    cover = span_covering(gram, max_rank=cover_max_rank)
    timings["mu2"] = time.perf_counter() - tick
    in_hull = proj.upper <= hull_rtol * energy
    margin = depth.r if in_hull and depth.r > MARGIN_RTOL * np.sqrt(vertex_loss.max()) else 0.0
    c = TheoryConstants(
        name=group.name, N=n, energy=energy, rank=emb.rank, affine_dim=depth.affine_dim, centroid_target=centroid,
        D2=max(d2, 0.0), DT2=float(max(vertex_loss.max(), 0.0)), L1=float(max(vertex_loss.min(), 0.0)),
        L1_free=float(max(energy - gains.max(), 0.0)), Lstar=proj.upper, Lstar_lower=proj.lower,
        qp_solver=proj.solver, a_star_support=int((a_star > 1e-9).sum()),
        L_a_star=loss_of(gram, cross, energy, a_star),
        V_a_star=max(v_a, 0.0), V_T=max(v_t, 0.0), V_T_source=v_src, delta2=delta2, in_hull=bool(in_hull),
        aff_dist2=depth.aff_dist2, r=margin, r_method=depth.method, r_cert=depth.r_cert,
        r_exact=depth.r_exact, t_max=depth.t_max, mu2=cover.mu2, mu2_method=cover.method, mu2_eig=cover.mu2_eig,
        L_span=emb.outside)
    c.violations = assumption_violations(c, hull_rtol)
    c.seconds = time.perf_counter() - start
    c.timings = {k: round(v, 3) for k, v in timings.items()}
    return c


def assumption_violations(c: TheoryConstants, hull_rtol: float = HULL_RTOL) -> dict[str, str]:
    """Bound key -> the violated assumption, stated with the number that shows it (absent: holds)."""
    out: dict[str, str] = {}
    e = c.energy
    if c.aff_dist2 > hull_rtol * e:
        where = (f"target outside the affine hull of the candidates (dist^2/E = {c.aff_dist2 / e:.3g}; "
                 f"of which outside their span {c.L_span / e:.3g})")
    elif not c.in_hull:
        where = f"target outside the convex hull (L*/E in [{c.Lstar_lower / e:.3g}, {c.Lstar / e:.3g}])"
    else:
        where = None
    if where:
        out["herding_hull"] = where
        out["fcfw_linear"] = where
    elif c.r <= 0:
        out["fcfw_linear"] = ("target on the relative boundary of the hull (margin r <= "
                              f"{MARGIN_RTOL:g} D_T: no representation with all weights > 0; t_max = {c.t_max:.3g})")
    return out


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


def bound_curves(c: TheoryConstants, n_max: int) -> dict[str, np.ndarray | None]:
    """Relative right-hand sides (divided by ``E``) for ``n = 1 .. n_max``; ``None`` if undefined."""
    n = np.arange(1, n_max + 1)
    e = c.energy
    out: dict[str, np.ndarray | None] = {}
    out["herding_hull"] = herding_hull(n, c.V_T, c.delta2, c.DT2) / e
    out["herding_hull_D2"] = herding_hull(n, c.D2 / 2, c.delta2, c.DT2) / e  # V(a) <= D^2/2 (Lemma 0)
    out["herding_general"] = (c.L_a_star + c.V_a_star * harmonic(n) / n) / e
    h1 = max(c.L1 - c.Lstar, 0.0)
    out["fcfw_sublinear"] = (c.Lstar + (h1 / (1 + (n - 1) * h1 / (4 * c.D2)) if c.D2 > 0 else 0 * n)) / e
    if "fcfw_linear" in c.violations or c.DT2 <= 0:
        out["fcfw_linear"] = None
    else:
        q = 1.0 - c.r ** 2 / c.DT2
        out["fcfw_linear"] = c.L1 * q ** (n - 1) / e
    out["free_linear"] = (c.L_span + (c.L1_free - c.L_span) * (1.0 - c.mu2) ** (n - 1)) / e
    return out
