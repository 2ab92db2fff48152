"""Partial forward passes for ``ye2020``: the values at a layer's cut once per batch, then the rest per candidate.

Built on the graph walker's primitives (:mod:`greedyprune.walk.execute`): the *cut* at node ``i`` is every
value computed before ``i`` and read at or after it. ``values(x)`` runs the nodes up to the cut once;
``logits(cut)`` runs only the nodes from the cut to the output, on the live (partly pruned, hooked) model.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from ..graph.groups import ChannelGroup
from ..pipeline.networks import is_internal
from ..walk.execute import execute, live_at, make_plan
from .layers import Layer, make_layer


class CutRunner:
    """Runs ``model`` (traced as ``nodes``) up to the cut at node ``start`` and from there to the output."""

    def __init__(self, model: nn.Module, nodes: list[fx.Node], pos: dict[fx.Node, int], start: int) -> None:
        self.model = model
        self.input = next(n for n in nodes if n.op == "placeholder")
        self.output = next(n for n in nodes if n.op == "output")
        cut = live_at(nodes, start, pos)
        self.prefix = make_plan(nodes, 0, cut, pos)
        self.suffix = make_plan(nodes, start, [self.output], pos)

    @torch.no_grad()
    def values(self, x: torch.Tensor) -> dict[fx.Node, object]:
        """The cut's values for input ``x`` (the model's input included)."""
        env = {self.input: x}
        return {**execute(self.prefix, env, self.model), self.input: x}

    @torch.no_grad()
    def logits(self, cut: dict[fx.Node, object], copies: int = 1) -> torch.Tensor:
        """The output from the cut's values; ``copies > 1`` stacks the batch that many times (one pass)."""
        if copies > 1:
            cut = {n: v.repeat(copies, *([1] * (v.dim() - 1))) if isinstance(v, torch.Tensor) and v.dim() > 0 else v
                   for n, v in cut.items()}
        return execute(self.suffix, cut, self.model)[self.output]


def ye_groups(model: nn.Module, groups: list[ChannelGroup], streams: bool) -> list[ChannelGroup]:
    """The groups the released procedure prunes: the block-internal ones (``streams=False`` of the pipeline)
    and, with ``streams``, the groups of kind ``stream`` (MobileNetV2: the 24/32/64/96/160 block outputs),
    except a stream the stem produces (the released code never prunes the stem)."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    stem = convs[0] if convs else None
    return [g for g in groups if is_internal(model, g)
            or (streams and g.kind == "stream" and all(p.target != stem for p in g.producers))]


def layers_in_order(model: nn.Module, nodes: list[fx.Node], groups: list[ChannelGroup], streams: bool,
                    pos: dict[fx.Node, int]) -> list[Layer]:
    """:class:`Layer` s from input to output (by the first node each group touches; a block's hidden
    channels come before the block output they feed)."""
    chosen = ye_groups(model, groups, streams)
    return sorted((make_layer(model, g, nodes, pos) for g in chosen), key=lambda layer: (layer.group.span[0],
                                                                                         layer.name))

