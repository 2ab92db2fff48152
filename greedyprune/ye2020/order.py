"""Which traced groups ``ye2020`` grows, and in which order."""

from __future__ import annotations

from torch import fx, nn

from ..graph.groups import ChannelGroup
from ..pipeline.networks import is_internal
from .layers import Layer, make_layer


def ye_groups(model: nn.Module, groups: list[ChannelGroup], streams: bool) -> list[ChannelGroup]:
    """The groups the released procedure prunes: the block-internal ones (``streams=False`` of the pipeline)
    and, with ``streams``, the groups of kind ``stream`` (MobileNetV2: the 24/32/64/96/160 block outputs),
    except a stream the stem produces (the released code never prunes the stem)."""
    convs = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    stem = convs[0] if convs else None
    return [g for g in groups if is_internal(model, g)
            or (streams and g.kind == "stream" and all(p.target != stem for p in g.producers))]


def layers_in_order(model: nn.Module, nodes: list[fx.Node], groups: list[ChannelGroup], streams: bool,
                    pos: dict[fx.Node, int]) -> list[Layer]:
    """:class:`Layer` s from input to output (by the first node each group touches; a block's hidden
    channels come before the block output they feed)."""
    chosen = ye_groups(model, groups, streams)
    return sorted((make_layer(model, g, nodes, pos) for g in chosen), key=lambda layer: (layer.group.span[0],
                                                                                         layer.name))

