"""Slow, obvious reference implementations used by the tests and the speed benchmark.

:func:`brute_force_reoptimized` re-solves the least-squares problem for every candidate at every step
(O(N k^4) in total); it defines what ``reoptimized`` must return.
"""

from __future__ import annotations

import torch


def least_squares_loss(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, subset: list[int],
                       damping: float = 0.0) -> float:
    """``min_g E - 2 b_S.g + g.(G_SS + lambda I).g`` by a direct solve (pseudo-inverse if singular)."""
    idx = torch.tensor(subset, dtype=torch.long, device=gram.device)
    a = gram[idx][:, idx] + damping * torch.eye(len(subset), dtype=gram.dtype, device=gram.device)
    g = torch.linalg.lstsq(a, cross[idx].unsqueeze(1)).solution.squeeze(1)
    return float(energy - 2 * cross[idx] @ g + g @ a @ g)


def brute_force_reoptimized(gram: torch.Tensor, cross: torch.Tensor, energy: torch.Tensor, k: int,
                            damping: float = 0.0) -> tuple[list[int], list[float]]:
    """Greedy selection by trying every candidate with a fresh solve; returns picks and damped losses."""
    picks: list[int] = []
    losses: list[float] = []
    for _ in range(k):
        best, best_loss = -1, float("inf")
        for j in range(gram.shape[0]):
            if j in picks:
                continue
            loss = least_squares_loss(gram, cross, energy, picks + [j], damping)
            if loss < best_loss:
                best, best_loss = j, loss
        picks.append(best)
        losses.append(best_loss)
    return picks, losses


def frank_wolfe_uniform(features: torch.Tensor, target: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """Direct evaluation of ``f_n = (1 - 1/n) f_{n-1} + (1/n) phi_i``, ``phi_i = N c_i``, argmin over i."""
    n = features.shape[0]
    phi = n * features
    current = torch.zeros_like(target)
    picks, errors = [], []
    for step in range(1, k + 1):
        candidates = (1 - 1 / step) * current + phi / step
        losses = ((candidates - target) ** 2).sum(1)
        i = int(torch.argmin(losses))
        picks.append(i)
        current = candidates[i]
        errors.append(float(losses[i] / (target @ target)))
    return picks, errors
