"""Statistics of every channel group of an *unpruned* model, from one calibration pass per group.

Used for error curves (budget allocation) and for ``greedyprune analyze``: here the consumer's
target is its own output on the same input, so the original output is exactly the centroid
``(1/N) sum_i phi_i`` of the scaled contributions ``phi_i = N c_i``.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from ..adapters import ChannelGroup, find_adapter
from ..distributed import same_error_on_every_rank
from .consumer import ConsumerStatistics, GroupStatistics, output_columns
from .hooks import capture_input, run_stages


def magnitude_scores(group: ChannelGroup) -> torch.Tensor:
    """L1 norm of each producer filter (the ``magnitude`` baseline's criterion)."""
    w = group.score_module.weight.detach()
    return w.abs().reshape(w.shape[0], -1).sum(1)


def iter_group_statistics(model: nn.Module, batches: list[torch.Tensor], product_dtype: torch.dtype = torch.float64,
                          center: bool = True, progress: bool = False,
                          names: set[str] | None = None) -> Iterator[tuple[ChannelGroup, GroupStatistics]]:
    """Yield ``(group, statistics)`` for each group of ``model`` (or those in ``names``), in forward order.

    Block inputs are cached, so stages before a group run once per calibration batch in total.
    """
    adapter = find_adapter(model)
    stages, groups = adapter.stages(model), adapter.groups(model)
    if names is not None:
        groups = [g for g in groups if g.name in names]
    x, cached = list(batches), 0
    for group in tqdm(groups, desc="statistics", disable=not progress, leave=False):
        a, b = group.stages
        if a > cached:
            with torch.no_grad():
                x = [run_stages(stages[cached:a], xb) for xb in x]
            cached = a
        stats = ConsumerStatistics(group.consumer, group.consumer_block, product_dtype, center, name=group.name)
        with torch.no_grad(), same_error_on_every_rank():  # a rank's NaN stops all ranks before the all_reduce
            for xb in x:
                inp = capture_input(stages[a:b + 1], group.consumer, xb)
                stats.add_batch(inp, output_columns(group.consumer, group.consumer(inp)))
        result = stats.statistics()
        stats.free()
        yield group, result
