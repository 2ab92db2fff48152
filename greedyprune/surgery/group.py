"""Apply a selection to a channel group: fold coefficients, correct biases, remove (or mask) channels."""

from __future__ import annotations

import torch
from torch import nn

from ..adapters.base import ChannelGroup
from .slicing import (
    add_output_offset,
    slice_batchnorm,
    slice_depthwise,
    slice_inputs,
    slice_outputs,
)


def _side_offset(module: nn.Module, removed: torch.Tensor, means: torch.Tensor, block: int) -> torch.Tensor:
    """What the removed inputs contributed on average: ``W[:, removed] @ mean(x_removed)``."""
    w = module.weight.detach().to(torch.float64)
    w = w.reshape(w.shape[0], -1, block) if isinstance(module, nn.Linear) else w.reshape(w.shape[0], w.shape[1], -1)
    return torch.einsum("ork,r->o", w[:, removed.to(w.device)], means.to(w.device, torch.float64)[removed])


def apply_selection(group: ChannelGroup, kept: torch.Tensor, coefficients: torch.Tensor, offset: torch.Tensor,
                    side_means: dict[int, torch.Tensor] | None = None, materialize: bool = True) -> None:
    """Keep channels ``kept`` (sorted, distinct) of ``group`` with consumer coefficients ``coefficients``.

    The consumer's kept input columns are multiplied by their coefficients (the reconstruction
    ``sum_i g_i c_i`` is linear in each channel's column), ``offset`` is added to the consumer's output
    (bias correction), and side inputs (e.g. squeeze-excitation) lose the removed channels with their
    mean contribution moved into the bias. ``materialize=False`` zeroes the removed columns instead of
    deleting anything: the same function, computed at full width (a reference for tests).
    """
    side_means = side_means or {}
    width = group.width
    removed = torch.ones(width, dtype=torch.bool)
    removed[kept.cpu()] = False
    removed_idx = removed.nonzero().squeeze(1)
    add_output_offset(group.bias_sink, offset)
    for s in group.slices:
        if s.kind == "in":
            add_output_offset(s.module, _side_offset(s.module, removed_idx, side_means[id(s.module)], s.block))
    if materialize:
        slice_inputs(group.consumer, kept, group.consumer_block, scale=coefficients)
        for s in group.slices:
            if s.kind == "out":
                slice_outputs(s.module, kept)
            elif s.kind == "bn":
                slice_batchnorm(s.module, kept)
            elif s.kind == "depthwise":
                slice_depthwise(s.module, kept)
            else:
                slice_inputs(s.module, kept, s.block)
        return
    scale = torch.zeros(width, dtype=torch.float64)
    scale[kept.cpu()] = coefficients.detach().cpu().to(torch.float64)
    _scale_inputs(group.consumer, scale, group.consumer_block)
    for s in group.slices:
        if s.kind == "in":
            _scale_inputs(s.module, (~removed).to(torch.float64), s.block)


def _scale_inputs(module: nn.Module, scale: torch.Tensor, block: int) -> None:
    with torch.no_grad():
        w = module.weight
        view = w.view(w.shape[0], w.shape[1], -1) if isinstance(module, nn.Conv2d) else w.view(w.shape[0], -1, block)
        view.mul_(scale.to(w).reshape(1, -1, 1))
