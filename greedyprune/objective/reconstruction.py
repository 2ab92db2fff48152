"""The reconstruction objective: keep the channels whose weighted sum best rebuilds every consumer's output.

For a group with consumers ``k = 1..K`` (see :mod:`.consumer` for one consumer's term), keeping the
channels ``S`` with one coefficient ``g_i`` per kept channel (folded into every consumer) costs

    ``Loss(g) = sum_k || t'_k - sum_{i in S} g_i c_{k,i} ||^2 = E - 2 b.g + g.G.g``,
    ``G = sum_k G_k``, ``b = sum_k b_k``, ``E = sum_k E_k``

(centred: each consumer's bias offset absorbs its mean). Gate consumers (squeeze-excitation's first
conv, :attr:`~greedyprune.graph.groups.Consumer.gate`) are not in the sum: they only lose the removed
channels, and their offset ``W[:, removed] mean(x_removed)`` keeps their mean output.
"""

from __future__ import annotations

import torch
from torch import nn

from ..distributed import all_reduce_sum
from ..graph.groups import ChannelGroup
from .base import ConsumerView, GroupProblem, register
from .consumer import ConsumerTerm, channel_axis


class GateTerm:
    """Mean of a gate consumer's input per group column (float64 sums), for its offset."""

    def __init__(self, view: ConsumerView) -> None:
        self.view, self.total, self.count = view, None, 0
        self.axis = channel_axis(view.module)

    def add_batch(self, x: torch.Tensor) -> None:
        axis = self.axis % x.dim()
        cols = x.index_select(axis, self.view.columns.reshape(-1).to(x.device))
        dims = [d for d in range(cols.dim()) if d != axis]
        s = cols.sum(dims, dtype=torch.float64)
        self.total = s if self.total is None else self.total + s
        self.count += cols.numel() // cols.shape[axis]

    def offset(self, removed: torch.Tensor) -> torch.Tensor:
        """``W[:, removed columns] @ mean(x_removed)`` over the current rows (a conv's kernel summed)."""
        module = self.view.module
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.total.device)
        total = self.total.clone()
        all_reduce_sum(total, count)
        means = (total / count.clamp_min(1.0)).reshape(self.view.columns.shape)  # (width, block)
        w = module.weight.detach().to(torch.float64)
        w = w.reshape(w.shape[0], w.shape[1], -1).sum(2) if isinstance(module, nn.Conv2d) else w
        cols = self.view.columns[removed].reshape(-1).to(w.device)
        return w[:, cols] @ means[removed].reshape(-1).to(w.device)


@register("reconstruction")
class ReconstructionObjective:
    """Sum over the group's consumers of the centred reconstruction loss (module docstring)."""

    def __init__(self, group: ChannelGroup, views: list[ConsumerView], product_dtype: torch.dtype,
                 own_targets: bool = False) -> None:
        """``own_targets``: every consumer's target is its own output on its input (the unpruned network of the
        error-curve pass; :class:`~.consumer.ConsumerTerm`)."""
        self.group = group
        self.terms = {v.consumer.target: ConsumerTerm(v, product_dtype, group.name, own_targets) for v in views
                      if not v.consumer.gate}
        self.gates = {v.consumer.target: GateTerm(v) for v in views if v.consumer.gate}
        if not self.terms:
            raise ValueError(f"group {group.name!r} has no consumer outside squeeze-excitation gates")

    def add_batch(self, values: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        for target, term in self.terms.items():
            x, y = values[target]
            term.add_batch(x, y)
        for target, gate in self.gates.items():
            gate.add_batch(values[target][0])

    def problem(self) -> GroupProblem:
        gram = cross = energy = reference = None
        samples = 0
        for term in self.terms.values():
            g, b, e, r, n = term.problem(self.group.width)
            if gram is None:
                gram, cross, energy, reference = g, b, e, r
            else:
                gram, cross = gram + g.to(gram.device), cross + b.to(cross.device)
                energy, reference = energy + e.to(energy.device), reference + r.to(reference.device)
            samples += n
        return GroupProblem(gram, cross, energy, reference, samples)

    def offsets(self, kept: torch.Tensor, coefficients: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {target: term.offset(kept, coefficients) for target, term in self.terms.items()}
        removed = torch.ones(self.group.width, dtype=torch.bool)
        removed[kept.cpu()] = False
        out.update({target: gate.offset(removed) for target, gate in self.gates.items()})
        return out

    def free(self) -> None:
        for term in self.terms.values():
            term.free()
