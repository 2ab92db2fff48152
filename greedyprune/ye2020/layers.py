"""The layers ``ye2020`` grows: traced channel groups, where their mask sits, how the result is made physical.

A :class:`Layer` is one traced channel group (:mod:`greedyprune.graph`). During selection its channels
are multiplied by a weight vector ``w`` (0 for a channel not chosen; ``N/n`` for each of the ``n``
chosen of ``N``), the released code's masks:

* ``internal`` group (e.g. MobileNetV2 hidden channels): ``w`` scales the group's input columns of
  every consumer (the mask after the depthwise ReLU6); a squeeze-excitation gate sees ``1[w > 0]``
  (its columns are removed unscaled by the surgery);
* ``stream`` group (block outputs joined by residual additions): ``w`` scales every producer's output
  after the BatchNorm that alone reads it (the mask before the addition), tied over the producers
  that share the channels, so a channel can be removed physically.

:meth:`Layer.materialize` removes the unchosen channels (:func:`greedyprune.surgery.apply_selection`) and
folds ``N/n`` into the consumer columns (internal) or the producers' BatchNorm affine (stream): for the
released MobileNetV2 groups the smaller model computes exactly what the masked one did. ``start`` is the
first graph node the mask affects: values are cached at that cut and each candidate runs the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.utils.hooks import RemovableHandle

from ..graph.groups import ChannelGroup
from ..surgery import Layout, apply_selection


class Mask:
    """The weights a layer's hooks apply: ``value`` is ``(N,)`` (one weighting for the whole batch) or
    ``(B, N)`` (one per image: several candidates scored in one stacked forward pass)."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value


def _scaled(x: torch.Tensor, mask: Mask, index: torch.Tensor, size: int, binary: bool = False) -> torch.Tensor:
    """``x`` with its dim-1 entries ``index[c, :]`` multiplied by ``w[c]`` (the rest by 1)."""
    w = mask.value.to(x)
    w = (w > 0).to(x) if binary else w
    rows = w.reshape(-1, w.shape[-1])
    full = torch.ones(rows.shape[0], size, dtype=x.dtype, device=x.device)
    full[:, index.reshape(-1).to(x.device)] = rows.repeat_interleave(index.shape[1], dim=1)
    return x * full.view(*full.shape, *([1] * (x.dim() - 2)))


@dataclass
class Layer:
    group: ChannelGroup
    start: int                               # first node the mask affects (the cut)
    hooked: list[str] = field(default_factory=list)   # modules whose input (internal) / output (stream) is scaled

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def kind(self) -> str:
        return self.group.kind

    @property
    def width(self) -> int:
        return self.group.width

    def install(self, model: nn.Module, layout: Layout, mask: Mask) -> list[RemovableHandle]:
        """Hooks on ``model`` multiplying the group's channels by ``mask.value``."""
        handles = []
        if self.kind == "stream":
            for target in self.hooked:
                rows = layout.current(target, 0, self._rows(target))
                size = layout.size(target, 0)
                handles.append(model.get_submodule(target).register_forward_hook(
                    lambda m, a, out, rows=rows, size=size: _scaled(out, mask, rows, size)))
            return handles
        for consumer in self.group.consumers:
            cols = layout.current_columns(consumer)
            size = layout.size(consumer.target, 1)
            handles.append(model.get_submodule(consumer.target).register_forward_pre_hook(
                lambda m, a, cols=cols, size=size, gate=consumer.gate: (_scaled(a[0], mask, cols, size, gate),)))
        return handles

    def _rows(self, target: str) -> torch.Tensor:
        """Original output positions of the group's channels in module ``target`` (a producer or its norm)."""
        ref = next(r for r in [*self.group.producers, *self.group.carriers] if r.target == target)
        return ref.positions

    def materialize(self, model: nn.Module, layout: Layout, kept: torch.Tensor, scale: float) -> None:
        """Keep channels ``kept`` (sorted), each weighted ``scale``, physically (see the module docstring)."""
        if self.kind != "stream":
            apply_selection(model, layout, self.group, kept, torch.full((kept.numel(),), float(scale)))
            return
        apply_selection(model, layout, self.group, kept)
        with torch.no_grad():
            for target in self.hooked:
                module = model.get_submodule(target)
                rows = layout.current(target, 0, self._rows(target)[kept]).reshape(-1).to(module.weight.device)
                for tensor in (module.weight, module.bias):
                    if tensor is not None:
                        tensor[rows] *= scale


def _call_sites(nodes: list[fx.Node]) -> dict[str, fx.Node]:
    return {str(n.target): n for n in nodes if n.op == "call_module"}


def make_layer(model: nn.Module, group: ChannelGroup, nodes: list[fx.Node], pos: dict[fx.Node, int]) -> Layer:
    """The :class:`Layer` of a traced group: its mask modules and the first node they affect."""
    sites = _call_sites(nodes)
    carried = {r.target for r in group.carriers}
    if group.kind != "stream":
        return Layer(group, min(pos[sites[c.target]] for c in group.consumers))
    hooked = []
    for producer in group.producers:
        users = list(sites[producer.target].users)
        norm = users[0] if len(users) == 1 and users[0].op == "call_module" else None
        is_norm = norm is not None and str(norm.target) in carried and isinstance(
            model.get_submodule(str(norm.target)), nn.modules.batchnorm._BatchNorm)
        hooked.append(str(norm.target) if is_norm else producer.target)
    return Layer(group, min(pos[sites[t]] for t in hooked), hooked)  # the hooked calls re-run from the cut
