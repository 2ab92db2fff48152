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

from .idtensor import (AxisIds, Ids, along, broadcast_axes, channel_axis, compress, constant, full, on_axis,
                       slot_set, tracked, varying_axes)
from .ops import CONCAT, ELEMENTWISE, REDUCE, RESHAPES, SELECT, SHAPE, SPATIAL, UNARY, op_name
from .slots import NONE, Slots
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


def _tensors(arg: Any) -> list[Any]:
    if isinstance(arg, (tuple, list)):
        return [t for a in arg for t in _tensors(a)]
    if isinstance(arg, dict):
        return [t for a in arg.values() for t in _tensors(a)]
    return [arg]


def _depends_on(node: fx.Node, ancestor: fx.Node) -> bool:
    """Whether ``ancestor`` is among the inputs ``node`` is computed from (a squeeze-excitation gate
    is computed from the very tensor it multiplies)."""
    seen, todo = set(), [node]
    while todo:
        current = todo.pop()
        for parent in current.all_input_nodes:
            if parent is ancestor:
                return True
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return False


class Propagation:
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
    def run(self) -> "Propagation":
        from .layers import visit_layer
        for self.index, node in enumerate(self.traced.nodes):
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

    def elementwise(self, node: fx.Node, name: str, value: torch.Tensor) -> Any:
        """Join broadcasting operands: an operand repeated along another's channel axis does not join."""
        pairs = [(a, self.node_ids(a)) for a in [*node.args, *node.kwargs.values()]]
        pairs = [(a, i) for a, i in pairs if isinstance(i, (torch.Tensor, AxisIds)) and tracked(i)]
        sources, operands = [a for a, _ in pairs], [i for _, i in pairs]
        shape = value.shape
        aligned = self._aligned(operands, shape)
        compact = aligned is not None
        expanded = None if compact else [torch.broadcast_to(full(i), shape) for i in operands]
        for a in range(len(operands)):
            for b in range(a + 1, len(operands)):
                if broadcast_axes(operands[a], shape) & self._varying(b, aligned, expanded) or \
                        broadcast_axes(operands[b], shape) & self._varying(a, aligned, expanded):
                    continue
                if name in ("mul", "imul", "mul_", "truediv", "div", "itruediv", "div_"):
                    for gate, other in ((a, b), (b, a)):
                        if _depends_on(sources[gate], sources[other]):
                            self.gate_slots |= slot_set(operands[gate])
                if compact:
                    self.slots.union(aligned[a][0], aligned[b][0])
                else:
                    self.slots.union(expanded[a], expanded[b])
        main = max(range(len(operands)), key=lambda i: operands[i].numel())
        if compact:
            return self.roots(on_axis(aligned[main][0], aligned[main][1], shape))
        return compress(self.roots(expanded[main].clone()))

    @staticmethod
    def _aligned(operands: list[Ids], shape: torch.Size) -> list[tuple[torch.Tensor, int, bool]] | None:
        """Per operand ``(slots along the common output channel axis, that axis, varies)`` when every
        operand is compact and those that vary share one output axis at full size (else None)."""
        if not all(isinstance(i, AxisIds) for i in operands):
            return None
        varying = {i.axis + len(shape) - i.dim() for i in operands if varying_axes(i)}
        if len(varying) > 1:
            return None
        axis = varying.pop() if varying else 0
        out = []
        for ids in operands:
            if varying_axes(ids):
                if ids.shape[ids.axis] != shape[axis]:
                    return None
                out.append((ids.slots, axis, True))
            else:
                out.append((ids.slots[:1].expand(shape[axis]), axis, False))
        return out

    @staticmethod
    def _varying(index: int, aligned: list, expanded: list | None) -> set[int]:
        if expanded is not None:
            return varying_axes(expanded[index])
        return {aligned[index][1]} if aligned[index][2] else set()

    def spatial(self, node: fx.Node, ids: Any, value: torch.Tensor, what: str) -> Any:
        """Per-channel spatial ops: the output keeps axis 1's channels (batch and channel sizes unchanged)."""
        source = self.value(node.args[0])
        slots = along(ids, 1) if isinstance(ids, (torch.Tensor, AxisIds)) and ids.dim() >= 2 else None
        if slots is None or not isinstance(source, torch.Tensor) or value.shape[:2] != source.shape[:2]:
            return self.opaque(node, f"{what} mixes channels with other dimensions")
        return on_axis(slots, 1, value.shape)

    def reduce(self, node: fx.Node, name: str, value: torch.Tensor) -> Any:
        ids = self.node_ids(node.args[0])
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        keepdim = bool(node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False))
        if not isinstance(ids, (torch.Tensor, AxisIds)) or dim is None or not isinstance(dim, (int, list, tuple)):
            return self.opaque(node, f"{name} over every axis")
        ids = full(ids)
        high, low = torch.amax(ids, dim=dim, keepdim=keepdim), torch.amin(ids, dim=dim, keepdim=keepdim)
        if not torch.equal(high, low) or high.shape != value.shape:
            return self.opaque(node, f"{name} over the channel axis")
        return compress(high)

    def substitute(self, arg: Any) -> Any:
        """A node argument with tensors replaced by their full id tensors (untracked tensors by -1s)."""
        if isinstance(arg, fx.Node):
            ids, value = self.node_ids(arg), self.value(arg)
            if isinstance(value, torch.Tensor) and not isinstance(ids, (torch.Tensor, AxisIds)):
                return torch.full(value.shape, NONE, dtype=torch.long)
            if isinstance(ids, (torch.Tensor, AxisIds)):
                return full(ids)
            if isinstance(ids, tuple) and isinstance(value, (tuple, list)):
                return tuple(full(i) if isinstance(i, (torch.Tensor, AxisIds)) else i for i in ids)
            return value
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.substitute(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self.substitute(v) for k, v in arg.items()}
        return arg

    def apply(self, node: fx.Node) -> Any:
        """Run ``node``'s operation on full id tensors instead of values."""
        args, kwargs = self.substitute(node.args), self.substitute(node.kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)

    def shape(self, node: fx.Node, name: str, value: Any) -> Any:
        """Apply the op to the id tensor. Channels it splits, mixes with another axis or reshapes to a size
        written in the code are frozen, but keep their identity downstream."""
        source = self.node_ids(node.args[0])
        try:
            out = self.apply(node)
        except (RuntimeError, TypeError, IndexError, ValueError):
            return self.opaque(node, f"{name} (not reproducible on channel ids)")
        outputs = [o for o in _tensors(out) if isinstance(o, torch.Tensor)]
        reason = None
        if name in SELECT and isinstance(source, (torch.Tensor, AxisIds)) and \
                any(slot_set(o) != slot_set(source) for o in outputs):
            reason = f"{name} splits the channel axis (depends on the channel count)"
        elif not self.shape_ok(outputs):
            shape = tuple(outputs[0].shape) if outputs else ()
            reason = f"{name} to {shape} splits the channel axis over two dimensions (a channel shuffle or grouping)"
        elif name in RESHAPES and any(isinstance(a, int) and a > 1 for a in _tensors(list(node.args[1:]))):
            reason = f"{name} to a size written in the model's code (fixed channel count)"
        if reason:
            for ids in [source, *outputs]:
                if isinstance(ids, (torch.Tensor, AxisIds)) and tracked(ids):
                    self.freeze(ids, reason)
        if isinstance(out, (tuple, list)):
            return tuple(compress(o) if isinstance(o, torch.Tensor) else o for o in out)
        return compress(out) if isinstance(out, torch.Tensor) else out

    def concat(self, node: fx.Node, name: str, value: torch.Tensor) -> Any:
        """``cat`` along the channel axis places channels at offsets; along another axis it joins them."""
        parts = self.node_ids(node.args[0])
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if not all(isinstance(p, (torch.Tensor, AxisIds)) and tracked(p) for p in parts):
            return self.opaque(node, f"{name} of tensors whose channels are unknown")
        axes = {channel_axis(p) for p in parts if len(slot_set(p)) > 1}
        if None in axes or len(axes) > 1:
            return self.opaque(node, f"{name} of tensors carrying channels on different axes")
        axis = axes.pop() if axes else None
        dim = dim % parts[0].dim() if name != "stack" else dim
        if name == "stack" or (axis is not None and axis != dim):
            if axis is None:
                return self.opaque(node, f"{name} of single-channel tensors")
            first = along(parts[0], axis)
            for p in parts[1:]:
                self.slots.union(first, along(p, axis))
            parts = [self.roots(p) for p in parts]
        elif axis is not None:  # offsets along the channel axis: only the slot vectors are concatenated
            return on_axis(torch.cat([along(p, axis) for p in parts]), axis, value.shape)
        parts = [full(p) for p in parts]
        return compress(torch.stack(parts, dim) if name == "stack" else torch.cat(parts, dim))
