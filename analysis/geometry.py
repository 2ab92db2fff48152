"""Convex geometry of one group from its Gram matrix: embedding, interior depth (LP), span covering.

Notation (matches ``THEORY.md``): ``phi_i = N c_i``, ``M = conv{phi_i}``, ``A`` = direction space of
the affine hull ``aff M`` (spanned by ``phi_i - phibar``, ``phibar`` the centroid), ``m = dim A``.

* :func:`embed` turns ``(G, b, E)`` into explicit coordinates. Every rank decision is made on the
  correlation matrix ``Ghat = D^-1/2 G D^-1/2`` (``D = diag G``), i.e. on the unit vectors
  ``chat_i = c_i / ||c_i||``, so it does not depend on how loud each candidate is: ``Ghat = W diag(lam) W'``
  (eigenvalues below ``rtol * lam_max`` dropped) gives orthonormal coordinates ``diag(sqrt lam) W'`` of
  the ``chat_i``, hence of ``phi_i = N ||c_i|| chat_i``; the target's in-span part is
  ``t = diag(lam^-1/2) W' D^-1/2 b`` and its out-of-span energy ``E_perp = E - ||t||^2 >= 0``.
* :func:`interior_depth`: distance of ``T`` to ``aff M``, certified margin ``r`` of its projection
  (``T_A + r-ball of A`` inside ``M``) from an LP, exact when ``M`` is a simplex; exact by facet
  enumeration (qhull) when ``m <= 6``; plus ``t_max``.
* :func:`span_covering`: ``mu^2`` for the free (least-squares) greedy rate, by eigenvalue and dual
  certificates.

``L*`` (the QP over the hull) is in :mod:`analysis.hull`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import torch

from .solvers import solve as _solve

RTOL = 1e-10


@dataclass
class Embedding:
    coords: np.ndarray   # (r, N) coordinates of phi_i = N c_i in an orthonormal basis of span{c}
    target: np.ndarray   # (r,) in-span part of T
    outside: float       # ||T - P_span T||^2
    rank: int
    norms: np.ndarray    # (N,) ||phi_i|| (0 for zero candidates)


def embed(gram: np.ndarray, cross: np.ndarray, energy: float, rtol: float = RTOL) -> Embedding:
    """Coordinates of ``phi_i`` and of ``T``'s in-span part; numerical rank decided on the correlation matrix."""
    n = gram.shape[0]
    diag = np.clip(np.diag(gram), 0.0, None)
    nz = diag > 0
    root = np.sqrt(diag[nz])
    if not nz.any():
        return Embedding(np.zeros((0, n)), np.zeros(0), max(float(energy), 0.0), 0, np.zeros(n))
    lam, w = np.linalg.eigh(gram[np.ix_(nz, nz)] / (root[:, None] * root[None, :]))
    keep = lam > rtol * max(float(lam.max()), 1e-300)
    sq = np.sqrt(lam[keep])
    coords = np.zeros((int(keep.sum()), n))
    coords[:, nz] = n * (sq[:, None] * w[:, keep].T) * root[None, :]
    target = (w[:, keep].T @ (cross[nz] / root)) / sq
    norms = np.zeros(n)
    norms[nz] = n * root
    return Embedding(coords, target, max(float(energy - target @ target), 0.0), int(keep.sum()), norms)


def affine_rank(coords: np.ndarray, rtol: float = RTOL) -> int:
    """``m = dim aff{phi_i}`` from the span rank ``r`` (rows of ``coords``): ``m = r - 1`` when the points lie
    on an affine hyperplane of the span that misses the origin (``l'phi_i = 1`` for all ``i``), else ``m = r``.

    Decided by least squares: the points are on such a hyperplane when the best ``l`` leaves a largest
    relative residual ``max_i |l'phi_i - 1| <= sqrt(rtol)`` -- the level of the singular values the span
    rank already dropped (eigenvalues below ``rtol``). Each equation is dimensionless, so a candidate far
    louder than the others neither dominates the fit nor hides a direction.
    """
    r = coords.shape[0]
    if r == 0:
        return 0
    ell = np.linalg.lstsq(coords.T, np.ones(coords.shape[1]), rcond=None)[0]
    return r - 1 if float(np.max(np.abs(coords.T @ ell - 1.0))) <= math.sqrt(rtol) else r


@dataclass
class InteriorDepth:
    affine_dim: int
    aff_dist2: float        # squared distance of T to aff M (incl. the out-of-span part)
    r_cert: float           # certified margin (LP), 0 if not certified
    r_exact: float | None   # exact signed margin by facets (m <= 6), negative if T is outside
    t_max: float            # largest min barycentric weight of a representation of T (0 if none)
    weights: np.ndarray | None  # the LP's representation of T (the certificate)

    @property
    def r(self) -> float:
        return max(self.r_exact, 0.0) if self.r_exact is not None else self.r_cert

    simplex: bool = False   # the distinct candidates are affinely independent: the LP certificate is exact

    @property
    def method(self) -> str:
        if self.r_exact is not None:
            return "exact (facets, qhull)"
        return "exact (M is a simplex; LP certificate)" if self.simplex else "LP certificate (lower bound)"


def _weighted_depth(v: np.ndarray, s: np.ndarray, tau: np.ndarray, kappa: np.ndarray) -> np.ndarray | None:
    """min 1'x s.t. x >= kappa, V'x = (tau/s) 1'x  (i.e. sum_i x_i (phi_i - T) = 0); None if infeasible."""
    x = cp.Variable(v.shape[0])
    rhs = tau / s
    problem = cp.Problem(cp.Minimize(cp.sum(x)), [x >= kappa, v.T @ x - rhs * cp.sum(x) == 0])
    _solve(problem, ("HIGHS", "CLARABEL", "SCS"))
    if problem.status not in ("optimal", "optimal_inaccurate") or x.value is None:
        return None
    w = np.clip(np.asarray(x.value, dtype=np.float64), 0, None)
    return w / w.sum()


def _distinct(centred: np.ndarray, rtol: float = 1e-12) -> int:
    """Number of distinct points among the columns (squared distances below ``rtol * max norm^2`` merge)."""
    sq = (centred ** 2).sum(0)
    d2 = sq[:, None] + sq[None, :] - 2 * centred.T @ centred
    close = d2 <= rtol * max(float(sq.max()), 1e-300)
    return int(centred.shape[1] - np.triu(close, 1).any(0).sum())


def interior_depth(emb: Embedding, rtol: float = RTOL, exact_max_dim: int = 6) -> InteriorDepth:
    """How deep ``T`` lies in ``M``: affine distance, certified margin, exact margin, ``t_max``.

    Everything but ``aff_dist2`` is about ``T_A``, the projection of ``T`` onto ``aff M`` (``tau`` are its
    coordinates in ``A``): ``T = T_A`` when ``T`` is in the affine hull, and B4 is stated for ``T_A``
    (``THEORY.md`` section 6).

    Certificate: with ``Phi_c = [phi_i - phibar] = U S V'`` (thin SVD, rank ``m``), ``K = V S^-1 U'``
    maps a direction ``u in A`` to weights ``beta = K u`` with ``1'beta = 0`` and ``Phi beta = u``.
    If ``T = Phi a`` with ``a_i >= rho kappa_i``, ``kappa_i = ||K' e_i|| = ||S^-1 V[i]||``, then
    ``a + K u >= 0`` for ``||u|| <= rho``: the ball ``T + rho B_A`` lies in ``M``. The LP maximises
    ``rho``; with the returned ``a`` the bound is recomputed exactly as ``min_i a_i/kappa_i - ||Phi a - T||``.
    """
    coords, t = emb.coords, emb.target
    centre = coords.mean(1)
    centred = coords - centre[:, None]
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    keep = (np.arange(len(s)) < affine_rank(coords, rtol)) & (s > 0)  # the m largest: m decided scale-free
    u, s, v = u[:, keep], s[keep], vt[keep].T
    m = int(keep.sum())
    tau = u.T @ (t - centre)
    diff = t - centre
    aff_dist2 = max(float(diff @ diff - tau @ tau), 0.0) + emb.outside
    if m == 0:  # all candidates coincide: M is a point
        return InteriorDepth(0, aff_dist2, 0.0, None, 0.0 if aff_dist2 > 0 else 1.0, None)
    kappa = np.linalg.norm(v / s[None, :], axis=1)
    weights = _weighted_depth(v, s, tau, kappa)
    r_cert = 0.0
    if weights is not None:
        resid = float(np.linalg.norm(s * (v.T @ weights) - tau))
        with np.errstate(divide="ignore"):
            rho = float(np.min(np.where(kappa > 0, weights / kappa, np.inf)))
        r_cert = max(rho - resid, 0.0) if np.isfinite(rho) else 0.0
    plain = _weighted_depth(v, s, tau, np.ones_like(kappa))
    t_max = float(plain.min()) if plain is not None else 0.0
    r_exact = None
    if m <= exact_max_dim:
        pts = (s[:, None] * v.T).T  # (N, m) coordinates of phi_i - phibar in A
        if m == 1:
            r_exact = float(min(tau[0] - pts.min(), pts.max() - tau[0]))
        elif pts.shape[0] > m:
            try:
                from scipy.spatial import ConvexHull
                hull = ConvexHull(pts)
                r_exact = float(np.min(-(hull.equations[:, :-1] @ tau + hull.equations[:, -1])))
            except Exception:  # qhull refuses degenerate input: keep the certificate
                r_exact = None
    return InteriorDepth(m, aff_dist2, r_cert, r_exact, t_max, weights, simplex=_distinct(centred) == m + 1)


@dataclass
class SpanCovering:
    mu2: float
    method: str
    mu2_eig: float
    mu2_dual: float | None
    nonzero: int


def _dual_ascent(a: np.ndarray, iters: int, patience: int = 10) -> float:
    """Best ``lambda_min(A' diag(y) A)`` over the simplex ``sum y = 1`` by exponentiated supergradient ascent.

    ``y -> lambda_min(sum_j y_j a_j a_j')`` is concave; a supergradient is ``((a_j' v)^2)_j`` with ``v``
    the bottom eigenvector. Every iterate is evaluated exactly, so the returned value is a valid
    certificate whatever the step sizes did; the start ``y = 1/N`` is the eigenvalue certificate.
    Runs single-threaded (torch): these small eigen-problems are 10x slower with two BLAS threads on a
    busy machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        at = torch.from_numpy(np.ascontiguousarray(a))
        count = at.shape[0]
        y = torch.full((count,), 1.0 / count, dtype=at.dtype)
        best, since = -math.inf, 0
        for step in range(iters):
            lam, vec = torch.linalg.eigh(at.T @ (y[:, None] * at))
            low = float(lam[0])
            since = 0 if low > best * (1 + 1e-3) else since + 1
            best = max(best, low)
            if since >= patience:  # no 0.1% improvement for `patience` steps
                break
            grad = (at @ vec[:, 0]) ** 2
            y = y * torch.exp(grad / (float(grad.max()) + 1e-300) / math.sqrt(step + 1.0))
            y /= y.sum()
        return best
    finally:
        torch.set_num_threads(threads)


def span_covering(gram: np.ndarray, rtol: float = 1e-12, max_rank: int = 128, iters: int = 100) -> SpanCovering:
    """Certified ``mu^2 <= min_{u in span, |u|=1} max_j <u, c_j/|c_j|>^2`` (zero candidates left out).

    Eigenvalue certificate: ``max_j <u, chat_j>^2 >= |Chat' u|^2 / N' >= lam_min^+(Ghat) / N'``.
    Dual certificate (rank ``<= max_rank``): with ``Ghat = W diag(lam) W'`` and ``A = W sqrt(lam)``
    (``N' x rank``; ``u = Chat W lam^-1/2 z`` has ``|u| = |z|`` and ``Chat' u = A z``), any ``y >= 0``
    with ``sum y = 1`` gives ``lambda_min(A' diag(y) A) |z|^2 <= sum_j y_j (A z)_j^2 <= max_j (A z)_j^2``,
    i.e. ``mu^2 >= lambda_min(A' diag(y) A)``; ``y`` is improved by :func:`_dual_ascent` (this is the
    dual of the SDP relaxation ``max tr Z s.t. diag(A Z A') <= 1``; cvxpy's SDP solvers were 10-100x
    slower for the same value here). Eigenvalues of ``Ghat`` below ``rtol * lam_max`` count as exact
    zeros (numerical rank): the certificate covers the span of the retained eigen-directions.
    """
    diag = np.diag(gram)
    nz = diag > 0  # scale-free: a quiet candidate is a direction like any other (the engine's OLS agrees)
    g = gram[np.ix_(nz, nz)]
    d = 1.0 / np.sqrt(np.diag(g))
    ghat = d[:, None] * g * d[None, :]
    lam, w = np.linalg.eigh(ghat)
    keep = lam > rtol * float(lam.max())
    lam, w = lam[keep], w[:, keep]
    count = int(nz.sum())
    mu2_eig = float(lam.min()) / count
    mu2_dual = None
    if 1 < int(keep.sum()) <= max_rank:
        mu2_dual = _dual_ascent(w * np.sqrt(lam)[None, :], iters)
    if mu2_dual is not None and mu2_dual > mu2_eig:
        return SpanCovering(min(mu2_dual, 1.0), "dual certificate", mu2_eig, mu2_dual, count)
    return SpanCovering(min(mu2_eig, 1.0), "eigenvalue certificate", mu2_eig, mu2_dual, count)
