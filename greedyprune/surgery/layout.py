"""Where the original positions of every sliced axis are in a partly pruned model.

The channel-group contract (:mod:`greedyprune.graph.groups`) states positions in the **original**
layout. After some groups are pruned, a module shared by several groups (a BatchNorm over a DenseNet
concatenation, a consumer reading two groups, a stream producer that is also an internal consumer)
has lost some positions, and the others have moved. :class:`Layout` records, for every
``(target, axis)``, the original positions still present in their current order, so that

    current index of original position ``p`` = index of ``p`` in ``present(target, axis)``.

Axes: for a module target, axis 0 is its output rows (Conv2d/Linear output channels, the features of a
BatchNorm/LayerNorm, the channels of a depthwise conv) and axis 1 its input columns (Conv2d input
channels counted over all conv groups, Linear input features). For a parameter target (``kind ==
"param"``) the axis is the tensor's own axis. A Layout must be created before the model is pruned:
its original sizes are read off the model at construction.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph.groups import AxisRef, Consumer


def _module_sizes(module: nn.Module) -> tuple[int, int] | None:
    """``(rows, columns)`` of a layer with a ``weight``; columns None-like (0) for norms."""
    if isinstance(module, nn.Conv2d):
        return module.out_channels, module.in_channels
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features, 0
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[0]), 0
    return None


class Layout:
    """The original positions still present on every sliced axis of one model (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        self._sizes: dict[tuple[str, int], int] = {}
        for name, module in model.named_modules():
            sizes = _module_sizes(module)
            if sizes is not None:
                self._sizes[(name, 0)], self._sizes[(name, 1)] = sizes
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            for axis, size in enumerate(tensor.shape):
                self._sizes.setdefault((name, axis), int(size))
        self._present: dict[tuple[str, int], torch.Tensor] = {}

    def original_size(self, target: str, axis: int) -> int:
        """Size of the axis in the original model."""
        if (target, axis) not in self._sizes:
            raise KeyError(f"no axis {axis} of {target!r} in this model's layout")
        return self._sizes[(target, axis)]

    def present(self, target: str, axis: int) -> torch.Tensor:
        """Original positions still present on the axis, in their current order (LongTensor)."""
        key = (target, axis)
        if key not in self._present:
            self._present[key] = torch.arange(self.original_size(target, axis))
        return self._present[key]

    def current(self, target: str, axis: int, positions: torch.Tensor) -> torch.Tensor:
        """Current indices of original ``positions`` (any shape); raises if one was removed."""
        present = self.present(target, axis)
        lookup = torch.full((self.original_size(target, axis),), -1, dtype=torch.long)
        lookup[present] = torch.arange(present.numel())
        out = lookup[positions.long().cpu()]
        if (out < 0).any():
            gone = positions.reshape(-1)[(out.reshape(-1) < 0)][:3].tolist()
            raise ValueError(f"{target!r} axis {axis}: original positions {gone} were already removed")
        return out

    def remove(self, target: str, axis: int, positions: torch.Tensor) -> torch.Tensor:
        """Forget original ``positions``; returns the current indices that stay (for slicing tensors)."""
        present = self.present(target, axis)
        drop = torch.zeros(self.original_size(target, axis), dtype=torch.bool)
        drop[positions.long().reshape(-1).cpu()] = True
        keep = (~drop[present]).nonzero().squeeze(1)
        self._present[(target, axis)] = present[keep]
        return keep

    def size(self, target: str, axis: int) -> int:
        """Current size of the axis."""
        return int(self.present(target, axis).numel())

    # the contract's references on the current layout ------------------------------------------------
    def current_positions(self, ref: AxisRef) -> torch.Tensor:
        """``(width, block)`` current indices of a producer's or carrier's positions."""
        return self.current(ref.target, ref.axis if ref.kind == "param" else 0, ref.positions)

    def current_columns(self, consumer: Consumer) -> torch.Tensor:
        """``(width, block)`` current input columns (conv input channels / Linear features) of a consumer."""
        return self.current(consumer.target, 1, consumer.columns)

    def current_rows(self, target: str) -> torch.Tensor:
        """Original output rows of a layer still present (e.g. to map a consumer's output offset)."""
        return self.present(target, 0)
