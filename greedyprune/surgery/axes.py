"""Slice one axis of a layer or parameter at *current* indices (the Layout maps original positions).

Each function keeps the module object (references elsewhere, e.g. a traced GraphModule, stay valid)
and replaces its tensors by smaller ones, updating the attributes its ``forward`` reads
(``out_channels``, ``in_channels``, ``groups``, ``num_features``, ``normalized_shape``, ...).

Conv2d with ``groups = g`` (not depthwise): weight ``(out, in/g, kh, kw)``; output row ``o`` belongs to
partition ``o // (out/g)`` and reads only input channels ``p*in/g .. (p+1)*in/g - 1`` of its partition
``p``. Removing inputs therefore removes, in each partition's rows, that partition's local columns; the
kept count must be equal in every partition (so ``in/g`` stays an integer).
"""

from __future__ import annotations

import torch
from torch import nn

Norm = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)


def _param(t: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(t.detach().clone().contiguous(), requires_grad=like.requires_grad)


def is_depthwise(module: nn.Module) -> bool:
    """A conv with one input and one output channel per conv group."""
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels == module.out_channels


def keep_rows(module: nn.Module, keep: torch.Tensor) -> None:
    """Keep output rows ``keep`` (current indices) of a Conv2d (any groups), Linear, BatchNorm or LayerNorm."""
    keep = keep.long()
    if isinstance(module, Norm):
        _keep_norm(module, keep)
        return
    keep = keep.to(module.weight.device)
    module.weight = _param(module.weight.index_select(0, keep), module.weight)
    if module.bias is not None:
        module.bias = _param(module.bias.index_select(0, keep), module.bias)
    if isinstance(module, nn.Linear):
        module.out_features = int(keep.numel())
        return
    depthwise = is_depthwise(module)
    module.out_channels = int(keep.numel())
    if depthwise:
        module.in_channels = module.groups = int(keep.numel())
    elif module.out_channels % module.groups:
        raise ValueError(f"grouped conv with {module.groups} groups cannot have {module.out_channels} output channels")


def _keep_norm(module: nn.Module, keep: torch.Tensor) -> None:
    for name in ("weight", "bias"):
        tensor = getattr(module, name, None)
        if tensor is not None:
            setattr(module, name, _param(tensor.index_select(0, keep.to(tensor.device)), tensor))
    for name in ("running_mean", "running_var"):
        tensor = getattr(module, name, None)
        if tensor is not None:
            setattr(module, name, tensor.index_select(0, keep.to(tensor.device)).clone())
    if isinstance(module, nn.LayerNorm):
        module.normalized_shape = (int(keep.numel()),) + tuple(module.normalized_shape[1:])
    else:
        module.num_features = int(keep.numel())


def _partitions(module: nn.Conv2d, columns: torch.Tensor) -> list[tuple[slice, torch.Tensor]]:
    """For each conv group: its output rows and the local indices of ``columns`` inside it."""
    g, per_in, per_out = module.groups, module.in_channels // module.groups, module.out_channels // module.groups
    return [(slice(p * per_out, (p + 1) * per_out),
             columns[(columns >= p * per_in) & (columns < (p + 1) * per_in)] - p * per_in) for p in range(g)]


def keep_columns(module: nn.Module, keep: torch.Tensor) -> None:
    """Keep input columns ``keep`` (current indices, sorted) of a Conv2d or Linear."""
    w, keep = module.weight, keep.long().to(module.weight.device)
    if isinstance(module, nn.Linear):
        module.weight = _param(w.index_select(1, keep), w)
        module.in_features = int(keep.numel())
        return
    if is_depthwise(module):
        raise ValueError("a depthwise conv is a carrier: slice it with keep_rows")
    if module.groups == 1:
        module.weight = _param(w.index_select(1, keep), w)
    else:
        parts = _partitions(module, keep)
        counts = {int(local.numel()) for _, local in parts}
        if len(counts) != 1:
            raise ValueError(f"grouped conv ({module.groups} groups) must keep the same number of input channels in "
                             f"every group, got {sorted(counts)}")
        module.weight = _param(torch.cat([w[rows].index_select(1, local) for rows, local in parts]), w)
    module.in_channels = int(keep.numel())


def scale_columns(module: nn.Module, columns: torch.Tensor, factors: torch.Tensor) -> None:
    """Multiply input columns ``columns`` (current indices) of a Conv2d or Linear by ``factors``, in place."""
    columns = columns.long().reshape(-1).to(module.weight.device)
    factors = factors.reshape(-1).to(module.weight)
    with torch.no_grad():
        w = module.weight
        if isinstance(module, nn.Linear) or module.groups == 1:
            shape = (1, -1) + (1,) * (w.dim() - 2)
            w[:, columns] *= factors.reshape(shape)
            return
        per_in, per_out = module.in_channels // module.groups, module.out_channels // module.groups
        for column, factor in zip(columns.tolist(), factors):
            p = column // per_in
            w[p * per_out:(p + 1) * per_out, column - p * per_in] *= factor


def keep_along(model: nn.Module, target: str, axis: int, keep: torch.Tensor) -> None:
    """Keep indices ``keep`` along ``axis`` of the parameter or buffer ``target`` (e.g. a layer scale)."""
    owner_name, _, attr = target.rpartition(".")
    owner = model.get_submodule(owner_name)
    tensor = getattr(owner, attr)
    new = tensor.index_select(axis, keep.long().to(tensor.device))
    if isinstance(tensor, nn.Parameter):
        setattr(owner, attr, _param(new, tensor))
    else:
        owner._buffers[attr] = new.clone()
