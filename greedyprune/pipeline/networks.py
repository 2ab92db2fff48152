"""The two networks a pruning run works on: copies of the user's model, on the device, without user hooks.

The user's model is never modified. ``original`` stays as it was (the targets); ``pruned`` is pruned in
place. Hooks the user registered (forward, pre-forward, backward) are left out of both copies: they do
not fire during pruning and are not carried into the pruned model. The traced graph and the channel
groups come from one trace of the model, shared by both copies (module names are the same).
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import fx, nn

from ..errors import UserError
from ..graph import find_groups
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


def _resnet(model: nn.Module) -> bool:
    from torchvision.models import ResNet
    return isinstance(model, ResNet)


def _mobilenet(model: nn.Module) -> bool:
    from torchvision.models import MobileNetV2, MobileNetV3
    return isinstance(model, (MobileNetV2, MobileNetV3))


# family -> (test, names of the groups ``streams=False`` prunes): the block-internal groups (ResNet's
# ``layerN.M.convK``, MobileNet's ``features.N.hidden`` from the aliases in graph/names.py), not the stem,
# the last conv or the classifier's hidden layer, which tracing also finds as single-producer groups;
# models of other families prune every internal group
INTERNAL_ONLY: dict[str, tuple[Callable[[nn.Module], bool], str]] = {
    "torchvision-resnet": (_resnet, r"layer\d+\.\d+\.conv\d+"),
    "torchvision-mobilenet": (_mobilenet, r"features\.\d+\.hidden"),
}


def is_internal(model: nn.Module, group: ChannelGroup) -> bool:
    """Whether ``streams=False`` prunes ``group`` (see ``INTERNAL_ONLY``)."""
    if group.kind != "internal":
        return False
    for test, names in INTERNAL_ONLY.values():
        if test(model):
            return re.fullmatch(names, group.name) is not None
    return True


@dataclass
class Networks:
    """The original and the to-be-pruned copy, the traced graph's nodes and every channel group found."""

    original: nn.Module
    pruned: nn.Module
    nodes: list[fx.Node]
    groups: list[ChannelGroup]

    @classmethod
    def build(cls, model: nn.Module, device: torch.device, example: torch.Tensor) -> "Networks":
        original = copy_without_hooks(model, device)
        nodes, groups = trace_groups(original, example)
        return cls(original, copy_without_hooks(model, device), nodes, groups)

    def prunable(self, streams: bool) -> list[ChannelGroup]:
        """The groups to prune: block-internal ones, or (``streams``) every group, streams and block outputs too."""
        chosen = [g for g in self.groups if streams or is_internal(self.original, g)]
        if not chosen:
            name = type(self.original).__name__
            if not streams and self.groups:
                raise UserError(f"{name} has no prunable internal channel groups; prune its streams and block "
                                f"outputs too (streams=True, --streams)")
            raise UserError(f"nothing to prune in {name}: every channel set is frozen (a single channel, or "
                            f"coupled in a way that cannot be removed); `greedyprune info MODEL` lists the reasons")
        return chosen


def trace_groups(model: nn.Module, example: torch.Tensor) -> tuple[list[fx.Node], list[ChannelGroup]]:
    """The traced graph's nodes (topological order) and every channel group of ``model`` (on ``example``)."""
    traced = find_groups(model, example[:1], streams=True)
    return traced.nodes, traced.groups
