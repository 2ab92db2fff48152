"""Physically remove channels: slice Conv2d / Linear / BatchNorm tensors and fix their attributes.

Each function keeps the module object (so references held elsewhere stay valid) and replaces its
parameters by smaller ones. ``keep`` is a sorted LongTensor of channel indices to keep.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


def _param(t: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.detach().clone().contiguous(), requires_grad=like.requires_grad)


def slice_outputs(module: nn.Module, keep: torch.Tensor) -> None:
    """Keep output channels ``keep`` of a Conv2d (groups=1) or Linear (weight rows, bias)."""
    keep = keep.to(module.weight.device)
    module.weight = _param(module.weight.index_select(0, keep), module.weight)
    if module.bias is not None:
        module.bias = _param(module.bias.index_select(0, keep), module.bias)
    if isinstance(module, nn.Conv2d):
        module.out_channels = int(keep.numel())
    else:
        module.out_features = int(keep.numel())


def slice_inputs(module: nn.Module, keep: torch.Tensor, block: int = 1,
                 scale: torch.Tensor | None = None) -> None:
    """Keep input channels ``keep`` of a Conv2d (groups=1) or Linear, optionally scaling each kept one.

    For a Linear after ``Flatten`` each channel owns ``block`` consecutive input features.
    ``scale`` (one factor per kept channel) folds selection coefficients into the weights.
    """
    w = module.weight
    keep = keep.to(w.device)
    if isinstance(module, nn.Conv2d):
        new = w.index_select(1, keep)
        if scale is not None:
            new = new * scale.to(new).reshape(1, -1, 1, 1)
        module.in_channels = int(keep.numel())
    else:
        blocks = w.reshape(w.shape[0], -1, block).index_select(1, keep)
        if scale is not None:
            blocks = blocks * scale.to(blocks).reshape(1, -1, 1)
        new = blocks.reshape(w.shape[0], -1)
        module.in_features = int(new.shape[1])
    module.weight = _param(new, w)


def slice_batchnorm(module: nn.modules.batchnorm._BatchNorm, keep: torch.Tensor) -> None:
    """Keep channels ``keep`` of a BatchNorm (affine parameters and running statistics)."""
    keep = keep.to(module.running_mean.device if module.running_mean is not None else module.weight.device)
    if module.affine:
        module.weight = _param(module.weight.index_select(0, keep), module.weight)
        module.bias = _param(module.bias.index_select(0, keep), module.bias)
    if module.running_mean is not None:
        module.running_mean = module.running_mean.index_select(0, keep).clone()
        module.running_var = module.running_var.index_select(0, keep).clone()
    module.num_features = int(keep.numel())


def slice_depthwise(module: nn.Conv2d, keep: torch.Tensor) -> None:
    """Keep channels ``keep`` of a depthwise conv (``groups == in == out``)."""
    if not (module.groups == module.in_channels == module.out_channels):
        raise UserError(f"conv with groups={module.groups}, in={module.in_channels}, out={module.out_channels} "
                        "is neither depthwise nor dense; grouped convs cannot be pruned safely")
    slice_outputs(module, keep)
    module.in_channels = module.groups = int(keep.numel())


def add_output_offset(module: nn.Module, delta: torch.Tensor) -> None:
    """Add ``delta`` to a layer's output: to its bias (created if absent), or via a BatchNorm's mean.

    For a BatchNorm after the layer, ``BN(y + delta)`` equals BN with ``running_mean - delta``.
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.running_mean -= delta.to(module.running_mean)
        return
    if module.bias is None:
        module.bias = nn.Parameter(torch.zeros(module.weight.shape[0], dtype=module.weight.dtype,
                                               device=module.weight.device))
    with torch.no_grad():
        module.bias += delta.to(module.bias)
