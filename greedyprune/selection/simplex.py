"""Greedy selection re-optimised over the convex hull: fully-corrective Frank-Wolfe.

The convex-hull theory (Ye et al.) approximates ``Y = (1/N) sum phi_i`` (``phi_i = N c_i``) by points
of ``M = conv{phi_i}``. With coefficients ``w = s a`` (``a`` in the probability simplex, ``s = N``)::

    minimise  Loss(w) = E - 2 b.w + w.G.w   over  w >= 0,  sum(w) = s,  supp(w) in S.

Step 1 picks the best single vertex ``argmin_i Loss(s e_i)``. Each later step adds the Frank-Wolfe
vertex -- the unpicked candidate with the most negative gradient ``(2(G w - b))_i`` -- and then
re-solves the QP over *all* kept candidates exactly (an active-set method, warm-started). Unlike the
unconstrained path this needs one QP per step, O(|S|^3) per active-set iteration: it is the slow
path, meant for checking the theory (linear convergence of fully-corrective FW when the target is
interior to the hull), not for pruning large layers. Kept candidates may end with weight 0.

The inner QP is solved in rescaled variables (each candidate divided by its norm, see
:func:`simplex_qp`), so a candidate 1e6 times louder than the others does not drown their directions in
rounding: the optimum over all kept candidates is found to rounding of the terms involved whatever the scales.

Whole-network default: the global refit (``prune(refit="auto")``), as for ``reoptimized``: a greedy
reconstruction. The hull constraint concerns each group's selection, whose picks and errors (the
report's group errors, what checks the theory) the refit leaves as they are.
"""

from __future__ import annotations

import torch

from .base import Selection, register, relative
from .partition import PartitionQuota


def _solve_on_support(a: torch.Tensor, c: torch.Tensor, u: torch.Tensor, total: float) -> tuple[torch.Tensor, float]:
    """Minimise ``v.A.v - 2 c.v`` subject to ``u.v = total`` (no sign constraint) via the KKT system.

    Returns ``v`` and the multiplier ``lam`` of the constraint (``2(A v - c) + lam u = 0``). The
    constraint row is normalised to unit length so that the KKT matrix is as well scaled as ``A``.
    """
    m = a.shape[0]
    norm = float(u.norm())
    kkt = torch.zeros(m + 1, m + 1, dtype=a.dtype, device=a.device)
    kkt[:m, :m] = 2 * a
    kkt[:m, m] = u / norm
    kkt[m, :m] = u / norm
    rhs = torch.cat([2 * c, c.new_tensor([total / norm])])
    sol = None
    try:
        sol = torch.linalg.solve(kkt, rhs)
        if not bool(torch.isfinite(sol).all()):
            sol = None
    except RuntimeError:
        pass
    if sol is None:  # singular (collinear candidates on the support): minimum-norm solution
        sol = torch.linalg.lstsq(kkt, rhs.unsqueeze(1)).solution[:, 0]
    return sol[:m], float(sol[m]) / norm


def simplex_qp(a: torch.Tensor, c: torch.Tensor, total: float, start: torch.Tensor,
               max_iter: int = 500) -> torch.Tensor:
    """Exact active-set solution of ``min w.A.w - 2 c.w`` s.t. ``w >= 0, sum(w) = total``.

    ``start`` must be feasible. Returns the optimal ``w`` (zeros outside its support).

    Scale invariance: the candidates' norms ``s_i = sqrt(A_ii)`` may differ by many orders of
    magnitude (one channel 1e6 times louder than another). The problem is solved in ``v_i = s_i w_i``:
    the quadratic form becomes the correlation matrix ``A_ij / (s_i s_j)`` (unit diagonal), the
    constraint ``sum_i v_i / s_i = total``, and every tolerance below is relative to the terms it
    compares, so rescaling one candidate changes the rounding of the solve, not its answer.
    """
    s = a.diagonal().clamp_min(0).sqrt()
    s = torch.where(s > 0, s, torch.ones_like(s))  # a zero candidate: its weight only moves mass
    an = a / (s[:, None] * s[None, :])
    cn = c / s
    u = 1.0 / s
    v = start * s
    support = v > 0
    for _ in range(max_iter):
        idx = support.nonzero().squeeze(1)
        v_sup, lam = _solve_on_support(an[idx][:, idx], cn[idx], u[idx], total)
        if bool((v_sup > 1e-12 * float(v_sup.abs().max())).all()):
            v = torch.zeros_like(v)
            v[idx] = v_sup
            grad = 2 * (an @ v - cn)
            # reduced cost of adding candidate j; below `noise` it is rounding of the terms it is made of
            # (a relative test on the slack itself would chase noise once the target is reached)
            slack = torch.where(support, torch.inf, grad + lam * u)
            noise = 1e-10 * (2 * an.abs() @ v.abs() + 2 * cn.abs() + abs(lam) * u) + 1e-300
            j = int(torch.argmin(slack / noise))
            if float(slack[j]) >= -float(noise[j]):
                return v / s
            support[j] = True
            continue
        step = v_sup - v[idx]
        ratios = torch.where(step < 0, v[idx] / (-step).clamp_min(1e-300), torch.inf)
        alpha = float(ratios.min().clamp(max=1.0))
        v[idx] = v[idx] + alpha * step
        hit = v <= 1e-12 * float(v.abs().max())
        v[hit] = 0.0
        support &= ~hit
        if not bool(support.any()):  # numerical corner: fall back to the best single vertex
            j = int(torch.argmin(a.diagonal() * total ** 2 - 2 * total * c))
            v[j], support[j] = total * s[j], True
    return v / s


@register("reoptimized-simplex", options={"scale": "the hull's scale s: coefficients sum to s (default N)"},
          whole_network_refit="global")
def reoptimized_simplex(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int,
                        scale: float | None = None, damping: float = 0.0,
                        quota: PartitionQuota | None = None) -> Selection:
    """Fully-corrective Frank-Wolfe over the hull of ``phi_i = scale * c_i`` (default ``scale = N``).

    With a partition ``quota`` the first vertex and every Frank-Wolfe vertex come from open partitions.
    """
    n, device = gram.shape[0], gram.device
    total = float(n if scale is None else scale)
    a = gram.clone()
    if damping > 0:
        a.diagonal().add_(damping)
    first_loss = total * total * a.diagonal() - 2 * total * cross
    if quota is not None:
        first_loss = torch.where(quota.open, first_loss, torch.inf)
    first = int(torch.argmin(first_loss))
    if quota is not None:
        quota.take(first)
    picks = [first]
    w_all = torch.zeros(n, dtype=gram.dtype, device=device)
    w_all[first] = total
    losses = [energy - 2 * cross @ w_all + w_all @ gram @ w_all]
    picked = torch.zeros(n, dtype=torch.bool, device=device)
    picked[first] = True
    stopped = None
    for _ in range(1, k):
        if float(losses[-1]) <= 1e-14 * float(energy):
            stopped = f"stopped after {len(picks)} picks: the target is reconstructed (loss at rounding level)"
            break
        grad = 2 * (a @ w_all - cross)
        closed = picked if quota is None else picked | ~quota.open
        j = int(torch.argmin(torch.where(closed, torch.inf, grad)))
        if quota is not None:
            quota.take(j)
        picked[j] = True
        picks.append(j)
        idx = torch.tensor(picks, device=device)
        w_sub = simplex_qp(a[idx][:, idx], cross[idx], total, w_all[idx])
        w_all = torch.zeros_like(w_all)
        w_all[idx] = w_sub
        losses.append(energy - 2 * cross @ w_all + w_all @ gram @ w_all)
    indices = torch.tensor(picks, dtype=torch.long, device=device)
    return Selection(indices, w_all[indices].clone(), relative(torch.stack(losses), energy),
                     "reoptimized-simplex", damping=damping, stopped_early=stopped)
