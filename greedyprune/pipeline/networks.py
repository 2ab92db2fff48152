"""The two networks a pruning run works on: copies of the user's model, on the device, without user hooks.

The user's model is never modified. ``original`` stays as it was (the targets); ``pruned`` is pruned in
place. Hooks the user registered (forward, pre-forward, backward) are left out of both copies: they do
not fire during pruning and are not carried into the pruned model. The traced graph and the channel
groups come from one trace of the model, shared by both copies (module names are the same).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import fx, nn

from ..errors import UserError
from ..graph.groups import ChannelGroup

# the per-module hook tables of torch.nn.Module that a copy must not inherit
HOOK_TABLES = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")


@contextmanager
def hooks_set_aside(model: nn.Module) -> Iterator[None]:
    """Temporarily empty every module's hook tables (restored on exit), e.g. while the model is copied."""
    saved = []
    for module in model.modules():
        for table in HOOK_TABLES:
            value = getattr(module, table, None)
            if isinstance(value, dict) and value:
                saved.append((module, table, value))
                setattr(module, table, OrderedDict())
    try:
        yield
    finally:
        for module, table, value in saved:
            setattr(module, table, value)


def copy_without_hooks(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of ``model`` in eval mode on ``device``, with none of its hooks."""
    with hooks_set_aside(model):
        return copy.deepcopy(model).to(device).eval()


def device_of(model: nn.Module) -> torch.device:
    """Where ``model`` lives (its first parameter or buffer; CPU for a model with neither)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


@dataclass
class Networks:
    """The original and the to-be-pruned copy, the traced graph's nodes and every channel group found."""

    original: nn.Module
    pruned: nn.Module
    nodes: list[fx.Node]
    groups: list[ChannelGroup]

    @classmethod
    def build(cls, model: nn.Module, device: torch.device) -> "Networks":
        original = copy_without_hooks(model, device)
        nodes, groups = trace_groups(original)
        return cls(original, copy_without_hooks(model, device), nodes, groups)

    def prunable(self, streams: bool) -> list[ChannelGroup]:
        """The groups to prune: kind ``internal`` only, or (``streams``) also residual streams/block outputs."""
        chosen = [g for g in self.groups if streams or g.kind == "internal"]
        if not chosen:
            kinds = "channel groups" if streams else "internal channel groups (try streams=True)"
            raise UserError(f"{type(self.original).__name__} has no prunable {kinds}")
        return chosen


def trace_groups(model: nn.Module) -> tuple[list[fx.Node], list[ChannelGroup]]:
    """The traced graph's nodes (topological order) and the model's channel groups."""
    from .legacy import legacy_trace
    return legacy_trace(model)
