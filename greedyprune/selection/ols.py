"""Orthogonal least squares: greedy forward selection with all kept coefficients re-optimised.

Objective (damped by a ridge ``lambda``, reported in :class:`Selection.damping`)::

    Loss_lambda(g) = E - 2 b.g + g.(G + lambda I).g,   g supported on the kept set S.

Step ``t`` adds the candidate ``j`` whose inclusion, after re-solving for every coefficient on
``S + {j}``, gives the smallest loss. With ``r_S = T - P_S T`` (residual) and ``q_j = c_j - P_S c_j``
(``c_j`` orthogonalised against the kept set), the exact decrease of the re-optimised loss is::

    Delta_j = <q_j, T>^2 / ||q_j||^2 = rho_j^2 / d_j,
    rho_j = b_j - G_jS (G_SS)^-1 b_S,     d_j = G_jj - G_jS (G_SS)^-1 G_Sj,

so the greedy step is ``argmax_j rho_j^2 / d_j`` -- no per-candidate solve. After picking ``p``,
``u = R[:, p]`` (the residual Gram column, ``R = G - V V^T``) gives ``v = u / sqrt(d_p)`` and the
updates ``rho -= v z``, ``d -= v^2`` with ``z = rho_p / sqrt(d_p)``; ``V`` is a pivoted Cholesky
factor (``V[S] V[S]^T = G_SS + lambda I``). This is O(N k^2) in total. The blocked variant keeps
``R`` explicitly and refreshes it with one rank-``block`` matrix product every ``block`` picks, so
the bulk of the work runs as GEMM (O(N^2 k) flops at GEMM speed, O(N k block) at GEMV speed).

Coefficients after ``t`` picks are ``g_t = L_t^-T z_{1..t}`` with ``L = V[S]`` lower triangular;
all prefixes come from one triangular inverse, and the *undamped* loss of each is reported:
``Loss(g_t) = E - sum_{s<=t} z_s^2 - lambda ||g_t||^2``.

Redundancy. A candidate that adds nothing (zero, or in the span of the kept ones) must never be
picked. Its damped residual ``d_p - lambda = G_pp - G_pS (G_SS + lambda I)^-1 G_Sp`` is not zero
under damping (for ``c_p = C_S alpha`` it is ``lambda alpha.G_SS (G_SS + lambda I)^-1 alpha``), so
when it is small (below ``SUSPECT_RTOL G_pp``) the *undamped* orthogonal energy is computed::

    q_p = G_pp - G_pS G_SS^-1 G_Sp = (d_p - lambda) - lambda x.x0,
    x0 = (G_SS + lambda I)^-1 G_Sp,   x = G_SS^-1 G_Sp,

with ``x`` from ``x0`` by iterative refinement on the damped factor (``G_SS = L L^T - lambda I``;
the error contracts by ``lambda / (sigma_min(G_SS) + lambda)`` per step), and ``p`` is redundant when
``q_p <= REDUNDANT_RTOL G_pp``. Unconverged refinement over-estimates ``q_p`` (every Neumann term is
non-negative), so an informative candidate is never called redundant. It costs O(t^2) per step, for
suspicious winners only; a kept set so ill-conditioned that its damped residuals stay above
``SUSPECT_RTOL`` escapes the test, and the ridge may then add a candidate that only shares a
coefficient (that is what damping means).
"""

from __future__ import annotations

import math

import torch

from .base import Selection, relative
from .partition import PartitionQuota

# A candidate is redundant when its orthogonalised energy is below this fraction of its own energy.
REDUNDANT_RTOL = 1e-10
# Under damping, a winner whose damped orthogonal energy is below this fraction gets the exact undamped test.
SUSPECT_RTOL = 0.1
# Iterative refinement of the undamped solve: at most this many steps, until the update is this small.
REFINE_STEPS, REFINE_RTOL = 50, 1e-12
# Stop when no candidate can lower the loss by more than this fraction of the target energy.
STALL_RTOL = 1e-14


def orthogonal_least_squares(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int,
                             method: str, damping: float = 0.0, order: torch.Tensor | None = None,
                             block: int = 128, quota: PartitionQuota | None = None) -> Selection:
    """Greedy OLS (``order is None``) or least-squares refit along a fixed ``order`` of candidates.

    Args:
        gram, cross, energy: float64 statistics (validated by the caller).
        k: number of picks requested.
        method: name recorded in the result.
        damping: absolute ridge ``lambda`` (>= 0) added to the diagonal.
        order: fixed candidate order (magnitude / random baselines); redundant candidates in it are
            kept with coefficient 0 so the pick count stays ``k``.
        block: picks between refreshes of the residual Gram (1 = unblocked, O(N k^2) GEMV path).
        quota: equal picks per partition (:mod:`.partition`): once a partition holds its share, its
            candidates' residual diagonal is set to ``inf`` (score 0), so the argmax skips them.
    Returns:
        :class:`Selection` with picks, coefficients ``g`` and relative errors per prefix.
    """
    n, device = gram.shape[0], gram.device
    diag = gram.diagonal().tolist()
    residual_gram = gram.clone()
    if damping > 0:
        residual_gram.diagonal().add_(damping)
    rho = cross.clone()
    # residual diagonal d_j, with +inf where a candidate is picked, zero or found redundant (score 0 there)
    d = torch.where(gram.diagonal() > 0, residual_gram.diagonal(), torch.inf)
    factor = torch.zeros(k, n, dtype=gram.dtype, device=device)  # V^T, one row per informative pick
    zs: list[float] = []
    picks: list[int] = []
    informative: list[int] = []  # positions in `picks` that own a row of V^T
    block_start = 0  # first row of V^T not yet folded into residual_gram
    stopped = None
    stall = STALL_RTOL * float(energy)

    t = 0
    while t < k:
        if order is not None:
            p = int(order[t])
            score_p = 1.0
        else:
            score = rho.square().div_(d)
            p = int(torch.argmax(score))
            score_p = float(score[p])
        d_p, rho_p = torch.stack([d[p], rho[p]]).tolist()  # one device sync for both scalars
        if order is None and (not score_p > stall or math.isinf(d_p)):
            stopped = (f"stopped after {len(picks)} picks: no remaining candidate lowers the loss "
                       "(residual reached zero, or the rest are redundant or zero)")
            break
        redundant = math.isinf(d_p) or not d_p - damping > REDUNDANT_RTOL * diag[p]
        if not redundant and damping > 0 and informative and d_p - damping <= SUSPECT_RTOL * diag[p]:
            q = undamped_orthogonal_energy(gram, factor[:len(informative)], [picks[i] for i in informative], p,
                                           d_p - damping, damping)
            redundant = q <= REDUNDANT_RTOL * diag[p]
        if redundant:
            d[p] = torch.inf  # redundant (checked lazily: only the winner can matter)
            if order is not None:
                picks.append(p)  # a fixed order keeps it for the budget; it contributes nothing
                t += 1
            continue
        col = len(informative)
        root = d_p ** 0.5
        v = factor[col]
        # u = R[p] - (in-block part of V V^T)[p]; R is symmetric, and its row is contiguous
        if col > block_start:
            torch.addmv(residual_gram[p], factor[block_start:col].T, factor[block_start:col, p], alpha=-1.0, out=v)
        else:
            v.copy_(residual_gram[p])
        v.div_(root)
        zc = rho_p / root
        zs.append(zc)
        rho.sub_(v, alpha=zc)
        d.addcmul_(v, v, value=-1.0)
        d[p] = torch.inf
        informative.append(len(picks))
        picks.append(p)
        t += 1
        if quota is not None and order is None:
            quota.take(p)
            d.masked_fill_(~quota.open, torch.inf)
        if col + 1 - block_start >= block:
            vb = factor[block_start:col + 1]
            residual_gram.addmm_(vb.T, vb, alpha=-1.0)
            block_start = col + 1

    z = torch.tensor(zs + [0.0] * (k - len(zs)), dtype=gram.dtype, device=device)
    return _finish(gram, cross, energy, picks, informative, factor, z, damping, method, stopped)


def undamped_orthogonal_energy(gram: torch.Tensor, factor: torch.Tensor, kept: list[int], p: int,
                               damped_energy: float, damping: float) -> float:
    """``q_p = G_pp - G_pS G_SS^-1 G_Sp`` from the damped factor (see the module docstring).

    Args:
        factor: rows of ``V^T`` for the kept candidates (``factor[:, kept].T = L``, ``L L^T = G_SS + lambda I``).
        damped_energy: ``d_p - lambda``, the damped orthogonal energy already known.
    Returns ``(d_p - lambda) - lambda x.x0`` (both terms are small for a candidate in the span, so there is
    no cancellation against ``G_pp``); an upper estimate of ``q_p`` when the refinement stopped early
    (converged or already below ``REDUNDANT_RTOL G_pp``).
    """
    lower = torch.tril(factor[:, torch.tensor(kept, dtype=torch.long, device=gram.device)].T)
    rhs = gram[kept, p].unsqueeze(1)
    x0 = torch.cholesky_solve(rhs, lower)
    x = x0.clone()
    estimate, threshold = damped_energy - damping * float(x0.square().sum()), REDUNDANT_RTOL * float(gram[p, p])
    for _ in range(REFINE_STEPS):
        if estimate <= threshold:
            break
        # x <- x + (G_SS + lambda I)^-1 (G_Sp - G_SS x), with G_SS x = L (L^T x) - lambda x
        step = torch.cholesky_solve(rhs - (lower @ (lower.T @ x) - damping * x), lower)
        x += step
        decrease = damping * float((step * x0).sum())  # >= 0: the estimate falls monotonically
        estimate -= decrease
        if decrease <= REFINE_RTOL * abs(estimate):
            break
    return estimate


def _finish(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, picks: list[int],
            informative: list[int], factor: torch.Tensor, z: torch.Tensor, damping: float, method: str,
            stopped: str | None) -> Selection:
    """Coefficients of every prefix from one triangular inverse; exact undamped errors per prefix."""
    device, m, r = gram.device, len(picks), len(informative)
    indices = torch.tensor(picks, dtype=torch.long, device=device)
    coefficients = torch.zeros(m, dtype=gram.dtype, device=device)
    errors = torch.ones(m, dtype=gram.dtype, device=device)
    if r:
        info_idx = torch.tensor(informative, dtype=torch.long, device=device)
        lower = factor[:r, indices[info_idx]].T  # L, lower triangular, L L^T = G_SS + lambda I
        eye = torch.eye(r, dtype=gram.dtype, device=device)
        upper_inv = torch.linalg.solve_triangular(lower.T, eye, upper=True)  # L^-T
        prefix_coeffs = torch.cumsum(upper_inv * z[:r], dim=1)  # column t-1 = g after t informative picks
        damped_loss = energy - torch.cumsum(z[:r] ** 2, dim=0)
        loss = damped_loss - damping * (prefix_coeffs ** 2).sum(0)
        coefficients[info_idx] = prefix_coeffs[:, -1]
        # a redundant pick leaves the loss where the previous informative pick left it
        which = torch.cumsum(torch.zeros(m, dtype=torch.long, device=device).index_fill_(0, info_idx, 1), 0) - 1
        seen = which >= 0
        errors[seen] = relative(loss, energy)[which[seen]]
    if float(energy) == 0.0:
        errors.zero_()
    return Selection(indices, coefficients, errors, method, damping=damping, stopped_early=stopped)
