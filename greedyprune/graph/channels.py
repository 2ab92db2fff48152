"""Propagate channel identity through a traced graph (see :mod:`greedyprune.graph.slots`).

Every node gets an id tensor (a tuple of them for ``chunk``/``split``; None for non-tensors) and the
layers the channels pass through are recorded as :class:`LayerUse` s: producers (Conv2d/Linear output
rows, fresh slots), consumers (their input columns), norms, depthwise convs and parameters. Grouping the
channels into :class:`~greedyprune.graph.groups.ChannelGroup` s is :mod:`greedyprune.graph.assemble`'s.
Rules per operation: :mod:`greedyprune.graph.ops` (functions, methods) and
:mod:`greedyprune.graph.layers` (torch layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from .idtensor import (
    AxisIds,
    Ids,
    channel_axis,
    compress,
    constant,
    on_axis,
    slot_set,
    tracked,
)
from .ops import (
    CONCAT,
    ELEMENTWISE,
    REDUCE,
    SHAPE,
    SPATIAL,
    UNARY,
    op_name,
)
from .rules import OperationRules, _tensors
from .slots import Slots
from .trace import Traced


@dataclass
class LayerUse:
    """One place the channels pass through: ``slots`` along the layer's axis (a parameter: its shape)."""

    target: str
    role: str  # producer, consumer, norm, depthwise, param
    node: int
    slots: torch.Tensor
    partitions: int = 1
    layer_norm: bool = False


class Propagation(OperationRules):
    """Walks the traced nodes once, filling :attr:`ids`, :attr:`uses` and the union-find :attr:`slots`."""

    def __init__(self, traced: Traced) -> None:
        self.traced, self.gm = traced, traced.graph_module
        self.slots = Slots()
        self.ids: dict[str, Any] = {}
        self.uses: list[LayerUse] = []
        self.gate_slots: set[int] = set()  # slots of a tensor multiplying the tensor it was computed from
        self.index = 0
        self.calls: dict[str, int] = {}
        for n in traced.nodes:
            if n.op == "call_module":
                self.calls[n.target] = self.calls.get(n.target, 0) + 1

    # helpers ----------------------------------------------------------------------------------------
    def value(self, node: Any) -> Any:
        return self.traced.values.get(node.name) if isinstance(node, fx.Node) else node

    def roots(self, ids: Ids) -> Ids:
        if isinstance(ids, AxisIds):
            return AxisIds(self.slots.find(ids.slots), ids.axis, ids.shape)
        return self.slots.find(ids).contiguous()

    def node_ids(self, arg: Any) -> Any:
        """The ids of a graph argument, at their current roots (None for constants and non-tensors)."""
        if isinstance(arg, fx.Node):
            return self._current(self.ids.get(arg.name))
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.node_ids(a) for a in arg)
        return None

    def _current(self, ids: Any) -> Any:
        if isinstance(ids, (torch.Tensor, AxisIds)):
            return self.roots(ids)
        if isinstance(ids, tuple):
            return tuple(self._current(i) for i in ids)
        return ids

    def freeze(self, ids: Ids, reason: str) -> None:
        self.slots.freeze(ids.slots if isinstance(ids, AxisIds) else ids, reason)

    def opaque(self, node: fx.Node, reason: str) -> Any:
        """Freeze every channel ``node`` reads; its output holds fresh frozen channels.

        An output shaped like the first input that carries channels gets one frozen slot per channel on
        the same axis (``MultiheadAttention``'s output joins the residual stream channel by channel);
        any other output is one frozen slot."""
        inputs = [i for i in _tensors(self.node_ids(list(node.args) + list(node.kwargs.values()))) if tracked(i)]
        for ids in inputs:
            self.freeze(ids, reason)
        value = self.traced.values.get(node.name)
        axis = channel_axis(inputs[0]) if inputs and len(slot_set(inputs[0])) > 1 else None
        return self.fresh_frozen(value, reason, inputs[0].shape if axis is not None else None, axis)

    def fresh_frozen(self, value: Any, reason: str, like: torch.Size | None = None, axis: int | None = None) -> Any:
        """Fresh frozen ids for ``value``: one slot per index of ``axis`` for tensors shaped ``like``, else one."""
        if isinstance(value, torch.Tensor):
            if like is not None and axis is not None and value.shape == like:
                fresh = self.slots.new(value.shape[axis])
                self.slots.freeze(fresh, reason)
                return on_axis(fresh, axis, value.shape)
            slot = self.slots.new(1)
            self.slots.freeze(slot, reason)
            return constant(int(slot), value.shape)
        if isinstance(value, (tuple, list)):
            return tuple(self.fresh_frozen(v, reason, like, axis) for v in value)
        return None

    def shape_ok(self, out: Any) -> bool:
        """Every tensor in ``out`` carries its channels on one axis (or none)."""
        return not any(isinstance(o, (torch.Tensor, AxisIds)) and tracked(o) and channel_axis(o) is None
                       for o in _tensors(out))

    def use(self, target: str, role: str, slots: torch.Tensor, **kw: Any) -> None:
        self.uses.append(LayerUse(target, role, self.index, slots, **kw))

    # the walk ---------------------------------------------------------------------------------------
    def run(self) -> Propagation:
        from .layers import visit_layer
        for index, node in enumerate(self.traced.nodes):
            self.index = index
            value = self.traced.values.get(node.name)
            if node.op == "placeholder":
                self.ids[node.name] = self.fresh_frozen(value, "the model's input")
            elif node.op == "get_attr":
                self.ids[node.name] = self.attribute(node, value)
            elif node.op == "call_module":
                self.ids[node.name] = visit_layer(self, node, self.gm.get_submodule(node.target))
            elif node.op in ("call_function", "call_method"):
                self.ids[node.name] = self.function(node, value)
            elif node.op == "output":
                outputs = [node.args[0], *self.traced.extra_outputs]
                for ids in _tensors(self.node_ids(outputs)):
                    if tracked(ids):
                        self.freeze(ids, "the model's output (class logits)")
        return self

    def attribute(self, node: fx.Node, value: Any) -> Any:
        """A parameter or buffer: one fresh slot per element, recorded as a possible carrier."""
        if not isinstance(value, torch.Tensor):
            return None
        slots = self.slots.new(value.numel()).reshape(value.shape)
        try:
            self.gm.get_parameter(node.target)
        except AttributeError:
            try:
                self.gm.get_buffer(node.target)
            except AttributeError:
                self.slots.freeze(slots, f"a constant tensor {node.target} baked into the trace")
                return compress(slots)
        self.use(node.target, "param", slots)
        return compress(slots)

    def function(self, node: fx.Node, value: Any) -> Any:
        name = op_name(node.target)
        is_tensor = isinstance(value, torch.Tensor) or (
            isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value))
        inputs = [i for i in _tensors(self.node_ids(list(node.args) + list(node.kwargs.values()))) if tracked(i)]
        if not is_tensor:
            return None  # sizes, shapes, asserts: read the channels' count, not their values
        if not inputs:
            return self.fresh_frozen(value, f"a tensor created by {name}") if name not in UNARY else None
        if name in UNARY:
            first = self.node_ids(node.args[0]) if node.args else inputs[0]
            return first if tracked(first) and first.shape == value.shape else self.opaque(node, f"{name} changes shape")
        if name in ELEMENTWISE:
            return self.elementwise(node, name, value)
        if name in SPATIAL:
            return self.spatial(node, self.node_ids(node.args[0]), value, name)
        if name in REDUCE:
            return self.reduce(node, name, value)
        if name in CONCAT:
            return self.concat(node, name, value)
        if name in SHAPE:
            return self.shape(node, name, value)
        return self.opaque(node, f"read by {name} (an operation greedyprune does not prune through)")
