"""Small synthetic groups with known geometry, shared by the analysis tests."""

from __future__ import annotations

import torch

from greedyprune.analysis import GroupStatistics


def points(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def group_from_phi(name: str, phi: torch.Tensor, target: torch.Tensor | None = None, scores=None,
                   depth=None) -> GroupStatistics:
    """Group whose hull points are ``phi`` (rows), i.e. ``c_i = phi_i / N``; default target: centroid."""
    n = phi.shape[0]
    target = phi.mean(0) if target is None else target
    return GroupStatistics.from_contributions(name, phi / n, target, scores, depth)


def sphere(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """``n`` points spread on a unit sphere (radius jittered) centred at ``(3, 0, ...)``: a round hull,
    centroid deep inside and away from the origin (so ``E = ||T||^2`` is not tiny)."""
    x = points(n, dim, seed)
    radius = 1.0 + 0.1 * points(n, 1, seed + 1).tanh()
    x = x / x.norm(dim=1, keepdim=True) * radius
    x = x - x.mean(0)
    x[:, 0] += 3.0
    return x


def regular_simplex(n: int, edge: float = 1.0) -> torch.Tensor:
    """``n`` vertices of a regular simplex with the given edge length (in R^n)."""
    return torch.eye(n, dtype=torch.float64) * edge / 2 ** 0.5
