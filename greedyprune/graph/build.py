"""``find_groups(model, example)``: trace, propagate channels, and return the prunable channel groups.

Pruning order: groups are sorted by the last node of their span (the last consumer), then by the first:
a group is pruned as soon as everything that reads it has been reached. For internal groups (one
producer, consumers right after) this is forward order (the order of the former hand-written adapters, checked by
``tests/graph/test_adapter_parity.py``); a
residual stream comes right after the internal groups of its stage, since the next stage's first block
is its last consumer.

Grouped convs (ResNeXt, RegNet): a group read or produced by a conv with ``groups = g`` keeps an equal
number of channels in each of the conv's ``g`` partitions (``ChannelGroup.partition``); whole conv
groups are never removed, so ``groups`` and each partition's width stay consistent.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from .assemble import RawGroup, raw_groups, tensors_holding
from .channels import LayerUse, Propagation
from .groups import AxisRef, ChannelGroup, Consumer, FrozenChannels
from .names import name_groups, stream_prefix
from .trace import trace


@dataclass
class TracedModel:
    """A model's traced graph and channel groups (positions in the original layout).

    Attributes:
        model: the model itself; ``graph_module`` shares its modules, parameters and buffers.
        nodes: the graph's nodes in topological order (``ChannelGroup.span`` indexes this list).
        groups: prunable groups in pruning order (see the module docstring).
        frozen: channels found but never pruned, with the reason.
        unused: layers with parameters that the traced forward never calls (left untouched).
    """

    model: nn.Module
    graph_module: fx.GraphModule
    nodes: list[fx.Node]
    groups: list[ChannelGroup]
    frozen: list[FrozenChannels]
    streams: bool = True
    unused: list[str] = field(default_factory=list)

    def group(self, name: str) -> ChannelGroup:
        """The group called ``name`` (KeyError listing a few names otherwise)."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"no group {name!r}; groups: {', '.join(g.name for g in self.groups[:5])}, ...")


def _bias_sink(prop: Propagation, use: LayerUse) -> str:
    """The consumer itself if it has a bias, else the BatchNorm that alone reads its output (if any)."""
    module = prop.gm.get_submodule(use.target)
    if getattr(module, "bias", None) is not None:
        return use.target
    users = list(prop.traced.nodes[use.node].users)
    if len(users) == 1 and users[0].op == "call_module" and prop.calls.get(users[0].target) == 1:
        norm = prop.gm.get_submodule(users[0].target)
        if isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.running_mean is not None:
            return users[0].target
    return use.target


def _is_gate(prop: Propagation, use: LayerUse) -> bool:
    return use.role == "producer" and set(use.slots.tolist()) <= prop.gate_slots


def _partition(prop: Propagation, raw: RawGroup) -> tuple[int, str | None]:
    """The group's partition (lcm of its grouped convs' groups) or a reason it cannot be pruned."""
    width, partition = len(raw.roots), 1
    for use, positions, _ in raw.placed:
        if use.partitions <= 1 or use.role not in ("producer", "consumer"):
            continue
        conv = prop.gm.get_submodule(use.target)
        size = conv.out_channels if use.role == "producer" else conv.in_channels
        g = use.partitions
        aligned = positions.shape == (width, 1) and size == width and width % g == 0 and torch.equal(
            positions[:, 0] // (size // g), torch.arange(width) // (width // g))
        if not aligned:
            return 1, f"its grouped conv {use.target} ({g} groups) also holds other channels or mixes their order"
        partition = math.lcm(partition, g)
    if width == partition:
        return partition, f"each of the {partition} conv groups holds one channel"
    return partition, None


def _group(prop: Propagation, raw: RawGroup, gate_consumers: set[str]) -> ChannelGroup | str:
    if raw.reason:
        return raw.reason
    if len(raw.roots) < 2:
        return "a single channel"
    partition, reason = _partition(prop, raw)
    if reason:
        return reason
    producers, carriers, consumers, exact = [], [], [], True
    for use, positions, axis in raw.placed:
        if use.role == "producer":
            (carriers if _is_gate(prop, use) else producers).append(AxisRef(use.target, "out", positions))
        elif use.role == "consumer":
            consumers.append(Consumer(use.target, positions, _bias_sink(prop, use), use.partitions,
                                      gate=use.target in gate_consumers))
        else:
            carriers.append(AxisRef(use.target, use.role, positions, axis if use.role == "param" else 0))
            exact = exact and not use.layer_norm
    if not producers or not consumers:
        return "no layer reads these channels" if producers else "produced only by a gate"
    nodes = [use.node for use, _, _ in raw.placed]
    kind = "stream" if len(producers) > 1 else "internal"
    return ChannelGroup(producers[0].target, len(raw.roots), kind, producers, carriers, consumers,
                        (min(nodes), max(nodes)), producers[0].target, partition, exact)


def _squeeze_excitation(prop: Propagation, raws: list[RawGroup]) -> tuple[set[str], set[int]]:
    """SE ``fc1`` targets (gate consumers) and the raw groups of their bottleneck channels."""
    gates = {u.target for u in prop.uses if _is_gate(prop, u)}
    fc1, bottlenecks = set(), set()
    for index, raw in enumerate(raws):
        readers = {u.target for u, _, _ in raw.placed if u.role == "consumer"}
        if readers and readers <= gates and len(raw.producers) == 1:
            fc1.add(raw.producers[0].target)
            bottlenecks.add(index)
    return fc1, bottlenecks


def find_groups(model: nn.Module, example: torch.Tensor, streams: bool = True) -> TracedModel:
    """Trace ``model`` (put in eval mode) on ``example`` and find its channel groups.

    ``streams=False`` keeps only internal groups (channels not shared by an addition). The model is not
    modified; ``TracedModel.graph_module`` shares its layers, so pruning them prunes the model.
    """
    with _no_gc():
        return _find_groups(model, example, streams)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: propagation makes tens of thousands of small lists while
    hundreds of thousands of objects are alive, and each automatic collection walks them all (resnet50:
    5 s of collections for 0.1 s of work). Nothing made here is cyclic garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _find_groups(model: nn.Module, example: torch.Tensor, streams: bool) -> TracedModel:
    traced = trace(model, example)
    prop = Propagation(traced).run()
    raws = raw_groups(prop)
    fc1, bottlenecks = _squeeze_excitation(prop, raws)
    held = tensors_holding(prop, raws)
    groups, frozen = [], []
    for index, raw in enumerate(raws):
        if index in bottlenecks and not raw.reason:
            raw.reason = "squeeze-excitation bottleneck (the inner channels of a gate, left whole)"
        found = _group(prop, raw, fc1)
        if isinstance(found, ChannelGroup):
            found.tensors = held[index]
            groups.append(found)
            continue
        names = [u.target for u in raw.producers if not _is_gate(prop, u)] or [u.target for u in raw.producers]
        name = names[0] if len(names) == 1 else f"{stream_prefix(names)}.stream"
        frozen.append(FrozenChannels(name, len(raw.roots), found, names))
    groups.sort(key=lambda g: (g.span[1], g.span[0]))
    name_groups(model, groups)
    if not streams:
        groups = [g for g in groups if g.kind == "internal"]
    return TracedModel(model, traced.graph_module, traced.nodes, groups, frozen, streams, traced.unused)
