"""Channel slots and their union-find: which slots are one and the same channel.

A *slot* is one output channel of one producer (a Conv2d/Linear row), one element of a parameter, or
the one slot standing for the model input or an opaque value. Channel propagation labels every element
of every traced tensor with the slot it belongs to (an integer *id tensor* of the value's shape, ``-1``
where no channel is tracked) and unions slots that must be removed together (the operands of an
addition, a squeeze-excitation scale and the channels it multiplies). A *channel* is a class of the
union-find; a slot may be *frozen* with a reason (it must never be removed), which freezes its class.

Id tensors are stored with the slots' roots at the time they were made; :meth:`Slots.find` maps them to
current roots.
"""

from __future__ import annotations

import torch

NONE = -1  # an element that carries no tracked channel


class Slots:
    """Union-find over integer slots, with a frozen reason per slot."""

    def __init__(self) -> None:
        self.parent = torch.zeros(0, dtype=torch.long)
        self.reasons: dict[int, str] = {}

    def new(self, count: int) -> torch.Tensor:
        """``count`` fresh slots (a LongTensor of their ids)."""
        start = self.parent.numel()
        ids = torch.arange(start, start + count)
        self.parent = torch.cat([self.parent, ids])
        return ids

    def find(self, ids: torch.Tensor) -> torch.Tensor:
        """Current roots of ``ids`` (any shape; ``-1`` stays ``-1``): one lookup, since :meth:`union`
        keeps every slot pointing straight at its root."""
        ids = ids.long()
        return torch.where(ids >= 0, self.parent[ids.clamp(min=0)], ids)

    def union(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Make slots ``a[i]`` and ``b[i]`` one channel, for every ``i`` where both are tracked."""
        a, b = a.reshape(-1).long(), b.reshape(-1).long()
        both = (a >= 0) & (b >= 0)
        n = max(self.parent.numel(), 1)
        pairs = (self.find(a[both]) * n + self.find(b[both])).unique()
        x, y = pairs // n, pairs % n
        while True:  # hook each larger root under the smallest root it is paired with, until all pairs agree
            rx, ry = self.find(x), self.find(y)
            differ = rx != ry
            if not bool(differ.any()):
                return
            lo, hi = torch.minimum(rx[differ], ry[differ]), torch.maximum(rx[differ], ry[differ])
            self.parent.scatter_reduce_(0, hi, lo, reduce="amin")
            self._flatten()

    def _flatten(self) -> None:
        """Point every slot at its root (pointer jumping over the whole parent array)."""
        while True:
            up = self.parent[self.parent]
            if torch.equal(up, self.parent):
                return
            self.parent = up

    def freeze(self, ids: torch.Tensor, reason: str) -> None:
        """Mark the slots in ``ids`` frozen (the first reason given for a slot is kept)."""
        for slot in ids[ids >= 0].unique().tolist():
            self.reasons.setdefault(int(slot), reason)

    def frozen_roots(self) -> dict[int, list[str]]:
        """Root -> the distinct reasons its frozen slots were given (in slot order)."""
        out: dict[int, list[str]] = {}
        if not self.reasons:
            return out
        slots = torch.tensor(sorted(self.reasons))
        for slot, root in zip(slots.tolist(), self.find(slots).tolist()):
            reasons = out.setdefault(root, [])
            if self.reasons[slot] not in reasons:
                reasons.append(self.reasons[slot])
        return out
