"""From propagated channels to channel groups: which channels go together, and where they are.

After propagation every channel is a union-find class of slots. Channels with the same set of
producers form one group (a conv's output channels; a residual stage's stream, produced by every block
of the stage). For each layer use that holds any of a group's channels, the positions of each channel
along the layer's axis are read off the use's slots (``positions[c]`` = where class ``c`` sits; ``H*W``
of them for a Linear after a flatten, an offset for a concatenation). A group is frozen (with the first
reason found) when one of its channels is frozen, or when a use holds only some of its channels or holds
them unevenly. Group channels are ordered as the first producer's output rows.

Squeeze-excitation is recognised from the propagation's gate slots: a producer whose output multiplies
the tensor it was computed from (the SE ``fc2``) is a carrier of kind ``out``; a consumer whose own
output channels are read only by such gate producers (the SE ``fc1``) is a gate consumer, and its output
channels (the SE bottleneck) are frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from .channels import LayerUse, Propagation
from .groups import TensorRef
from .idtensor import AxisIds, along, channel_axis
from .trace import CALL_OPS


@dataclass
class RawGroup:
    """A group's channels (roots, in order) and, per use, the ``(width, block)`` positions it holds."""

    roots: list[int]
    producers: list[LayerUse]
    placed: list[tuple[LayerUse, torch.Tensor, int]] = field(default_factory=list)  # use, positions, axis
    reason: str | None = None


def _axis_slots(use: LayerUse, roots: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """A use's root per position along its axis (a parameter: along its one channel axis)."""
    if use.role != "param":
        return roots, 0
    axis = channel_axis(roots)
    if axis is None:
        return None
    return along(roots, axis), axis


def _positions(member: torch.Tensor, width: int) -> torch.Tensor | str:
    """``(width, block)`` positions holding each group channel (``member[i]`` = channel at position i, or -1)."""
    where = (member >= 0).nonzero().squeeze(1)
    counts = torch.bincount(member[where], minlength=width)
    if bool((counts == 0).any()):
        return "holds only some of these channels"
    if bool((counts != counts[0]).any()):
        return "holds these channels unevenly"
    ranked = where[torch.argsort(member[where] * (member.numel() + 1) + where)]
    return ranked.reshape(width, -1)


def raw_groups(prop: Propagation) -> list[RawGroup]:
    """Channels grouped by their producer sets, with every use's positions (see the module docstring)."""
    frozen = prop.slots.frozen_roots()
    roots = {id(u): prop.slots.find(u.slots) for u in prop.uses}
    by_class: dict[int, list[int]] = {}
    producers = [u for u in prop.uses if u.role == "producer"]
    for index, use in enumerate(producers):
        for r in roots[id(use)].unique().tolist():
            by_class.setdefault(r, []).append(index)
    keyed: dict[tuple[int, ...], RawGroup] = {}
    seen: set[int] = set()
    for index, use in enumerate(producers):  # producers in node order: the first one fixes the order
        for r in roots[id(use)].tolist():
            key = tuple(by_class[r])
            if key[0] == index and r not in seen:
                seen.add(r)
                keyed.setdefault(key, RawGroup([], [producers[i] for i in key])).roots.append(r)
    groups = list(keyed.values())
    group_of, channel_of = channel_index(groups, prop.slots.parent.numel())
    for group in groups:
        reasons: list[str] = []
        for r in group.roots:
            reasons += [reason for reason in frozen.get(r, []) if reason not in reasons]
        group.reason = "; ".join(reasons[:2]) or None
    for use in prop.uses:
        found = _axis_slots(use, roots[id(use)])
        if found is None:
            for g in group_of[roots[id(use)].reshape(-1)].unique().tolist():
                if g >= 0:
                    groups[g].reason = groups[g].reason or f"parameter {use.target} mixes channels across axes"
            continue
        slots, axis = found
        for g, positions in _placements(slots, group_of, channel_of, groups):
            if isinstance(positions, str):
                groups[g].reason = groups[g].reason or f"{use.target} {positions}"
            else:
                groups[g].placed.append((use, positions, axis))
    return groups


def _placements(slots: torch.Tensor, group_of: torch.Tensor, channel_of: torch.Tensor,
                groups: list[RawGroup]) -> Iterator[tuple[int, torch.Tensor | str]]:
    """For each group holding some of ``slots`` (roots along one axis): its ``(width, block)`` positions there,
    or why they cannot be placed (see :func:`_positions`)."""
    owners = group_of[slots]
    for g in owners[owners >= 0].unique().tolist():
        yield g, _positions(torch.where(owners == g, channel_of[slots], -1), len(groups[g].roots))


def channel_index(groups: list[RawGroup], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per slot root: the index of the group holding it and its channel number there (-1: none)."""
    group_of, channel_of = torch.full((size,), -1), torch.full((size,), -1)
    for g, group in enumerate(groups):
        group_of[group.roots], channel_of[group.roots] = g, torch.arange(len(group.roots))
    return group_of, channel_of


def tensors_holding(prop: Propagation, groups: list[RawGroup]) -> list[list[TensorRef]]:
    """Per group: every computed value of the graph holding its channels on one axis, with their positions.

    Only call nodes count (not the input, parameters or the output); a value holding a group's channels
    unevenly or only some of them (cannot happen in a prunable group) or split into a tuple is left out.
    """
    group_of, channel_of = channel_index(groups, prop.slots.parent.numel())
    held: list[list[TensorRef]] = [[] for _ in groups]
    for node in prop.traced.nodes:
        ids = prop.ids.get(node.name)
        if node.op not in CALL_OPS or not isinstance(ids, (torch.Tensor, AxisIds)):
            continue
        ids = prop.roots(ids)
        axis = channel_axis(ids)
        slots = along(ids, axis) if axis is not None else None
        if slots is None:
            continue
        for g, positions in _placements(slots, group_of, channel_of, groups):
            if not isinstance(positions, str):
                held[g].append(TensorRef(node.name, positions, len(slots)))
    return held
