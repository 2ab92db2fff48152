"""Apply a selection to a traced channel group: fold coefficients, correct biases, remove the channels.

For a group with channels ``0..w-1``, kept channels ``S`` and coefficients ``g_s`` (``s`` in ``S``),
every consumer ``k`` computes after the surgery

    ``y_k = sum_{s in S} g_s W_k[:, cols_k(s)] x_s + (b_k + delta_k)``

i.e. each kept channel's columns are multiplied by its coefficient (the same ``g_s`` in every consumer:
the objective summed over consumers has one coefficient per channel), the removed channels' columns
are deleted and ``delta_k = offsets[k]`` is added to the consumer's bias sink (its bias, created if
absent, or ``running_mean -= delta`` of the BatchNorm reading it). Gate consumers (squeeze-excitation,
:attr:`Consumer.gate`) keep their columns unscaled. Producers lose the removed channels' output rows,
carriers their entries (BatchNorm/LayerNorm features, depthwise channels, per-channel parameters).

``materialize=False`` computes the same function at full width: kept columns are scaled, removed
columns are zeroed, offsets added; producers and carriers are left whole and the Layout unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph.groups import ChannelGroup
from .axes import is_depthwise, keep_along, keep_columns, keep_rows, scale_columns
from .layout import Layout
from .slicing import add_output_offset


def check_kept(group: ChannelGroup, kept: torch.Tensor) -> torch.Tensor:
    """``kept`` as a sorted LongTensor on CPU; raises unless distinct, in range and equal per partition."""
    kept = torch.as_tensor(kept).long().cpu()
    if kept.numel() == 0 or kept.unique().numel() != kept.numel() or kept.min() < 0 or kept.max() >= group.width:
        raise ValueError(f"group {group.name!r}: kept channels must be distinct, in 0..{group.width - 1}, not empty")
    if not torch.equal(kept, kept.sort().values):
        raise ValueError(f"group {group.name!r}: kept channels must be sorted")
    if group.partition > 1:
        counts = torch.bincount(kept // (group.width // group.partition), minlength=group.partition)
        if not bool((counts == counts[0]).all()):
            raise ValueError(f"group {group.name!r}: kept channels must be equally many in each of its "
                             f"{group.partition} partitions, got {counts.tolist()}")
    return kept


def apply_selection(model: nn.Module, layout: Layout, group: ChannelGroup, kept: torch.Tensor,
                    coefficients: torch.Tensor | None = None, offsets: dict[str, torch.Tensor] | None = None,
                    materialize: bool = True) -> None:
    """Keep channels ``kept`` of ``group`` in ``model`` (in place); see the module docstring.

    Args:
        model: the model the group was traced from (or a partly pruned version of it).
        layout: the model's :class:`Layout` (updated when ``materialize``).
        kept: sorted group channel indices to keep.
        coefficients: one factor per kept channel (default ones).
        offsets: consumer target -> output offset (length = the consumer's current output rows).
        materialize: False zeroes the removed columns at full width instead of deleting anything.
    """
    kept = check_kept(group, kept)
    removed = torch.ones(group.width, dtype=torch.bool)
    removed[kept] = False
    coefficients = torch.ones(kept.numel()) if coefficients is None else coefficients.detach().cpu().double()
    consumers = {c.target: c for c in group.consumers}
    for consumer in group.consumers:
        module = model.get_submodule(consumer.target)
        cols = layout.current_columns(consumer)
        block = cols.shape[1]
        if not consumer.gate:
            scale_columns(module, cols[kept], coefficients.repeat_interleave(block))
        if not materialize:
            scale_columns(module, cols[removed], torch.zeros(int(removed.sum()) * block))
    for target, delta in (offsets or {}).items():
        if target not in consumers:
            raise ValueError(f"group {group.name!r}: offset for {target!r}, which is not one of its consumers")
        add_output_offset(model.get_submodule(consumers[target].bias_sink), delta)
    if not materialize:
        return
    for consumer in group.consumers:
        keep = layout.remove(consumer.target, 1, consumer.columns[removed])
        keep_columns(model.get_submodule(consumer.target), keep)
    for ref in [*group.producers, *group.carriers]:
        positions = ref.positions[removed]
        if ref.kind == "param":
            keep_along(model, ref.target, ref.axis, layout.remove(ref.target, ref.axis, positions))
            continue
        module = model.get_submodule(ref.target)
        keep = layout.remove(ref.target, 0, positions)
        if is_depthwise(module):
            layout.remove(ref.target, 1, positions)
        keep_rows(module, keep)
