"""The original network's consumer outputs recorded by one walk (the error-curve pass) for the next (pruning).

Both passes walk the original network over the same batches and visit the groups in the same order, and
the second only needs the original network for its consumers' outputs (the targets; its consumer inputs
come from the pruned network). Recorded during the first walk, the targets make the second walk run the
pruned network alone -- the same tensors, so the same statistics bit for bit. The cache is all or
nothing: once the recorded bytes would pass ``budget`` it drops everything and records no more (the
second walk then runs the original network as before). ResNet-50's internal groups at 64 images of 224
px: ~1.8 GB.
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
    """``values[visit index][batch] = {consumer target: original output}`` within ``budget`` bytes (module docstring)."""

    def __init__(self, budget: int) -> None:
        self.budget, self.bytes = budget, 0
        self.values: dict[int, list[dict[str, torch.Tensor]]] | None = {} if budget > 0 else None

    def record(self, index: int, outputs: dict[str, tuple[torch.Tensor, bool]]) -> None:
        """One batch of visit ``index``: ``{target: (output, copy it)}``."""
        if self.values is None:
            return
        self.bytes += sum(v.numel() * v.element_size() for v, _ in outputs.values())
        if self.bytes > self.budget:
            self.values = None  # over budget: drop everything
            return
        self.values.setdefault(index, []).append({t: v.clone() if copy else v for t, (v, copy) in outputs.items()})

    def take(self, index: int, batches: int) -> list[dict[str, torch.Tensor]] | None:
        """Visit ``index``'s recorded outputs for all ``batches`` (and forget them); None if not recorded."""
        if self.values is None or len(self.values.get(index, [])) != batches:
            return None
        return self.values.pop(index)
