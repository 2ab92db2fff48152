"""One channel group's sufficient statistics: the input of every analysis function.

Setting (the selection engine's). Candidate ``i`` (a channel) contributes ``c_i`` to a layer's output
and the target is ``T``; all that is needed are

* ``G_ij = <c_i, c_j>`` (``gram``, ``N x N``), ``b_i = <c_i, T>`` (``cross``), ``E = ||T||^2`` (``energy``).

The convex-hull theory works with ``phi_i = N c_i``: when nothing upstream was pruned the original
output is exactly the centroid ``T = (1/N) sum_i phi_i = sum_i c_i``, so ``b = G 1`` and ``E = 1' G 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from greedyprune.errors import UserError
from greedyprune.selection.base import check_statistics


@dataclass
class GroupStatistics:
    """Statistics of one channel group (one layer's prunable channels).

    Attributes:
        name: label used in tables, file names and plots.
        gram: ``G (N, N)``, ``G_ij = <c_i, c_j>``.
        cross: ``b (N,)``, ``b_i = <c_i, T>``.
        energy: ``E = ||T||^2`` (scalar).
        scores: optional magnitude scores ``(N,)`` (e.g. producer filter L1 norms) for the
            ``magnitude`` baseline; without them that curve is skipped.
        depth: optional position in the network (layer index) for the across-depth summary.
    """

    name: str
    gram: torch.Tensor
    cross: torch.Tensor
    energy: torch.Tensor | float
    scores: torch.Tensor | None = None
    depth: float | int | None = None

    @property
    def size(self) -> int:
        return int(self.gram.shape[0])

    def validated(self) -> "GroupStatistics":
        """float64 CPU copies, checked (one-line :class:`UserError` on bad input)."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise UserError(f"group name must be a non-empty string, got {self.name!r}")
        try:
            gram, cross, energy = check_statistics(self.gram, self.cross, self.energy, 1, False)
        except UserError as err:
            raise UserError(f"group {self.name!r}: {err}") from None
        gram, cross, energy = gram.cpu(), cross.cpu(), energy.cpu()
        if float((gram - gram.T).abs().max()) > 1e-8 * max(float(gram.diagonal().abs().max()), 1e-300):
            raise UserError(f"group {self.name!r}: gram is not symmetric; pass G = C C^T of the contributions")
        gram = 0.5 * (gram + gram.T)
        if float(gram.diagonal().min()) < 0:
            raise UserError(f"group {self.name!r}: gram has a negative diagonal entry; it must be a Gram matrix")
        if float(energy) == 0.0:
            raise UserError(f"group {self.name!r}: the target energy E is 0; relative errors are undefined")
        scores = None
        if self.scores is not None:
            scores = torch.as_tensor(self.scores, dtype=torch.float64).cpu()
            if scores.shape != (gram.shape[0],) or not bool(torch.isfinite(scores).all()):
                raise UserError(f"group {self.name!r}: scores must be {gram.shape[0]} finite numbers")
        depth = None if self.depth is None else float(self.depth)
        return GroupStatistics(self.name, gram, cross, energy, scores, depth)

    def is_centroid_target(self, rtol: float = 1e-9) -> bool:
        """True when ``T = sum_i c_i`` (nothing upstream pruned): ``b = G 1`` and ``E = 1' G 1``."""
        g = self.gram.to(torch.float64)
        row = g.sum(1)
        scale = float(g.abs().sum()) + 1e-300
        return (float((row - self.cross.to(torch.float64)).abs().max()) <= rtol * scale
                and abs(float(row.sum()) - float(self.energy)) <= rtol * scale)

    @classmethod
    def from_contributions(cls, name: str, contributions: torch.Tensor, target: torch.Tensor | None = None,
                           scores: torch.Tensor | None = None, depth: float | None = None) -> "GroupStatistics":
        """Build from explicit contributions ``C (N, *shape)``; ``target`` defaults to ``sum_i c_i``."""
        if not isinstance(contributions, torch.Tensor) or contributions.dim() < 2:
            raise UserError("contributions must be a tensor (N, ...): one row per candidate")
        c = contributions.reshape(contributions.shape[0], -1).to(torch.float64)
        t = c.sum(0) if target is None else torch.as_tensor(target, dtype=torch.float64).reshape(-1)
        if t.numel() != c.shape[1]:
            raise UserError(f"target has {t.numel()} entries, contributions have {c.shape[1]} per candidate")
        return cls(name, c @ c.T, c @ t, t @ t, scores, depth)
