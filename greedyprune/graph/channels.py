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

from .idtensor import along, broadcast_axes, channel_axis, slot_set, spread, tracked, varying_axes
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

    def roots(self, ids: torch.Tensor) -> torch.Tensor:
        return self.slots.find(ids)

    def node_ids(self, arg: Any) -> Any:
        """The id tensor(s) of a graph argument (None for constants and non-tensors)."""
        if isinstance(arg, fx.Node):
            ids = self.ids.get(arg.name)
            return self.roots(ids).contiguous() if isinstance(ids, torch.Tensor) else ids
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.node_ids(a) for a in arg)
        return None

    def opaque(self, node: fx.Node, reason: str) -> Any:
        """Freeze every channel ``node`` reads; its output is one frozen slot per tensor."""
        for ids in _tensors(self.node_ids(list(node.args) + list(node.kwargs.values()))):
            if tracked(ids):
                self.slots.freeze(ids, reason)
        return self.fresh_frozen(self.traced.values.get(node.name), reason)

    def fresh_frozen(self, value: Any, reason: str) -> Any:
        if isinstance(value, torch.Tensor):
            slot = self.slots.new(1)
            self.slots.freeze(slot, reason)
            return torch.full(value.shape, int(slot), dtype=torch.long)
        if isinstance(value, (tuple, list)):
            return tuple(self.fresh_frozen(v, reason) for v in value)
        return None

    def shape_ok(self, out: Any) -> bool:
        """Every tensor in ``out`` carries its channels on one axis (or none)."""
        return not any(isinstance(o, torch.Tensor) and tracked(o) and channel_axis(o) is None for o in _tensors(out))

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
                        self.slots.freeze(ids, "the model's output (class logits)")
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
                return slots
        self.use(node.target, "param", slots)
        return slots

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
        pairs = [(a, i) for a, i in pairs if isinstance(i, torch.Tensor) and tracked(i)]
        sources, operands = [a for a, _ in pairs], [i for _, i in pairs]
        shape = value.shape
        full = [torch.broadcast_to(i, shape) for i in operands]
        for a in range(len(operands)):
            for b in range(a + 1, len(operands)):
                skip_a = broadcast_axes(operands[a], shape) & varying_axes(full[b])
                skip_b = broadcast_axes(operands[b], shape) & varying_axes(full[a])
                if skip_a or skip_b:
                    continue
                if name in ("mul", "imul", "mul_", "truediv", "div", "itruediv", "div_"):
                    for gate, other in ((a, b), (b, a)):
                        if _depends_on(sources[gate], sources[other]):
                            self.gate_slots |= slot_set(operands[gate])
                self.slots.union(full[a], full[b])
        main = max(range(len(operands)), key=lambda i: operands[i].numel())
        return self.roots(full[main].clone())

    def spatial(self, node: fx.Node, ids: Any, value: torch.Tensor, what: str) -> Any:
        """Per-channel spatial ops: the output keeps axis 1's channels (batch and channel sizes unchanged)."""
        source = self.value(node.args[0])
        slots = along(ids, 1) if isinstance(ids, torch.Tensor) and ids.dim() >= 2 else None
        if slots is None or not isinstance(source, torch.Tensor) or value.shape[:2] != source.shape[:2]:
            return self.opaque(node, f"{what} mixes channels with other dimensions")
        return spread(slots, 1, value.shape)

    def reduce(self, node: fx.Node, name: str, value: torch.Tensor) -> Any:
        ids = self.node_ids(node.args[0])
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
        keepdim = bool(node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False))
        if not isinstance(ids, torch.Tensor) or dim is None or not isinstance(dim, (int, list, tuple)):
            return self.opaque(node, f"{name} over every axis")
        high, low = torch.amax(ids, dim=dim, keepdim=keepdim), torch.amin(ids, dim=dim, keepdim=keepdim)
        if not torch.equal(high, low) or high.shape != value.shape:
            return self.opaque(node, f"{name} over the channel axis")
        return high

    def substitute(self, arg: Any) -> Any:
        """A node argument with tensors replaced by their id tensors (untracked tensors by -1s)."""
        if isinstance(arg, fx.Node):
            ids, value = self.node_ids(arg), self.value(arg)
            if isinstance(value, torch.Tensor) and not isinstance(ids, torch.Tensor):
                return torch.full(value.shape, NONE, dtype=torch.long)
            return ids if isinstance(value, (torch.Tensor, tuple, list)) and ids is not None else value
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.substitute(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self.substitute(v) for k, v in arg.items()}
        return arg

    def apply(self, node: fx.Node) -> Any:
        """Run ``node``'s operation on id tensors instead of values."""
        args, kwargs = self.substitute(node.args), self.substitute(node.kwargs)
        if node.op == "call_method":
            return getattr(args[0], node.target)(*args[1:], **kwargs)
        return node.target(*args, **kwargs)

    def shape(self, node: fx.Node, name: str, value: Any) -> Any:
        source = self.node_ids(node.args[0])
        if name in RESHAPES and any(isinstance(a, int) and a > 1 for a in _tensors(list(node.args[1:]))):
            return self.opaque(node, f"{name} to a fixed size written in the model's code")
        try:
            out = self.apply(node)
        except (RuntimeError, TypeError, IndexError, ValueError):
            return self.opaque(node, f"{name} (not reproducible on channel ids)")
        outputs = [o for o in _tensors(out) if isinstance(o, torch.Tensor)]
        if name in SELECT and isinstance(source, torch.Tensor):
            before = slot_set(source)
            if any(slot_set(o) != before for o in outputs):
                return self.opaque(node, f"{name} splits the channel axis (depends on the channel count)")
        if not self.shape_ok(outputs):
            return self.opaque(node, f"{name} mixes the channel axis with another dimension")
        return out

    def concat(self, node: fx.Node, name: str, value: torch.Tensor) -> Any:
        """``cat`` along the channel axis places channels at offsets; along another axis it joins them."""
        parts = self.node_ids(node.args[0])
        dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
        if not all(isinstance(p, torch.Tensor) and tracked(p) for p in parts):
            return self.opaque(node, f"{name} of tensors whose channels are unknown")
        axes = {channel_axis(p) for p in parts if len(slot_set(p)) > 1}
        if None in axes or len(axes) > 1:
            return self.opaque(node, f"{name} of tensors carrying channels on different axes")
        axis = axes.pop() if axes else None
        if name == "stack" or (axis is not None and axis != dim % parts[0].dim()):
            if axis is None:
                return self.opaque(node, f"{name} of single-channel tensors")
            first = along(parts[0], axis)
            for p in parts[1:]:
                self.slots.union(first, along(p, axis))
            parts = [self.roots(p) for p in parts]
        return torch.stack(parts, dim) if name == "stack" else torch.cat(parts, dim)
