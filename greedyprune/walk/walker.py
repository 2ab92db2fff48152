"""The one graph walker: each channel group's consumer inputs (pruned network) and outputs (original network).

For group ``g`` (visited in order of ``start(g)``, the first node it touches), calibration batch ``n``:

* ``X_k`` = the input of consumer ``k`` in the **pruned** network (every group before ``g`` applied);
* ``Y_k`` = the output of consumer ``k`` in the **original** network.

That is sequential error correction: the statistics of ``g`` see what earlier groups did to the
inputs and reconstruct what the original network computed, so each group also repairs the error
upstream of it. Both networks' values are cached at graph cuts (:func:`~.execute.live_at`): the
cut at ``start(g)`` holds every tensor computed before ``g``'s first node and read after it. Per
batch, the original network runs from its cut to ``g``'s consumers (and on to the next group's cut,
which becomes its new cache); the pruned network runs from its cut to ``g``'s consumer inputs and
stops there. After ``g`` is pruned, only nodes at or after ``start(g)`` have changed, so the pruned
cut at ``start(g)`` is still valid and is advanced to the next group's start. Every node of the
original runs about once per batch plus once per group that spans it; the same for the pruned one.

With ``pruned=None`` (statistics of an unpruned model: error curves, ``analyze``) inputs and outputs
come from one run of the original network.

Two shortcuts, each giving the values a rerun would give, bit for bit: with ``same_start=True`` (the
pruned network starts as an exact copy of the original) the first visit takes the pruned network's cut
and consumer inputs from the original's run; with ``slicing=True`` (groups are removed physically) the
caller reports each pruned group (:meth:`applied`) and the pruned cut moves on to the next group's
start from the values this visit already computed, sliced to the kept channels (:mod:`.reuse`),
rerunning only what the group's surgery changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import fx, nn

from ..errors import UserError
from ..graph.groups import ChannelGroup
from .execute import execute, first_input, live_at, make_plan, positions
from .reuse import classify, keep_channels
from .targets import TargetCache, mutated_later

# Default most bytes (summed over the calibration batches) of original-network values kept ahead of the
# cut for later visits (:meth:`GraphWalker._carry`; beyond it they are computed again) and, separately, of
# consumer outputs recorded for the next walk (:mod:`.targets`). ResNet-50 with residual streams at 64
# images of 224 px keeps ~1.3 GB ahead at its peak and runs its original network once per pass.
CACHE_BYTES = 2 * 1024 ** 3


@dataclass
class Visit:
    """Where one group sits in the graph: its first touched node and its consumers' call nodes."""

    group: ChannelGroup
    start: int
    consumers: dict[str, fx.Node]


def group_visit(group: ChannelGroup, nodes: list[fx.Node], pos: dict[fx.Node, int]) -> Visit:
    """The :class:`Visit` of ``group``: ``start`` = the first node calling a module (or reading a
    parameter) that the group changes; one ``call_module`` node per consumer."""
    calls: dict[str, list[fx.Node]] = {}
    for node in nodes:
        if node.op in ("call_module", "get_attr"):
            calls.setdefault(str(node.target), []).append(node)
    touched = [ref.target for ref in [*group.producers, *group.carriers]] + [c.target for c in group.consumers]
    found = [n for target in touched for n in calls.get(target, [])]
    if not found:
        raise UserError(f"group {group.name!r}: none of its layers is called in the traced graph; re-trace the model")
    consumers = {}
    for consumer in group.consumers:
        sites = calls.get(consumer.target, [])
        if len(sites) != 1:
            raise UserError(f"group {group.name!r}: consumer {consumer.target!r} is called {len(sites)} times in the "
                            "traced forward pass; a layer called once is needed to prune its inputs")
        consumers[consumer.target] = sites[0]
    return Visit(group, min(pos[n] for n in found), consumers)


class GraphWalker:
    """Cached cuts of the original and the pruned network, advanced group by group (module docstring)."""

    def __init__(self, nodes: list[fx.Node], original: nn.Module, pruned: nn.Module | None,
                 batches: list[torch.Tensor], groups: list[ChannelGroup], same_start: bool = False,
                 slicing: bool = False, cache_bytes: int | None = None, record: TargetCache | None = None) -> None:
        self.nodes, self.pos = nodes, positions(nodes)
        self.original, self.pruned = original, pruned
        inputs = [n for n in nodes if n.op == "placeholder"]
        if len(inputs) != 1:
            raise UserError(f"the traced model takes {len(inputs)} inputs; greedyprune prunes models of one input")
        self.visits = sorted((group_visit(g, nodes, self.pos) for g in groups), key=lambda v: v.start)
        self.original_cut = [{inputs[0]: x} for x in batches]
        self.pruned_cut = [{inputs[0]: x} for x in batches] if pruned is not None else None
        self.original_at = self.pruned_at = 0
        self.node_runs = 0  # nodes executed, summed over batches (the cost the benchmark reports)
        self.same_start, self.slicing = same_start, slicing
        self.cache_bytes = CACHE_BYTES if cache_bytes is None else cache_bytes
        self.record = record  # an unpruned walk records its consumer outputs here (:mod:`.targets`)
        self.targets: TargetCache | None = None  # a pruning walk reads them from here instead of the original
        # (for the visits they cover, a suffix: the original runs up to the first of them)
        self._reuse = None  # (visit index, (frontier, kinds, advance plan), frontier values per batch)

    @property
    def groups(self) -> list[ChannelGroup]:
        """The groups in the order they are visited."""
        return [v.group for v in self.visits]

    def _advance(self, cut: list[dict], at: int, to: int, root: nn.Module) -> list[dict]:
        if to < at:
            raise ValueError(f"the walker cannot go back from node {at} to {to}")
        if to == at:
            return cut
        plan = make_plan(self.nodes, at, live_at(self.nodes, to, self.pos), self.pos, cut[0].keys())
        out = []
        with torch.no_grad():
            for env in cut:
                out.append(execute(plan, env, root))
                self.node_runs += len(plan.steps)
        return out

    def advance_pruned(self, to: int) -> None:
        """Move the pruned network's cut to node ``to`` (after the groups before it were applied)."""
        if self.pruned_cut is not None:
            self.pruned_cut = self._advance(self.pruned_cut, self.pruned_at, to, self.pruned)
            self.pruned_at = to

    def advance_original(self, to: int) -> None:
        self.original_cut = self._advance(self.original_cut, self.original_at, to, self.original)
        self.original_at = to

    def consumer_values(self, index: int) -> Iterator[dict[str, tuple[torch.Tensor, torch.Tensor | None]]]:
        """Per batch: ``{consumer target: (input in the pruned network, output in the original network)}``.

        Gate consumers' outputs are not needed and come as None. When the loop finishes, the original
        cut has moved on to the next group's start (the pruned one moves in :meth:`advance_pruned`).
        """
        visit = self.visits[index]
        start = visit.start
        self._reuse = None
        unpruned = self.pruned_cut is None
        cached = None if unpruned or self.targets is None else self.targets.take(index, len(self.pruned_cut))
        if cached is not None:
            yield from self._replay(index, cached)
            return
        self.advance_original(start)
        # nothing pruned yet and the pruned network a copy of the original: its values are the original's
        fresh = not unpruned and self.same_start and index == 0 and self.pruned_at == 0
        if fresh:
            self.pruned_cut, self.pruned_at = [dict(env) for env in self.original_cut], start
        self.advance_pruned(start)
        after = self.visits[index + 1].start if index + 1 < len(self.visits) else start
        outputs, inputs = self._wanted(index, unpruned)
        next_cut = live_at(self.nodes, after, self.pos) if after > start else []
        reuse = self._reuse_plan(index, start, after, inputs) if self.slicing and not unpruned and next_cut else None
        frontier = reuse[0] if reuse else []
        shared = inputs + frontier if unpruned or fresh else []  # pruned values read off the original's run
        if self._replayed(index + 1, unpruned):  # the later visits read recorded targets: the original stops here
            next_cut = []
        original_plan = make_plan(self.nodes, start, outputs + next_cut + shared, self.pos, self.original_cut[0].keys())
        carry = self._carry(index, original_plan, after, unpruned) if next_cut else []
        if carry:
            original_plan = make_plan(self.nodes, start, outputs + next_cut + carry + shared, self.pos,
                                      self.original_cut[0].keys())
        pruned_plan = None if unpruned or fresh else make_plan(self.nodes, start, inputs + frontier, self.pos)
        gates = {c.target for c in visit.group.consumers if c.gate}
        moved, pending = [], []
        with torch.no_grad():
            for b, env in enumerate(self.original_cut):
                orig = execute(original_plan, env, self.original)
                self.node_runs += len(original_plan.steps)
                if b == 0 and carry:
                    carry = self._within_budget(carry, orig, len(self.original_cut))
                if pruned_plan is None:
                    pruned = orig
                else:
                    pruned = execute(pruned_plan, self.pruned_cut[b], self.pruned)
                    self.node_runs += len(pruned_plan.steps)
                pending.append({n: pruned[n] for n in frontier})
                if self.record is not None:
                    self.record.record(index, {t: (orig[n], mutated_later(n, self.original))
                                               for t, n in visit.consumers.items() if t not in gates})
                yield {target: (pruned[first_input(node)], None if target in gates else orig[node])
                       for target, node in visit.consumers.items()}
                if next_cut:
                    moved.append({n: orig[n] for n in next_cut + carry})
        self._reuse = (index, reuse, pending) if reuse else None
        if next_cut:
            self.original_cut, self.original_at = moved, after

    def _replayed(self, index: int, unpruned: bool) -> bool:
        """Whether visit ``index`` of this pruning walk will read its targets from :attr:`targets` (recorded
        for a suffix of the visits: so will every later one) instead of running the original network."""
        return not unpruned and self.targets is not None and self.targets.covers(index)

    def _replay(self, index: int, cached: list[dict[str, torch.Tensor]]):
        """:meth:`consumer_values` with the original's outputs recorded by an earlier walk: the pruned
        network alone runs (the original cut stays where it is)."""
        visit = self.visits[index]
        start = visit.start
        self.advance_pruned(start)
        after = self.visits[index + 1].start if index + 1 < len(self.visits) else start
        _, inputs = self._wanted(index, False)
        reuse = self._reuse_plan(index, start, after, inputs) if self.slicing and after > start else None
        frontier = reuse[0] if reuse else []
        plan = make_plan(self.nodes, start, inputs + frontier, self.pos)
        pending = []
        with torch.no_grad():
            for b, env in enumerate(self.pruned_cut):
                pruned = execute(plan, env, self.pruned)
                self.node_runs += len(plan.steps)
                pending.append({n: pruned[n] for n in frontier})
                yield {target: (pruned[first_input(node)], cached[b].get(target))
                       for target, node in visit.consumers.items()}
        self._reuse = (index, reuse, pending) if reuse else None

    def _reuse_plan(self, index: int, start: int, after: int, inputs: list[fx.Node]):
        """``(frontier, kinds, advance plan)``: the values of this visit's pruned run that moving the cut on
        after the surgery can reuse (:mod:`.reuse`), and the plan that computes the rest; None if nothing."""
        kinds = classify(self.nodes, self.pruned, self.visits[index].group)
        stats = make_plan(self.nodes, start, inputs, self.pos)
        reusable = {n for n in stats.steps if kinds[n] != "dirty"}
        if not reusable:
            return None
        target = live_at(self.nodes, after, self.pos)
        plan = make_plan(self.nodes, start, target, self.pos, reusable)
        used = {a for step in plan.steps for a in step.all_input_nodes} | set(plan.wanted)
        frontier = [n for n in stats.steps if n in reusable and n in used]
        return (frontier, kinds, make_plan(self.nodes, start, target, self.pos, frontier)) if frontier else None

    def applied(self, index: int, kept: torch.Tensor) -> None:
        """Visit ``index``'s group was pruned to channels ``kept``, removed physically, its producers' and
        carriers' rows being the group's channels in order (:func:`~.reuse.slice_layout_ok`, checked by the
        caller before the surgery): move the pruned cut on to the next group's start from this visit's
        values (:mod:`.reuse`). Any value of an unexpected shape leaves the cut where it is (a rerun)."""
        if self._reuse is None or self._reuse[0] != index:
            return
        _, (frontier, kinds, plan), pending = self._reuse
        self._reuse = None
        width = self.visits[index].group.width
        moved = []
        with torch.no_grad():
            for env, values in zip(self.pruned_cut, pending):
                env = dict(env)
                for node in frontier:
                    value = values[node] if kinds[node] == "clean" else keep_channels(values[node], kept, width)
                    if value is None:
                        return
                    env[node] = value
                moved.append(execute(plan, env, self.pruned))
                self.node_runs += len(plan.steps)
        self.pruned_cut, self.pruned_at = moved, self.visits[index + 1].start

    def _wanted(self, index: int, unpruned: bool) -> tuple[list[fx.Node], list[fx.Node]]:
        """Visit ``index``'s consumer outputs (gates excluded) and consumer inputs."""
        visit = self.visits[index]
        gates = {c.target for c in visit.group.consumers if c.gate}
        outputs = [node for target, node in visit.consumers.items() if target not in gates]
        return outputs, [first_input(node) for node in visit.consumers.values()]

    def _within_budget(self, carry: list[fx.Node], values: dict, batches: int) -> list[fx.Node]:
        """The values of ``carry`` to keep, in order, while their size over all batches fits ``cache_bytes``
        (sizes read off the first batch's ``values``)."""
        kept, total = [], 0
        for node in carry:
            value = values[node]
            size = value.numel() * value.element_size() * batches if isinstance(value, torch.Tensor) else 0
            if total + size <= self.cache_bytes:
                kept.append(node)
                total += size
        return kept

    def _carry(self, index: int, plan, after: int, unpruned: bool) -> list[fx.Node]:
        """Original-network values at or beyond the next cut, computed by this visit or carried into it, that
        later visits would compute again (e.g. a Bottleneck's conv2 output: the first group's target, the
        second's input; a residual stream group's run through the blocks after it, whose own groups come
        next): kept with the cut (the original network never changes, so they stay valid) until the last
        visit that reads them. Later visits are followed while any kept value may still be read."""
        carried = [n for n in self.original_cut[0] if self.pos[n] >= after] if self.original_cut else []
        ahead = [n for n in plan.steps if self.pos[n] >= after] + carried
        if not ahead or index + 1 >= len(self.visits):
            return []
        available = set(ahead)
        last_read = max(self.pos[u] for n in ahead for u in n.users)
        used: set[fx.Node] = set()
        for j in range(index + 1, len(self.visits)):
            start = self.visits[j].start
            if start > last_read or self._replayed(j, unpruned):
                break
            nxt = self.visits[j + 1].start if j + 1 < len(self.visits) else start
            outputs, inputs = self._wanted(j, unpruned)
            cut = live_at(self.nodes, nxt, self.pos) if nxt > start else []
            later = make_plan(self.nodes, start, outputs + (inputs if unpruned else []) + cut, self.pos, available)
            used |= ({a for step in later.steps for a in step.all_input_nodes} | set(later.wanted)) & available
        return sorted(used, key=self.pos.__getitem__)
