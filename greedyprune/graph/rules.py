"""The propagation rules of traced functions and methods that join, re-arrange or reduce channels.

Mixed into :class:`~greedyprune.graph.channels.Propagation` (which provides ``node_ids``, ``roots``,
``opaque``, ``freeze``, ``slots``, ``gate_slots``): element-wise joins with broadcasting, per-channel
spatial ops, reductions, shape ops replayed on id tensors, concatenation. See
:mod:`greedyprune.graph.ops` for which names fall under which rule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from .idtensor import (
    AxisIds,
    Ids,
    along,
    broadcast_axes,
    channel_axis,
    compress,
    full,
    on_axis,
    slot_set,
    tracked,
    varying_axes,
)
from .ops import RESHAPES, SELECT
from .slots import NONE


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


class OperationRules:
    """Rules for call_function / call_method nodes (see the module docstring)."""

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
