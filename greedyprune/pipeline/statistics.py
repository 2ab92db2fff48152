"""Statistics of every group of an *unpruned* model: error curves (budget) and ``greedyprune analyze``.

The same walker and objective as pruning, with inputs and targets from one run of the original
network: the target of consumer ``k`` is its own output, so (for a consumer reading only the group)
``T = sum_i c_i``, the centroid case of ``analysis/THEORY.md``.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import fx, nn
from tqdm.auto import tqdm

from ..distributed import same_error_on_every_rank
from ..graph.groups import ChannelGroup
from ..objective import GroupProblem, registered_objectives
from ..stats.precision import product_dtype, products_in
from ..walk import GraphWalker
from ..walk.targets import TargetCache
from .state import PruneState


def collect(objective, walker: GraphWalker, index: int, precision: str = "float32") -> GroupProblem:
    """Feed group ``index``'s batches from ``walker`` into ``objective``; its (all-reduced) problem.

    ``precision``: how the batches' products are computed (:mod:`greedyprune.stats.precision`; the objective
    was built with its :func:`~greedyprune.stats.precision.product_dtype`); only the products, not the
    walker's layer runs, see that setting.
    """
    with torch.no_grad(), same_error_on_every_rank():  # a rank's NaN stops all ranks before the all_reduce
        for values in walker.consumer_values(index):
            with products_in(precision):
                objective.add_batch(values)
    return objective.problem()


def iter_group_problems(model: nn.Module, nodes: list[fx.Node], groups: list[ChannelGroup],
                        batches: list[torch.Tensor], precision: str = "float64",
                        objective: str = "reconstruction", progress: bool = False, first: dict | None = None,
                        record: TargetCache | None = None,
                        own_targets: bool = False) -> Iterator[tuple[ChannelGroup, GroupProblem, PruneState]]:
    """Yield ``(group, problem, state)`` for every group of the unpruned ``model``, in walking order.

    ``state`` gives the group's views (e.g. magnitude scores via ``state.scores(group)``). ``first`` given:
    the first group's objective is kept there (``first[group.name] = (objective, problem)``), not freed: a
    pruning run's first group sees exactly these inputs and targets (nothing is pruned before it).
    ``record``: the consumers' outputs are recorded there for a pruning walk (:mod:`greedyprune.walk.targets`).
    ``own_targets``: the objective may use that every target is its consumer's own output (the cross terms
    from the Gram, :mod:`greedyprune.stats.own_output`: equal in arithmetic, cheaper, rounded differently);
    not for the first group's objective kept in ``first`` (the pruning run selects with it).
    ``precision``: the statistics' products (:mod:`greedyprune.stats.precision`).
    """
    dtype = product_dtype(precision)
    walker = GraphWalker(nodes, model, None, batches, groups, record=record)
    state = PruneState(model, model)
    for index, group in enumerate(tqdm(walker.groups, desc="statistics", disable=not progress, leave=False)):
        kept = first is not None and index == 0
        options = {"own_targets": True} if own_targets and not kept else {}
        target = registered_objectives[objective](group, state.views(group), dtype, **options)
        problem = collect(target, walker, index, precision)
        if kept:
            first[group.name] = (target, problem)
        else:
            target.free()
        yield group, problem, state


def model_groups(model: nn.Module, example: torch.Tensor, streams: bool = False) -> list[ChannelGroup]:
    """The channel groups of ``model`` that a pruning run with this ``streams`` setting would prune."""
    from .networks import is_internal, trace_groups
    _, groups = trace_groups(model, example)
    return [g for g in groups if streams or is_internal(model, g)]


def model_group_problems(model: nn.Module, batches: list[torch.Tensor], names: set[str] | None = None,
                         streams: bool = False, precision: str = "float64",
                         progress: bool = False) -> Iterator[tuple[ChannelGroup, GroupProblem, PruneState]]:
    """:func:`iter_group_problems` for the groups of ``model`` (or those in ``names``), traced here."""
    from .networks import is_internal, trace_groups
    nodes, groups = trace_groups(model, batches[0])
    groups = [g for g in groups if (streams or is_internal(model, g)) and (names is None or g.name in names)]
    return iter_group_problems(model, nodes, groups, batches, precision, progress=progress)
