"""Uniform-weight greedy selection: Frank-Wolfe / herding with step 1/n (Ye et al., ICML 2020).

With ``phi_i = N c_i`` the original output is the mean ``Y = (1/N) sum_i phi_i``. After ``n`` picks the
reconstruction is ``f_n = (1/n) sum_{t<=n} phi_{i_t}``, i.e. coefficient ``N/n`` on every pick.

* ``uniform`` (with replacement): ``f_n = (1 - 1/n) f_{n-1} + (1/n) phi_i`` with
  ``i = argmin_i Loss(f_n)``, a candidate may be picked again. O(N) per step from the statistics:
  with ``w`` the coefficient vector, ``Gw`` and the scalars ``b.w``, ``w.G.w`` are carried along.
* ``uniform-noreplace`` (the authors' released variant): no repeats, ``f_n = (N/n) sum_{i in S} c_i``.

The error after ``n`` picks is ``Loss(f_n) / E``. The theory (O(1/n)) is for ``uniform``.
"""

from __future__ import annotations

import torch

from .base import Selection, register, relative


def _herd(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, replace: bool,
          method: str) -> Selection:
    n_cand, device = gram.shape[0], gram.device
    scale = float(n_cand)
    diag = gram.diagonal()
    sum_gram_col = torch.zeros(n_cand, dtype=gram.dtype, device=device)  # G @ counts
    sum_cross = torch.zeros((), dtype=gram.dtype, device=device)        # b . counts
    sum_quad = torch.zeros((), dtype=gram.dtype, device=device)         # counts . G . counts
    allowed = torch.ones(n_cand, dtype=torch.bool, device=device)
    picks, losses = [], []
    for n in range(1, k + 1):
        step = scale / n  # coefficient of every pick after this step
        # Loss of f_n if candidate i is added, for all i at once (counts -> counts + e_i).
        quad = sum_quad + 2 * sum_gram_col + diag
        loss = energy - 2 * step * (sum_cross + cross) + step * step * quad
        if not replace:
            loss = torch.where(allowed, loss, torch.inf)
        i = int(torch.argmin(loss))
        picks.append(i)
        losses.append(loss[i])
        sum_quad = quad[i]
        sum_cross = sum_cross + cross[i]
        sum_gram_col = sum_gram_col + gram[:, i]
        allowed[i] = False
    indices = torch.tensor(picks, dtype=torch.long, device=device)
    coefficients = torch.full((k,), scale / k, dtype=gram.dtype, device=device)
    errors = relative(torch.stack(losses), energy)
    return Selection(indices, coefficients, errors, method)


@register("uniform", with_replacement=True)
def uniform(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int, **_: object) -> Selection:
    """Frank-Wolfe / herding with step 1/n, picks with replacement (ICML 2020, O(1/n) rate)."""
    return _herd(gram, cross, energy, k, replace=True, method="uniform")


@register("uniform-noreplace")
def uniform_noreplace(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int,
                      **_: object) -> Selection:
    """Greedy without repeats, kept channels scaled by N/|S| (the authors' released code)."""
    return _herd(gram, cross, energy, k, replace=False, method="uniform-noreplace")
