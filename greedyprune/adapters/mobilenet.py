"""torchvision MobileNetV2 and MobileNetV3: the hidden (expansion) channels of each inverted residual.

A hidden channel is removed from the expand conv + BN, the depthwise conv + BN, squeeze-excitation
(MobileNetV3: fc1's input columns, its bias corrected for the removed channels' mean, and fc2's
output rows), and the projection conv's input (the consumer; its offset goes into the BN after it).
Blocks without an expansion conv (the first t=1 block) are left alone, as are the stem, block
outputs and the last convs.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as V2Block, MobileNetV2
from torchvision.models.mobilenetv3 import InvertedResidual as V3Block, MobileNetV3
from torchvision.ops.misc import SqueezeExcitation

from ..errors import UserError
from .base import Adapter, ChannelGroup, Slice, check_dense_conv, register


class MobileNetV2Head(nn.Module):
    """``adaptive_avg_pool2d -> flatten -> classifier`` exactly as ``MobileNetV2.forward`` ends."""

    def __init__(self, model: MobileNetV2) -> None:
        super().__init__()
        self.classifier = model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, (1, 1)), 1))


class MobileNetV3Head(nn.Module):
    """``avgpool -> flatten -> classifier`` exactly as ``MobileNetV3.forward`` ends."""

    def __init__(self, model: MobileNetV3) -> None:
        super().__init__()
        self.avgpool, self.classifier = model.avgpool, model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(x), 1))


def _check_depthwise(conv: nn.Conv2d, where: str) -> None:
    if not (conv.groups == conv.in_channels == conv.out_channels):
        raise UserError(f"{where} has groups={conv.groups} with {conv.in_channels}->{conv.out_channels} channels; "
                        "only true depthwise convs can be pruned through")


def _hidden_group(name: str, stage: int, expand: nn.Sequential, dw: nn.Sequential, project: nn.Conv2d,
                  sink: nn.Module, se: SqueezeExcitation | None) -> ChannelGroup:
    check_dense_conv(expand[0], f"{name} expand conv")
    check_dense_conv(project, f"{name} projection conv")
    _check_depthwise(dw[0], f"{name} depthwise conv")
    slices = [Slice(expand[0], "out"), Slice(expand[1], "bn"), Slice(dw[0], "depthwise"), Slice(dw[1], "bn")]
    side = []
    if se is not None:
        slices += [Slice(se.fc1, "in"), Slice(se.fc2, "out")]
        side.append(se.fc1)
    return ChannelGroup(f"{name}.hidden", project, slices, sink, expand[0], (stage, stage), side_inputs=side)


def v2_stages(model: MobileNetV2) -> list[nn.Module]:
    return list(model.features) + [MobileNetV2Head(model)]


def v2_groups(model: MobileNetV2) -> list[ChannelGroup]:
    found = []
    for index, block in enumerate(model.features):
        if isinstance(block, V2Block) and len(block.conv) == 4:  # expand, depthwise, project conv, BN
            expand, dw, project, bn = block.conv
            found.append(_hidden_group(f"features.{index}", index, expand, dw, project, bn, None))
    return found


def v3_stages(model: MobileNetV3) -> list[nn.Module]:
    return list(model.features) + [MobileNetV3Head(model)]


def v3_groups(model: MobileNetV3) -> list[ChannelGroup]:
    found = []
    for index, block in enumerate(model.features):
        if not isinstance(block, V3Block):
            continue
        layers = list(block.block)
        se = next((m for m in layers if isinstance(m, SqueezeExcitation)), None)
        convs = [m for m in layers if not isinstance(m, SqueezeExcitation)]
        if len(convs) != 3:  # no expansion conv: hidden channels are the block input, left alone
            continue
        expand, dw, project = convs
        found.append(_hidden_group(f"features.{index}", index, expand, dw, project[0], project[1], se))
    return found


register(Adapter("mobilenet_v2", lambda m: isinstance(m, MobileNetV2), v2_stages, v2_groups,
                 "torchvision MobileNetV2"))
register(Adapter("mobilenet_v3", lambda m: isinstance(m, MobileNetV3), v3_stages, v3_groups,
                 "torchvision MobileNetV3 small/large"))
