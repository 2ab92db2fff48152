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
"""

from __future__ import annotations

import torch

from .base import Selection, register, relative
from .partition import PartitionQuota


def _solve_on_support(a: torch.Tensor, c: torch.Tensor, total: float) -> torch.Tensor:
    """Minimise ``w.A.w - 2 c.w`` subject to ``sum(w) = total`` (no sign constraint) via the KKT system."""
    m = a.shape[0]
    kkt = torch.zeros(m + 1, m + 1, dtype=a.dtype, device=a.device)
    kkt[:m, :m] = 2 * a
    kkt[:m, m] = 1.0
    kkt[m, :m] = 1.0
    rhs = torch.cat([2 * c, c.new_tensor([total])])
    try:
        sol = torch.linalg.solve(kkt, rhs)
        if bool(torch.isfinite(sol).all()):
            return sol[:m]
    except RuntimeError:
        pass
    return torch.linalg.lstsq(kkt, rhs.unsqueeze(1)).solution[:m, 0]  # singular: minimum-norm solution


def simplex_qp(a: torch.Tensor, c: torch.Tensor, total: float, start: torch.Tensor,
               max_iter: int = 500) -> torch.Tensor:
    """Exact active-set solution of ``min w.A.w - 2 c.w`` s.t. ``w >= 0, sum(w) = total``.

    ``start`` must be feasible. Returns the optimal ``w`` (zeros outside its support).
    """
    w = start.clone()
    support = w > 0
    tol = 1e-12 * max(total, 1.0)
    # Slack below this is rounding noise: the scale of the gradient at a vertex, not at the optimum,
    # which can be ~0 once the target is reached (a relative test there would chase noise forever).
    noise = 1e-10 * (2 * total * float(a.abs().max()) + 2 * float(c.abs().max())) + 1e-300
    for _ in range(max_iter):
        idx = support.nonzero().squeeze(1)
        w_sup = _solve_on_support(a[idx][:, idx], c[idx], total)
        if bool((w_sup > tol).all()):
            w = torch.zeros_like(w)
            w[idx] = w_sup
            grad = 2 * (a @ w - c)
            mu = -grad[idx].mean()
            slack = torch.where(support, torch.inf, grad + mu)
            j = int(torch.argmin(slack))
            if float(slack[j]) >= -noise:
                return w
            support[j] = True
            continue
        step = w_sup - w[idx]
        ratios = torch.where(step < 0, w[idx] / (-step).clamp_min(1e-300), torch.inf)
        alpha = float(ratios.min().clamp(max=1.0))
        w[idx] = w[idx] + alpha * step
        hit = w <= tol
        w[hit] = 0.0
        support &= ~hit
        if not bool(support.any()):  # numerical corner: fall back to the best single vertex
            j = int(torch.argmin(a.diagonal() * total ** 2 - 2 * total * c))
            w[j], support[j] = total, True
    return w


@register("reoptimized-simplex", options={"scale": "the hull's scale s: coefficients sum to s (default N)"})
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
