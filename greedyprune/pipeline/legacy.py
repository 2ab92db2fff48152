"""TEMPORARY bridge: the hand-written adapters' groups in the traced-group contract, until tracing lands.

Each adapter group becomes a :class:`~greedyprune.graph.groups.ChannelGroup` of kind ``internal``: its
``out`` slice on the score layer is the producer, the other slices carriers (BatchNorm -> ``norm``,
depthwise, squeeze-excitation's second conv -> ``out`` rows), the consumer a :class:`Consumer` and
squeeze-excitation's first conv a gate consumer. The graph is ``torch.fx.symbolic_trace``'s.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from ..adapters import find_adapter
from ..graph.groups import AxisRef, ChannelGroup, Consumer

KINDS = {"out": "out", "bn": "norm", "depthwise": "depthwise"}


def _positions(width: int, block: int = 1) -> torch.Tensor:
    return torch.arange(width * block).reshape(width, block)


def legacy_groups(model: nn.Module) -> list[ChannelGroup]:
    names = {module: name for name, module in model.named_modules()}
    groups = []
    for old in find_adapter(model).groups(model):
        width = old.width
        producers, carriers, consumers = [], [], []
        for s in old.slices:
            if s.kind == "in":
                consumers.append(Consumer(names[s.module], _positions(width, s.block), names[s.module], gate=True))
            elif s.module is old.score_module:
                producers.append(AxisRef(names[s.module], "out", _positions(width)))
            else:
                carriers.append(AxisRef(names[s.module], KINDS[s.kind], _positions(width)))
        consumers.insert(0, Consumer(names[old.consumer], _positions(width, old.consumer_block), names[old.bias_sink]))
        groups.append(ChannelGroup(old.name, width, "internal", producers, carriers, consumers, (0, 0),
                                   names[old.score_module]))
    return groups


def legacy_trace(model: nn.Module) -> tuple[list[fx.Node], list[ChannelGroup]]:
    groups = legacy_groups(model)
    return list(fx.symbolic_trace(model).graph.nodes), groups
