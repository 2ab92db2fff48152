"""Plain chains: an ``nn.Sequential`` of Linear / Conv2d layers with per-channel layers between them.

Every weight layer except the last is a producer; its output channels are read by the next weight
layer (the consumer). Allowed between them: activations, BatchNorm of that width, pooling, dropout,
and one ``Flatten`` from a conv to a Linear (each conv channel then owns ``H*W`` Linear inputs).
"""

from __future__ import annotations

from torch import nn

from ..errors import UserError
from .base import Adapter, ChannelGroup, Slice, check_dense_conv, register

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)
PER_CHANNEL = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.ELU,
               nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d,
               nn.BatchNorm2d, nn.Flatten)


def matches(model: nn.Module) -> bool:
    if not isinstance(model, nn.Sequential):
        return False
    children = list(model)
    weights = [m for m in children if isinstance(m, WEIGHT_LAYERS)]
    return len(weights) >= 2 and all(isinstance(m, WEIGHT_LAYERS + PER_CHANNEL) for m in children)


def stages(model: nn.Sequential) -> list[nn.Module]:
    return list(model)


def groups(model: nn.Sequential) -> list[ChannelGroup]:
    children = list(model)
    weight_idx = [i for i, m in enumerate(children) if isinstance(m, WEIGHT_LAYERS)]
    found = []
    for a, b in zip(weight_idx, weight_idx[1:]):
        producer, consumer = children[a], children[b]
        check_dense_conv(producer, f"layer {a}")
        check_dense_conv(consumer, f"layer {b}")
        width = producer.weight.shape[0]
        slices, block = [Slice(producer, "out")], 1
        for i in range(a + 1, b):
            mid = children[i]
            if isinstance(mid, (nn.BatchNorm1d, nn.BatchNorm2d)):
                slices.append(Slice(mid, "bn"))
        if isinstance(consumer, nn.Linear):
            if consumer.in_features % width:
                raise UserError(f"layer {b} reads {consumer.in_features} features, not a multiple of the "
                                f"{width} channels of layer {a}; cannot map channels to inputs")
            block = consumer.in_features // width
        after = children[b + 1] if b + 1 < len(children) else None
        sink = after if consumer.bias is None and isinstance(after, (nn.BatchNorm1d, nn.BatchNorm2d)) else consumer
        found.append(ChannelGroup(str(a), consumer, slices, sink, producer, (a, b), consumer_block=block))
    return found


register(Adapter("chain", matches, stages, groups, "nn.Sequential chains of Linear/Conv2d (LeNet-style MLPs, small CNNs)"))
