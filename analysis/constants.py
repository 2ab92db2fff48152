"""Theory constants of one group, computed from ``(G, b, E)`` (symbols as in ``THEORY.md``; absolute losses).

* ``D2  = max_ij |phi_i - phi_j|^2 = N^2 max_ij (G_ii + G_jj - 2 G_ij)``         (hull diameter^2)
* ``DT2 = max_i |phi_i - T|^2 = max_i (N^2 G_ii - 2 N b_i + E)``                (farthest vertex from T)
* ``L1  = min_i |phi_i - T|^2``              (first pick of ``uniform`` and ``reoptimized-simplex``)
* ``L1_free = E - max_j b_j^2 / G_jj``        (first pick of ``reoptimized``)
* ``Lstar = min_{a in simplex} |Phi a - T|^2`` (certified bracket ``[Lstar_lower, Lstar]``; ``Lstar`` is
  the loss of the returned feasible ``a*``, so it is never below the true value; :mod:`analysis.hull`)
* ``V(a) = sum_i a_i |phi_i - Phi a|^2 = N^2 (sum_i a_i G_ii - a'Ga)``; ``V_T = V(1/N) = N tr G - 1'G1``
  when ``T`` is the centroid, else ``V(a*)``; ``delta2 = |Phi a - T|^2`` for that same ``a``
* ``aff_dist2 = dist(T, aff M)^2`` (closed form, no solver), ``r`` the margin of ``T``'s projection onto
  ``aff M``, ``t_max`` largest min barycentric weight, ``mu2`` span covering, ``L_span = E - b'G^+b``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .geometry import embed, interior_depth, span_covering
from .group import GroupStatistics
from .hull import hull_projection, loss_of

HULL_RTOL = 1e-8   # T counts as inside M when a feasible point of M is within Lstar / E <= this of it
MARGIN_RTOL = 1e-12  # a margin r <= this * D_T is rounding: T's projection is on the relative boundary


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
    lstar_source: str
    a_star_support: int
    L_a_star: float
    V_a_star: float
    V_T: float
    V_T_source: str
    delta2: float
    in_hull: bool
    hull_verdict: str
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
        out["relative_to_E"] = {k: getattr(self, k) / self.energy for k in keys}
        out["r2_over_DT2"] = self.r2_over_DT2
        return out

    @property
    def r2_over_DT2(self) -> float:
        """B4's rate constant ``r^2 / D_{T_A}^2`` (``D_{T_A}^2 = D_T^2 - dist(T, aff M)^2``, Pythagoras)."""
        dt2 = self.DT2 - self.aff_dist2
        return self.r ** 2 / dt2 if dt2 > 0 else 0.0


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
    depth = interior_depth(emb)
    timings["margin_lp"], tick = time.perf_counter() - tick, time.perf_counter()
    uniform = np.full(n, 1.0 / n)
    proj = hull_projection(gram, cross, energy, emb.coords, emb.target, emb.norms,
                           extra={"centroid 1/N": uniform, "margin LP": depth.weights})
    timings["qp"], tick = time.perf_counter() - tick, time.perf_counter()
    a_star = proj.weights
    v_a = float(n * n * (a_star @ diag - a_star @ gram @ a_star))
    if centroid:  # V(1/N) = N tr G - 1'G1 exactly; delta2 = |Phi 1/N - T|^2 carries what the test let through
        v_t, v_src = float(n * np.trace(gram) - gram.sum()), "centroid weights a = 1/N: N tr G - 1'G1"
        delta2 = max(loss_of(gram, cross, energy, uniform), 0.0)
    else:
        v_t, v_src = v_a, "QP weights a* (T is not the centroid)"
        delta2 = max(loss_of(gram, cross, energy, a_star), 0.0)
    cover = span_covering(gram, max_rank=cover_max_rank)
    timings["mu2"] = time.perf_counter() - tick
    in_hull = proj.upper <= hull_rtol * energy
    verdict = ("inside" if in_hull else "outside" if proj.lower > hull_rtol * energy else
               f"undecided (L*/E bracket straddles {hull_rtol:g})")
    dt_a2 = max(float(vertex_loss.max()) - depth.aff_dist2, 0.0)
    margin = depth.r if depth.r > MARGIN_RTOL * np.sqrt(dt_a2) else 0.0
    c = TheoryConstants(
        name=group.name, N=n, energy=energy, rank=emb.rank, affine_dim=depth.affine_dim, centroid_target=centroid,
        D2=max(d2, 0.0), DT2=float(max(vertex_loss.max(), 0.0)), L1=float(max(vertex_loss.min(), 0.0)),
        L1_free=float(max(energy - gains.max(), 0.0)), Lstar=proj.upper, Lstar_lower=proj.lower,
        qp_solver=proj.solver, lstar_source=proj.source, a_star_support=int((a_star > 1e-9).sum()),
        L_a_star=loss_of(gram, cross, energy, a_star), V_a_star=max(v_a, 0.0), V_T=max(v_t, 0.0), V_T_source=v_src,
        delta2=delta2, in_hull=bool(in_hull), hull_verdict=verdict, aff_dist2=depth.aff_dist2, r=margin,
        r_method=depth.method, r_cert=depth.r_cert, r_exact=depth.r_exact, t_max=depth.t_max, mu2=cover.mu2,
        mu2_method=cover.method, mu2_eig=cover.mu2_eig, L_span=emb.outside)
    c.violations = assumption_violations(c, hull_rtol)
    c.seconds = time.perf_counter() - start
    c.timings = {k: round(v, 3) for k, v in timings.items()}
    return c


def assumption_violations(c: TheoryConstants, hull_rtol: float = HULL_RTOL) -> dict[str, str]:
    """Bound key -> the violated assumption, stated with the number that shows it (absent: holds).

    Only B4 has an assumption its statement needs. B1's entry is informational: its O(1/n) regime needs
    ``T`` in ``M``, but the checked statement holds for every target (as do B2, B3, B5), so a failure of
    those is never put down to an assumption (``analysis.check``).
    """
    out: dict[str, str] = {}
    e = c.energy
    if not c.in_hull:
        out["herding_hull"] = (f"target not in the convex hull (L*/E in [{c.Lstar_lower / e:.3g}, {c.Lstar / e:.3g}]): "
                               "outside the O(1/n) regime; the checked bound holds for every target")
    where = f" (dist^2(T, aff M)/E = {c.aff_dist2 / e:.3g})" if c.aff_dist2 > hull_rtol * e else ""
    if c.r_exact is not None and c.r_exact < -MARGIN_RTOL * np.sqrt(max(c.DT2, 0.0)):
        out["fcfw_linear"] = (f"the target's projection onto the affine hull lies outside the convex hull{where}: "
                              f"exact margin {c.r_exact:.3g}")
    elif c.Lstar_lower - c.aff_dist2 > hull_rtol * e:  # for x in aff M: |x - T|^2 = |x - T_A|^2 + dist^2
        out["fcfw_linear"] = (f"the target's projection onto the affine hull lies outside the convex hull{where}: "
                              f"(L* - dist^2)/E >= {(c.Lstar_lower - c.aff_dist2) / e:.3g}")
    elif c.r <= 0:
        out["fcfw_linear"] = ("the target's projection onto the affine hull is on the relative boundary of the hull "
                              f"(margin r <= {MARGIN_RTOL:g} D_T: no representation with all weights > 0; "
                              f"t_max = {c.t_max:.3g}){where}")
    return out
