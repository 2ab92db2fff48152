"""Id tensors: the slot each element of a traced value belongs to.

A tensor *carries its channels on axis a* when every element's slot depends only on its index along
``a``: ``ids[..., i, ...] == slots[i]`` for all other indices. A conv's output carries them on axis 1,
a Linear's on the last axis, ``flatten(conv_out, 1)`` on axis 1 with each slot repeated ``H*W`` times,
and ConvNeXt's ``permute(0, 2, 3, 1)`` moves them to axis 3. A tensor whose slots depend on two axes
(channel shuffle's ``view(b, g, c/g, h, w)``) carries no single channel axis.

Ids are kept compact where they can be: :class:`AxisIds` stores only the slots of the one axis they
depend on (``C`` numbers for a ``1 x C x H x W`` activation); a full integer tensor of the value's shape
is made only for operations that need one (shape ops, broadcasting with parameters) and compressed again
afterwards. Every helper here takes either form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .slots import NONE


@dataclass(frozen=True)
class AxisIds:
    """Ids of a tensor of ``shape`` that depend only on ``axis``: ``slots[i]`` along it."""

    slots: torch.Tensor
    axis: int
    shape: torch.Size

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return int(torch.Size(self.shape).numel())

    def full(self) -> torch.Tensor:
        return spread(self.slots, self.axis, self.shape)


Ids = torch.Tensor | AxisIds


def spread(slots: torch.Tensor, axis: int, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """The full id tensor of ``shape`` carrying ``slots`` on ``axis`` (``len(slots) == shape[axis]``)."""
    view = [1] * len(shape)
    view[axis] = -1
    return slots.reshape(view).expand(*shape).clone()


def on_axis(slots: torch.Tensor, axis: int, shape: torch.Size | tuple[int, ...]) -> AxisIds:
    """Compact ids carrying ``slots`` on ``axis`` of ``shape``."""
    return AxisIds(slots, axis % len(shape), torch.Size(shape))


def constant(slot: int, shape: torch.Size | tuple[int, ...]) -> Ids:
    """Ids of ``shape`` holding one slot everywhere."""
    if len(shape) == 0:
        return torch.tensor(slot)
    return AxisIds(torch.full((shape[0],), slot, dtype=torch.long), 0, torch.Size(shape))


def full(ids: Ids) -> torch.Tensor:
    return ids.full() if isinstance(ids, AxisIds) else ids


def _constant(slots: torch.Tensor) -> bool:
    return slots.numel() == 0 or bool((slots == slots.reshape(-1)[0]).all())


def along(ids: Ids, axis: int) -> torch.Tensor | None:
    """The slots along ``axis`` if ``ids`` depends only on that axis (else None); all must be tracked."""
    if ids.dim() == 0:
        return None
    axis = axis % ids.dim()
    if isinstance(ids, AxisIds):
        if bool((ids.slots < 0).any()):
            return None
        if axis == ids.axis:
            return ids.slots
        return torch.full((ids.shape[axis],), int(ids.slots[0]), dtype=torch.long) if _constant(ids.slots) else None
    if bool((ids < 0).any()):
        return None
    index = [0] * ids.dim()
    index[axis] = slice(None)
    slots = ids[tuple(index)]
    return slots if torch.equal(spread(slots, axis, ids.shape), ids) else None


def channel_axis(ids: Ids) -> int | None:
    """The axis ``ids`` carries its channels on, preferring an axis with several distinct slots.

    Returns None when no single axis works (or some elements are untracked). Ids holding one slot
    everywhere (the model input, an opaque value) carry it on every axis: axis 1 (or 0) is returned.
    """
    if ids.numel() == 0 or ids.dim() == 0:
        return None
    values = ids.slots if isinstance(ids, AxisIds) else ids
    if bool((values < 0).any()):
        return None
    if _constant(values):
        return min(1, ids.dim() - 1)
    if isinstance(ids, AxisIds):
        return ids.axis
    for axis in range(ids.dim()):
        if ids.shape[axis] > 1 and along(ids, axis) is not None:
            return axis
    return None


def compress(ids: Ids) -> Ids:
    """``ids`` as :class:`AxisIds` when it carries its channels on one axis (else unchanged)."""
    if isinstance(ids, AxisIds) or not isinstance(ids, torch.Tensor) or ids.dim() == 0:
        return ids
    axis = channel_axis(ids)
    return ids if axis is None else AxisIds(along(ids, axis), axis, ids.shape)


def tracked(ids: object) -> bool:
    if isinstance(ids, AxisIds):
        return bool((ids.slots != NONE).any())
    return isinstance(ids, torch.Tensor) and bool((ids != NONE).any())


def slot_set(ids: Ids) -> set[int]:
    values = ids.slots if isinstance(ids, AxisIds) else ids
    return set(values[values >= 0].unique().tolist())


def broadcast_axes(ids: Ids, shape: torch.Size) -> set[int]:
    """Axes of ``shape`` along which ``ids`` is repeated by broadcasting (absent or size 1, target > 1)."""
    offset = len(shape) - ids.dim()
    return {a for a in range(len(shape))
            if shape[a] > 1 and (a < offset or ids.shape[a - offset] == 1)}


def varying_axes(ids: Ids) -> set[int]:
    """Axes along which the slots of ``ids`` change."""
    if isinstance(ids, AxisIds):
        return set() if _constant(ids.slots) else {ids.axis}
    out = set()
    for axis in range(ids.dim()):
        if ids.shape[axis] > 1 and not bool((ids == ids.narrow(axis, 0, 1)).all()):
            out.add(axis)
    return out
