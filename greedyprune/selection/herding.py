"""Uniform-weight greedy selection: Frank-Wolfe / herding with step 1/n (Ye et al., ICML 2020).

With ``phi_i = N c_i`` the original output is the mean ``Y = (1/N) sum_i phi_i``. After ``n`` picks the
reconstruction is ``f_n = (1/n) sum_{t<=n} phi_{i_t}``, i.e. coefficient ``N/n`` on every pick.

* ``uniform`` (with replacement): ``f_n = (1 - 1/n) f_{n-1} + (1/n) phi_i`` with
  ``i = argmin_i Loss(f_n)``, a candidate may be picked again. O(N) per step from the statistics:
  with ``w`` the coefficient vector, ``Gw`` and the scalars ``b.w``, ``w.G.w`` are carried along.
* ``uniform-noreplace`` (the authors' released variant): no repeats, ``f_n = (N/n) sum_{i in S} c_i``.

The error after ``n`` picks is ``Loss(f_n) / E``. The theory (O(1/n)) is for ``uniform``.

Whole-network default of both: the global refit (``prune(refit="auto")``). Both are greedy
reconstructions of the layer's output, and the refit pursues the same goal across layers; it keeps
their picks (the group errors reported are herding's) and refits the consumers the uniform
coefficients were folded into. The authors' whole procedure, ``ye2020``, stays without it.

A pruning budget counts *distinct* channels, and ``uniform`` may pick a channel again, so after ``k``
picks it can keep fewer than ``k``. With ``until_distinct=True`` herding instead goes on until ``k``
distinct candidates are picked (at most ``max_steps`` picks, default ``8 N``; if it gets no further, the
result says so in ``stopped_early``): the way to compare it with other methods at the same width.
"""

from __future__ import annotations

import torch

from ..errors import UserError
from .base import Selection, register, relative
from .partition import PartitionQuota


def _herd(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, replace: bool,
          method: str, distinct: int | None = None, max_steps: int | None = None,
          quota: PartitionQuota | None = None) -> Selection:
    """``k`` herding steps, or (``distinct`` given) steps until that many distinct picks, at most ``max_steps``.

    With a partition ``quota`` a candidate not yet picked is eligible only while its partition is open.
    """
    n_cand, device = gram.shape[0], gram.device
    scale = float(n_cand)
    diag = gram.diagonal()
    sum_gram_col = torch.zeros(n_cand, dtype=gram.dtype, device=device)  # G @ counts
    sum_cross = torch.zeros((), dtype=gram.dtype, device=device)        # b . counts
    sum_quad = torch.zeros((), dtype=gram.dtype, device=device)         # counts . G . counts
    allowed = torch.ones(n_cand, dtype=torch.bool, device=device)
    picks, losses = [], []
    steps = k if distinct is None else max_steps
    seen = 0
    for n in range(1, steps + 1):
        step = scale / n  # coefficient of every pick after this step
        # Loss of f_n if candidate i is added, for all i at once (counts -> counts + e_i).
        quad = sum_quad + 2 * sum_gram_col + diag
        loss = energy - 2 * step * (sum_cross + cross) + step * step * quad
        if not replace:
            loss = torch.where(allowed, loss, torch.inf)
        if quota is not None:
            loss = torch.where(quota.eligible(), loss, torch.inf)
        i = int(torch.argmin(loss))
        if quota is not None:
            quota.take(i)
        picks.append(i)
        losses.append(loss[i])
        sum_quad = quad[i]
        sum_cross = sum_cross + cross[i]
        sum_gram_col = sum_gram_col + gram[:, i]
        seen += bool(allowed[i])
        allowed[i] = False
        if distinct is not None and seen >= distinct:
            break
    stopped = None
    if distinct is not None and seen < distinct:
        stopped = f"herding reached only {seen} of {distinct} distinct candidates in {len(picks)} picks"
    m = len(picks)
    indices = torch.tensor(picks, dtype=torch.long, device=device)
    coefficients = torch.full((m,), scale / m, dtype=gram.dtype, device=device)
    errors = relative(torch.stack(losses), energy)
    return Selection(indices, coefficients, errors, method, stopped_early=stopped, info={"distinct": seen})


@register("uniform", with_replacement=True, width_options={"until_distinct": True}, options={
    "until_distinct": "k counts distinct candidates: herd until k different ones are picked (pruning to a width)",
    "max_steps": "with until_distinct, at most this many picks (default 8 N)"}, whole_network_refit="global")
def uniform(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, until_distinct: bool = False,
            max_steps: int | None = None, damping: float = 0.0, quota: PartitionQuota | None = None) -> Selection:
    """Frank-Wolfe / herding with step 1/n, picks with replacement (ICML 2020, O(1/n) rate).

    ``until_distinct``: ``k`` counts distinct candidates (must be <= N); herd until that many are picked,
    at most ``max_steps`` picks (default ``8 N``).
    """
    if not until_distinct:
        return _herd(gram, cross, energy, k, replace=True, method="uniform", quota=quota)
    n = gram.shape[0]
    if k > n:
        raise UserError(f"k={k} distinct candidates exceeds the {n} candidates; with until_distinct k must be <= {n}")
    steps = 8 * n if max_steps is None else int(max_steps)
    if steps < k:
        raise UserError(f"max_steps={steps} is fewer than the k={k} distinct picks asked for; give max_steps >= k")
    return _herd(gram, cross, energy, k, replace=True, method="uniform", distinct=k, max_steps=steps, quota=quota)


@register("uniform-noreplace", whole_network_refit="global")
def uniform_noreplace(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, damping: float = 0.0,
                      quota: PartitionQuota | None = None) -> Selection:
    """Greedy without repeats, kept channels scaled by N/|S| (the authors' released code)."""
    return _herd(gram, cross, energy, k, replace=False, method="uniform-noreplace", quota=quota)
