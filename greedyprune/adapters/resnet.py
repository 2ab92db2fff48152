"""torchvision ResNet (resnet18/34/50/101/152): the inner channels of every residual block.

BasicBlock: conv1's outputs (conv1 + bn1 shrink; consumer conv2, bias into bn2).
Bottleneck: conv1's outputs (consumer conv2, sink bn2) and conv2's outputs (consumer conv3, sink bn3).
The residual stream (block outputs, downsample) is left alone. Grouped convs (ResNeXt) are refused.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from .base import Adapter, ChannelGroup, Slice, check_dense_conv, register


class ResNetHead(nn.Module):
    """avgpool -> flatten -> fc, exactly as ``ResNet.forward`` ends."""

    def __init__(self, model: ResNet) -> None:
        super().__init__()
        self.avgpool, self.fc = model.avgpool, model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _blocks(model: ResNet) -> list[tuple[str, nn.Module]]:
    return [(f"layer{i}.{j}", block) for i in range(1, 5) for j, block in enumerate(getattr(model, f"layer{i}"))]


def stages(model: ResNet) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    return [stem] + [block for _, block in _blocks(model)] + [ResNetHead(model)]


def groups(model: ResNet) -> list[ChannelGroup]:
    found = []
    for index, (name, block) in enumerate(_blocks(model), start=1):
        if isinstance(block, BasicBlock):
            check_dense_conv(block.conv2, f"{name}.conv2")
            found.append(ChannelGroup(f"{name}.conv1", block.conv2, [Slice(block.conv1, "out"), Slice(block.bn1, "bn")],
                                      block.bn2, block.conv1, (index, index)))
        elif isinstance(block, Bottleneck):
            check_dense_conv(block.conv2, f"{name}.conv2")
            found.append(ChannelGroup(f"{name}.conv1", block.conv2, [Slice(block.conv1, "out"), Slice(block.bn1, "bn")],
                                      block.bn2, block.conv1, (index, index)))
            found.append(ChannelGroup(f"{name}.conv2", block.conv3, [Slice(block.conv2, "out"), Slice(block.bn2, "bn")],
                                      block.bn3, block.conv2, (index, index)))
    return found


register(Adapter("resnet", lambda m: isinstance(m, ResNet), stages, groups,
                 "torchvision ResNet with BasicBlock/Bottleneck: resnet18/34/50/101/152"))
