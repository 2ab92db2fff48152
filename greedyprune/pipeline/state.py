"""What the pipeline remembers between groups: where channels are now, which rows are gone, offsets added.

* :class:`~greedyprune.surgery.Layout` maps original positions to current indices (the surgery keeps it).
* ``removed_rows[target]``: original output rows of a layer removed by an earlier group. With
  ``materialize=True`` they are physically gone too; with ``materialize=False`` they are still computed
  (zeroed downstream), so a consumer whose rows were pruned must still leave them out of its target.
* ``shift[target]``: the output offsets already added to a consumer (through its bias sink), by original
  row: part of what its other columns contribute when a later group reads it again.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph.groups import ChannelGroup
from ..objective import ConsumerView
from ..surgery import Layout


class PruneState:
    """Layout, removed rows and applied offsets of one partly pruned model (module docstring)."""

    def __init__(self, pruned: nn.Module, original: nn.Module) -> None:
        self.pruned, self.original = pruned, original
        self.layout = Layout(pruned)
        self.removed_rows: dict[str, torch.Tensor] = {}
        self.shift: dict[str, torch.Tensor] = {}

    def kept_rows(self, target: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(current indices, original indices)`` of a layer's output rows that are not pruned."""
        present = self.layout.current_rows(target)
        removed = self.removed_rows.get(target)
        if removed is None:
            return torch.arange(present.numel()), present
        current = (~removed[present]).nonzero().squeeze(1)
        return current, present[current]

    def views(self, group: ChannelGroup) -> list[ConsumerView]:
        """Every consumer of ``group`` as it stands now (see :class:`~greedyprune.objective.ConsumerView`)."""
        views = []
        for consumer in group.consumers:
            module = self.pruned.get_submodule(consumer.target)
            rows, original_rows = self.kept_rows(consumer.target)
            shift = self.shift.get(consumer.target)
            shift = torch.zeros(rows.numel(), dtype=torch.float64) if shift is None else shift[original_rows]
            views.append(ConsumerView(consumer, module, self.original.get_submodule(consumer.target),
                                      self.layout.current_columns(consumer), rows, original_rows, shift))
        return views

    def scores(self, group: ChannelGroup) -> torch.Tensor:
        """L1 norm of each group channel's filter in the score layer (the ``magnitude`` baseline)."""
        ref = next(r for r in group.producers if r.target == group.score)
        rows = self.layout.current_positions(ref)[:, 0]
        w = self.pruned.get_submodule(group.score).weight.detach()
        return w.abs().reshape(w.shape[0], -1).sum(1)[rows.to(w.device)]

    def record(self, group: ChannelGroup, kept: torch.Tensor, offsets: dict[str, torch.Tensor]) -> None:
        """Remember the rows ``group`` removes and the offsets it adds (call before the surgery)."""
        for target, delta in offsets.items():
            present = self.layout.current_rows(target)
            total = self.shift.setdefault(target, torch.zeros(self.layout.original_size(target, 0),
                                                              dtype=torch.float64))
            total[present] += delta.detach().cpu().to(torch.float64)
        removed = torch.ones(group.width, dtype=torch.bool)
        removed[kept.cpu()] = False
        for ref in [*group.producers, *group.carriers]:
            if ref.kind == "param":
                continue
            mask = self.removed_rows.setdefault(ref.target, torch.zeros(self.layout.original_size(ref.target, 0),
                                                                        dtype=torch.bool))
            mask[ref.positions[removed].reshape(-1)] = True
