"""Partial forward passes of a traced model: the values at a graph cut once, then only the rest, many times.

Built on the graph walker's primitives (:mod:`greedyprune.walk.execute`): the *cut* at node ``i`` is every
value computed before ``i`` and read at or after it. ``values(x)`` runs the nodes up to the cut once;
``run(cut)`` / ``logits(cut)`` run only the nodes from the cut to the output, on the live model (partly
pruned, hooked: ``call_module`` looks modules up by name). Used by ``ye2020`` (one partial forward per
candidate) and the global refit (evaluations skip the layers before the first refit parameter).
"""

from __future__ import annotations

import torch
from torch import fx, nn

from .walk.execute import execute, live_at, make_plan


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

    def run(self, cut: dict[fx.Node, object]) -> torch.Tensor:
        """The output from the cut's values (with autograd, for training the layers after the cut)."""
        return execute(self.suffix, cut, self.model)[self.output]

    @torch.no_grad()
    def logits(self, cut: dict[fx.Node, object], copies: int = 1) -> torch.Tensor:
        """The output from the cut's values; ``copies > 1`` stacks the batch that many times (one pass)."""
        if copies > 1:
            cut = {n: v.repeat(copies, *([1] * (v.dim() - 1))) if isinstance(v, torch.Tensor) and v.dim() > 0 else v
                   for n, v in cut.items()}
        return self.run(cut)
