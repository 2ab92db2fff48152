"""Pruning one channel group: statistics -> selection -> offsets -> agreement over ranks -> surgery -> report."""

from __future__ import annotations

import time

import torch

from ..calibration import agree_on_selection
from ..costmodel import granularity
from ..errors import UserError
from ..graph.groups import ChannelGroup
from ..objective import GroupProblem, registered_objectives
from ..report import GroupReport
from ..selection import Selection, greedy_select_gram, registered_methods
from ..selection.partition import pad_to_multiple
from ..stats.precision import product_dtype
from ..surgery import apply_selection
from ..walk import GraphWalker
from ..walk.reuse import slice_layout_ok
from .options import PruneOptions
from .state import PruneState
from .statistics import collect


def select(problem: GroupProblem, group: ChannelGroup, width: int, options: PruneOptions, state: PruneState,
           index: int) -> Selection:
    """Run the method on the group's statistics, with the options it declares (scores, seed, width options)."""
    spec = registered_methods[options.method]
    context = {"seed": options.seed + index}
    if "scores" in spec.options:
        context["scores"] = state.scores(group)
    # a budget counts distinct channels: methods that may repeat a pick herd until they have `width`
    method_options = {**spec.accepted(**context), **spec.width_options}
    selection = greedy_select_gram(problem.gram, problem.cross, problem.energy, width, method=options.method,
                                   damping=options.damping, partition=group.partition, **method_options)
    # a selection that stopped early keeps a width that is still a multiple of the granule (round_to)
    return pad_to_multiple(selection, group.width, group.partition, granularity(group, options.round_to))


def agree(group: ChannelGroup, kept: torch.Tensor, coefficients: torch.Tensor,
          offsets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Rank 0's selection and offsets on every rank (the offsets travel as one concatenated vector)."""
    targets = [c.target for c in group.consumers if c.target in offsets]
    sizes = [offsets[t].numel() for t in targets]
    device = offsets[targets[0]].device
    flat = torch.cat([offsets[t].to(device, torch.float64) for t in targets])
    kept, coefficients, flat = agree_on_selection(kept, coefficients, flat)
    return kept, coefficients, dict(zip(targets, flat.split(sizes)))


def prune_group(group: ChannelGroup, index: int, width: int, walker: GraphWalker, state: PruneState,
                options: PruneOptions, collected: tuple | None = None) -> GroupReport:
    """Prune ``group`` (visit ``index`` of ``walker``) to ``width`` channels in ``state.pruned``; its report.

    ``collected``: ``(objective, problem)`` already gathered on exactly this group's inputs and targets
    (the first group, from the error-curve pass); the walker then only moves on, without statistics.
    """
    start = time.perf_counter()
    before = group.width
    if width >= before:  # nothing to prune: leave the group exactly as it is
        return GroupReport(group.name, before, before, 0.0, time.perf_counter() - start, [],
                           "kept all channels (no selection)")
    if collected is not None:
        objective, problem = collected
        for _ in walker.consumer_values(index):
            pass
    else:
        objective = registered_objectives[options.objective](group, state.views(group),
                                                             product_dtype(options.precision))
        problem = collect(objective, walker, index, options.precision)
    sel = select(problem, group, width, options, state, index)
    # every distinct pick is kept, also one a fixed-ranking refit gives weight 0 (a redundant or dead
    # channel magnitude/random chose): all methods then keep exactly the same widths
    kept, coefficients = sel.kept_channels()
    offsets = objective.offsets(kept, coefficients)
    objective.free()
    kept, coefficients, offsets = agree(group, kept, coefficients, offsets)
    if kept.numel() == 0:  # never leave a group empty (a layer with no inputs)
        raise UserError(f"group {group.name!r}: no channel can be selected because its consumer's output does not "
                        "vary over the calibration images (its channels are constant or dead there); use more, "
                        "and more varied, calibration images, or check the weights")
    kept = kept.cpu()
    state.record(group, kept, offsets)
    sliceable = walker.slicing and slice_layout_ok(group, state.layout)  # before the surgery changes the layout
    apply_selection(state.pruned, state.layout, group, kept, coefficients, offsets, materialize=options.materialize)
    if sliceable:
        walker.applied(index, kept)
    note = sel.stopped_early
    if note is not None and options.method not in {m for m, s in registered_methods.items() if s.with_replacement}:
        note += "; the calibration data cannot tell the remaining channels apart: use more calibration images"
    errors = problem.reported(sel.errors)
    return GroupReport(group.name, before, int(kept.numel()), float(errors[-1]) if len(sel) else 1.0,
                       time.perf_counter() - start, [float(e) for e in errors], note, kept=kept.tolist(),
                       damping=sel.damping)
