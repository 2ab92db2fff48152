"""Id tensors: an integer tensor of a value's shape whose elements are the slots they belong to.

A tensor *carries its channels on axis a* when every element's slot depends only on its index along
``a``: ``ids[..., i, ...] == slots[i]`` for all other indices. A conv's output carries them on axis 1,
a Linear's on the last axis, ``flatten(conv_out, 1)`` on axis 1 with each slot repeated ``H*W`` times,
and ConvNeXt's ``permute(0, 2, 3, 1)`` moves them to axis 3. A tensor whose slots depend on two axes
(channel shuffle's ``view(b, g, c/g, h, w)``) carries no single channel axis.
"""

from __future__ import annotations

import torch

from .slots import NONE


def spread(slots: torch.Tensor, axis: int, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """The id tensor of ``shape`` carrying ``slots`` on ``axis`` (``len(slots) == shape[axis]``)."""
    view = [1] * len(shape)
    view[axis] = -1
    return slots.reshape(view).expand(*shape).clone()


def along(ids: torch.Tensor, axis: int) -> torch.Tensor | None:
    """The slots along ``axis`` if ``ids`` depends only on that axis (else None); all must be tracked."""
    if ids.dim() == 0 or bool((ids < 0).any()):
        return None
    axis = axis % ids.dim()
    index = [0] * ids.dim()
    index[axis] = slice(None)
    slots = ids[tuple(index)]
    return slots if torch.equal(spread(slots, axis, ids.shape), ids) else None


def channel_axis(ids: torch.Tensor) -> int | None:
    """The axis ``ids`` carries its channels on, preferring an axis with several distinct slots.

    Returns None when no single axis works (or some elements are untracked). An id tensor holding one
    slot everywhere (the model input, an opaque value) carries it on every axis: axis 1 (or 0) is returned.
    """
    if ids.numel() == 0 or bool((ids < 0).any()):
        return None
    if bool((ids == ids.reshape(-1)[0]).all()):
        return min(1, ids.dim() - 1) if ids.dim() else None
    for axis in range(ids.dim()):
        if ids.shape[axis] > 1 and along(ids, axis) is not None:
            return axis
    return None


def tracked(ids: torch.Tensor | None) -> bool:
    return isinstance(ids, torch.Tensor) and bool((ids != NONE).any())


def slot_set(ids: torch.Tensor) -> set[int]:
    return set(ids[ids >= 0].unique().tolist())


def broadcast_ids(ids: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``ids`` broadcast like its value to ``shape`` (right-aligned, size-1 axes repeated)."""
    return torch.broadcast_to(ids, shape)


def broadcast_axes(ids: torch.Tensor, shape: torch.Size) -> set[int]:
    """Axes of ``shape`` along which ``ids`` is repeated by broadcasting (absent or size 1, target > 1)."""
    offset = len(shape) - ids.dim()
    return {a for a in range(len(shape))
            if shape[a] > 1 and (a < offset or ids.shape[a - offset] == 1)}


def varying_axes(ids: torch.Tensor) -> set[int]:
    """Axes along which the slots of ``ids`` change."""
    out = set()
    for axis in range(ids.dim()):
        if ids.shape[axis] > 1 and not bool((ids == ids.narrow(axis, 0, 1)).all()):
            out.add(axis)
    return out
