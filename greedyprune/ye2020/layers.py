"""The layers ``ye2020`` grows: a channel set, where its mask sits, how the result is made physical.

A :class:`Layer` is one channel group of the network. During selection its channels are multiplied by
a weight vector ``w`` (0 for a channel not chosen; ``N/n`` for each of the ``n`` chosen of ``N``):

* ``internal`` group (hidden channels; an adapter group): ``w`` scales the consumer's *input* columns,
  which is the released code's mask after the depthwise ReLU6 of a MobileNetV2 block;
* ``stream`` group (block outputs shared by a residual addition): ``w`` scales every producer's output
  after its BatchNorm, before the addition (the released code's second mask, tied over the blocks that
  share the channels, so a channel can be removed physically).

:meth:`Layer.materialize` then removes the unchosen channels and folds ``N/n`` into the consumer columns
(internal) or the producers' BatchNorm affine (stream), so the smaller model computes exactly what
the masked one did. ``stage`` is the first stage the mask affects: activations are cached at its
input and every candidate costs one forward of the stages from there on.

Stream groups are built here for torchvision MobileNetV2 only (stages of 24, 32, 64, 96 and 160
block outputs; the stem, the t=1 block's 16, the 320 and the 1280 are left alone, as in the released
code) until traced stream groups (``greedyprune.graph``) replace :func:`mobilenet_v2_streams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from torchvision.models.mobilenetv2 import InvertedResidual, MobileNetV2

from ..adapters import find_adapter
from ..errors import UserError
from ..surgery import apply_selection, slice_batchnorm, slice_inputs, slice_outputs


class Mask:
    """The weights a layer's hooks apply: ``value`` is ``(N,)`` (one weighting for the whole batch) or
    ``(B, N)`` (one per image: several candidates scored in one stacked forward pass)."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value


@dataclass
class Layer:
    name: str
    kind: str            # "internal" or "stream"
    width: int           # current number of channels N
    stage: int           # activations are cached at this stage's input
    install: Callable[[Mask], list[RemovableHandle]]           # multiply the channels by mask.value
    materialize: Callable[[torch.Tensor, float], None]         # keep channels `kept`, each scaled by `scale`


def _scale_channels(x: torch.Tensor, mask: Mask, block: int = 1) -> torch.Tensor:
    """``x`` with channel ``c`` (dim 1; a Linear's ``block`` consecutive features) multiplied by ``w[c]``
    (``w[b, c]`` for image ``b`` when the mask holds one weighting per image)."""
    w = mask.value.to(x)
    w = w if block == 1 else w.repeat_interleave(block, dim=-1)
    w = w.reshape(-1 if w.dim() == 2 else 1, w.shape[-1])
    return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


def internal_layer(group) -> Layer:
    """An adapter :class:`~greedyprune.adapters.base.ChannelGroup` (hidden channels) as a :class:`Layer`."""
    if group.side_inputs:
        raise UserError(f"ye2020 cannot prune {group.name}: its channels also feed squeeze-excitation, which the "
                        "released procedure (MobileNetV2 only) has no rule for")

    def install(mask: Mask) -> list[RemovableHandle]:
        return [group.consumer.register_forward_pre_hook(
            lambda m, args: (_scale_channels(args[0], mask, group.consumer_block),))]

    def materialize(kept: torch.Tensor, scale: float) -> None:
        out = group.consumer.weight.shape[0]
        apply_selection(group, kept, torch.full((kept.numel(),), float(scale), dtype=torch.float64),
                        torch.zeros(out, dtype=torch.float64))

    return Layer(group.name, "internal", group.width, group.stages[0], install, materialize)


def _stream_layer(name: str, stage: int, blocks: list[InvertedResidual], readers: list[nn.Conv2d]) -> Layer:
    norms = [b.conv[3] for b in blocks]

    def install(mask: Mask) -> list[RemovableHandle]:
        return [bn.register_forward_hook(lambda m, args, out: _scale_channels(out, mask)) for bn in norms]

    def materialize(kept: torch.Tensor, scale: float) -> None:
        for block, bn in zip(blocks, norms):
            slice_outputs(block.conv[2], kept)
            slice_batchnorm(bn, kept)
            with torch.no_grad():
                bn.weight.mul_(scale)
                bn.bias.mul_(scale)
            block.out_channels = int(kept.numel())
        for conv in readers:
            slice_inputs(conv, kept)

    return Layer(name, "stream", norms[0].num_features, stage, install, materialize)


def mobilenet_v2_streams(model: MobileNetV2) -> list[Layer]:
    """Block-output groups of a torchvision MobileNetV2: each run of blocks with the same output width."""
    features = list(model.features)
    runs: list[list[int]] = []
    for i, block in enumerate(features):
        if not isinstance(block, InvertedResidual):
            continue
        if runs and block.use_res_connect and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    layers = []
    for run in runs[1:-1]:  # not the t=1 block's output (16) nor the last block's (320)
        after = run[-1] + 1
        if not (isinstance(features[after], InvertedResidual) and len(features[after].conv) == 4):
            continue
        readers = [features[j].conv[0][0] for j in run[1:]] + [features[after].conv[0][0]]
        blocks = [features[j] for j in run]
        layers.append(_stream_layer(f"features.{run[0]}-{run[-1]}.stream", run[0], blocks, readers))
    return layers


def layers_of(model: nn.Module, streams: bool) -> list[Layer]:
    """The layers in the order ye2020 prunes them: input to output (a block's hidden channels before its output)."""
    found = [internal_layer(g) for g in find_adapter(model).groups(model)]
    if streams:
        if not isinstance(model, MobileNetV2):
            raise UserError(f"ye2020 prunes block outputs (streams=True) of MobileNetV2 only, not {type(model).__name__}; "
                            "use streams=False (--no-ye-streams) for hidden channels alone")
        found += mobilenet_v2_streams(model)
    return sorted(found, key=lambda layer: (layer.stage, layer.kind == "stream"))
