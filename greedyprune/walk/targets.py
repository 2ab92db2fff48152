"""The original network's consumer outputs recorded by one walk (the error-curve pass) for the next (pruning).

Both passes walk the original network over the same batches and visit the groups in the same order, and
the second only needs the original network for its consumers' outputs (the targets; its consumer inputs
come from the pruned network). Recorded during the first walk, the targets make the second walk run the
pruned network alone from the first recorded visit on -- the same tensors, so the same statistics bit for
bit.

What is kept within ``budget`` bytes is a **suffix** of the visits: the record adds each visit's outputs
in walking order and, once over budget, forgets the earliest visits (whole visits; a visit forgotten while
being recorded records no more batches). The second walk runs the original network up to the first
recorded visit and replays from there (:meth:`TargetCache.covers`), so a suffix saves the original's run
from that visit to the end, where a prefix would save nothing (reaching the first unrecorded visit runs
the original through everything before it anyway). Late layers have small outputs for their cost:
ResNet-50 with residual streams at 64 images of 224 px records 2.5 GB in all, and the last 2 GiB of it
start at the second visit of ``layer1``; its internal groups alone record ~1.8 GB (everything).
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

IN_PLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


def mutated_later(node: fx.Node, root: nn.Module) -> bool:
    """Whether some reader of ``node``'s value may change it in place (an ``inplace=True`` module such as
    ``ReLU(inplace=True)``, an ``x.add_()``-style method, ``x += y``): then a recorded value is copied."""
    for user in node.users:
        if user.op == "call_module" and getattr(root.get_submodule(user.target), "inplace", False):
            return True
        if user.op == "call_method" and str(user.target).endswith("_"):
            return True
        if user.op == "call_function" and (user.target in IN_PLACE_FUNCTIONS or user.kwargs.get("inplace", False)
                                           or getattr(user.target, "__name__", "").endswith("_")):
            return True
    return False


class TargetCache:
    """``values[visit index][batch] = {consumer target: original output}`` for the latest visits that fit
    ``budget`` bytes (module docstring)."""

    def __init__(self, budget: int) -> None:
        self.budget, self.bytes = budget, 0
        self.values: dict[int, list[dict[str, torch.Tensor]]] = {}
        self.sizes: dict[int, int] = {}  # bytes recorded per visit
        self.forgotten = -1  # visits up to this index are not recorded (forgotten to make room for later ones)

    def record(self, index: int, outputs: dict[str, tuple[torch.Tensor, bool]]) -> None:
        """One batch of visit ``index`` (visits in increasing order): ``{target: (output, copy it)}``."""
        if index <= self.forgotten:
            return
        size = sum(v.numel() * v.element_size() for v, _ in outputs.values())
        if size > self.budget:  # this batch alone does not fit: nothing up to here can be kept
            self._forget_through(index)
            return
        self.values.setdefault(index, []).append({t: v.clone() if copy else v for t, (v, copy) in outputs.items()})
        self.sizes[index] = self.sizes.get(index, 0) + size
        self.bytes += size
        while self.bytes > self.budget:  # forget the earliest visits (whole), possibly this one
            self._forget_through(next(iter(self.values)))

    def _forget_through(self, index: int) -> None:
        """Forget every visit up to ``index`` and record none of them again."""
        for i in [i for i in self.values if i <= index]:
            del self.values[i]
            self.bytes -= self.sizes.pop(i)
        self.forgotten = max(self.forgotten, index)

    @property
    def recorded(self) -> bool:
        """Whether any visit's outputs are kept."""
        return bool(self.values)

    def covers(self, index: int) -> bool:
        """Whether visit ``index``'s outputs are kept (then every later visit's are too: a suffix)."""
        return index in self.values

    def take(self, index: int, batches: int) -> list[dict[str, torch.Tensor]] | None:
        """Visit ``index``'s recorded outputs for all ``batches`` (and forget them); None if not recorded."""
        if len(self.values.get(index, [])) != batches:
            return None
        self.bytes -= self.sizes.pop(index)
        return self.values.pop(index)
