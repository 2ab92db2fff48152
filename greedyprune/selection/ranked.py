"""Baselines on the same statistics: a fixed ranking, then the same least-squares refit.

``magnitude`` keeps the ``k`` candidates with the largest given scores (for channel pruning: the L1
norm of each producer filter); ``random`` keeps a seeded random subset. Both refit the kept
coefficients by least squares (``refit=True``, the default) so the comparison with ``reoptimized``
isolates *which* channels are kept. ``magnitude-norefit`` keeps coefficients at 1, i.e. plain
magnitude pruning as most libraries do it (no reconstruction).

Whole-network default of all three: no global refit (``prune(refit="auto")`` resolves to none), so a
baseline stays the baseline as published; ``refit="global"`` adds it explicitly (``magnitude+refit``).
"""

from __future__ import annotations

import torch

from ..errors import UserError
from .base import Selection, register, relative
from .ols import orthogonal_least_squares


def _ranked(gram, cross, energy, k, order, method, refit, damping, quota=None):
    """Keep ``order[:k]`` (with a partition quota: the first ``k / P`` of each partition along ``order``)."""
    if quota is not None:
        order = quota.ordered(order)
    if refit:
        return orthogonal_least_squares(gram, cross, energy, k, method=method, damping=damping, order=order[:k])
    picks = order[:k]
    # Loss of the all-ones reconstruction after each prefix: E - 2 cumsum(b) + prefix sums of G.
    sub = gram[picks][:, picks]
    quad = torch.cumsum(torch.cumsum(sub, 0), 1).diagonal()
    loss = energy - 2 * torch.cumsum(cross[picks], 0) + quad
    ones = torch.ones(k, dtype=gram.dtype, device=gram.device)
    return Selection(picks.clone(), ones, relative(loss, energy), method)


def _scores(scores, n, device):
    if scores is None:
        raise UserError("method 'magnitude' needs scores=: one importance score per candidate (e.g. filter L1 norms)")
    scores = torch.as_tensor(scores, device=device)
    if scores.shape != (n,):
        raise UserError(f"scores must have shape ({n},), got {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise UserError("scores contain NaN or Inf")
    return scores


SCORES = "importance score per candidate, largest kept first (pruning: the producer filters' L1 norms)"
REFIT = "refit the kept coefficients by least squares (default True; False keeps them at 1)"


@register("magnitude", options={"scores": SCORES, "refit": REFIT})
def magnitude(gram, cross, energy, k, scores=None, refit=True, damping=0.0, quota=None) -> Selection:
    """Top-k by score (descending, ties by index), then least-squares refit of the kept coefficients."""
    scores = _scores(scores, gram.shape[0], gram.device)
    order = torch.sort(scores.to(torch.float64), descending=True, stable=True).indices
    return _ranked(gram, cross, energy, k, order, "magnitude" if refit else "magnitude-norefit", refit, damping,
                   quota)


@register("magnitude-norefit", options={"scores": SCORES})
def magnitude_norefit(gram, cross, energy, k, scores=None, damping=0.0, quota=None) -> Selection:
    """Top-k by score with coefficients left at 1: magnitude pruning without reconstruction."""
    return magnitude(gram, cross, energy, k, scores=scores, refit=False, damping=damping, quota=quota)


@register("random", options={"seed": "seed of the random subset (default 0)", "refit": REFIT})
def random(gram, cross, energy, k, seed=0, refit=True, damping=0.0, quota=None) -> Selection:
    """A seeded uniformly random subset (CPU generator, so the subset is device independent), refit."""
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(gram.shape[0], generator=generator).to(gram.device)
    return _ranked(gram, cross, energy, k, order, "random", refit, damping, quota)
