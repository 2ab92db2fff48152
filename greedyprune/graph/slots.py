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
        """Current roots of ``ids`` (any shape; ``-1`` stays ``-1``), compressing the paths walked."""
        ids = ids.long()
        if ids.numel() > 256:  # id tensors repeat few slots many times: resolve each distinct slot once
            distinct, inverse = ids.unique(return_inverse=True)
            if distinct.numel() * 2 <= ids.numel():
                return self.find(distinct)[inverse]
        tracked = ids >= 0
        roots = ids.clone()
        current = ids[tracked]
        while True:
            up = self.parent[current]
            if torch.equal(up, current):
                break
            self.parent[current] = self.parent[up]
            current = up
        roots[tracked] = current
        return roots

    def union(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Make slots ``a[i]`` and ``b[i]`` one channel, for every ``i`` where both are tracked."""
        a, b = a.reshape(-1).long(), b.reshape(-1).long()
        both = (a >= 0) & (b >= 0)
        n = max(self.parent.numel(), 1)
        pairs = (a[both] * n + b[both]).unique()
        x, y = pairs // n, pairs % n
        while True:  # hook each larger root under the smallest root it is paired with, until all pairs agree
            rx, ry = self.find(x), self.find(y)
            differ = rx != ry
            if not bool(differ.any()):
                return
            lo, hi = torch.minimum(rx[differ], ry[differ]), torch.maximum(rx[differ], ry[differ])
            self.parent.scatter_reduce_(0, hi, lo, reduce="amin")

    def freeze(self, ids: torch.Tensor, reason: str) -> None:
        """Mark the slots in ``ids`` frozen (the first reason given for a slot is kept)."""
        for slot in ids[ids >= 0].unique().tolist():
            self.reasons.setdefault(int(slot), reason)

    def frozen_roots(self) -> dict[int, str]:
        """Root -> reason for every frozen channel (the first frozen slot's reason, by slot id)."""
        out: dict[int, str] = {}
        if not self.reasons:
            return out
        slots = torch.tensor(sorted(self.reasons))
        for slot, root in zip(slots.tolist(), self.find(slots).tolist()):
            out.setdefault(root, self.reasons[slot])
        return out
