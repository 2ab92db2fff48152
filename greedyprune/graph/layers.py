"""How each torch layer (a leaf of the trace) treats the channels it reads.

* Conv2d, ``groups == 1`` or grouped: a *consumer* of its input channels (axis 1; a grouped conv with
  ``partitions = groups``) and a *producer* of fresh output channels. Depthwise (``groups == in ==
  out``): a carrier, its output channels are its input channels.
* Linear: consumer of the last axis, producer of a fresh last axis (ConvNeXt's channel-last MLP, ViT).
* BatchNorm: a norm carrier on axis 1. LayerNorm: a norm carrier on the axis it normalises, found by
  perturbing one input element and seeing which output elements change (torchvision's ``LayerNorm2d``
  permutes inside its forward); it renormalises over channels, so its groups are not exact.
* activations, dropout, identity: the output carries the input's channels; pooling/padding/upsampling:
  the same channels on axis 1; ``Flatten``/``Unflatten``: applied to the id tensor.
* a layer called more than once (shared weights) or of any other kind (``MultiheadAttention``,
  ``GroupNorm``, ...) is opaque: the channels it reads are frozen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import fx, nn

from .idtensor import along, spread
from .ops import SHAPE_LAYERS, SPATIAL_LAYERS, UNARY_LAYERS

if TYPE_CHECKING:
    from .channels import Propagation


def normalised_axes(layer: nn.Module, x: torch.Tensor) -> list[int]:
    """Axes of ``x`` that ``layer`` normalises over, by perturbing ``x[0, ..., 0]``."""
    if type(layer).forward is nn.LayerNorm.forward:
        return list(range(x.dim() - len(layer.normalized_shape), x.dim()))
    with torch.no_grad():
        y = layer(x)
        bumped = x.clone()
        index = (0,) * x.dim()
        bumped[index] += 1.0 + abs(float(x[index]))
        changed = ((layer(bumped) - y).abs() > 1e-5 * (1.0 + float(y.abs().max()))).nonzero()
    return [axis for axis in range(x.dim()) if bool((changed[:, axis] != 0).any())]


def visit_layer(prop: "Propagation", node: fx.Node, layer: nn.Module) -> Any:
    """The id tensor of ``layer``'s output; records the layer's producer/consumer/carrier uses."""
    value = prop.traced.values.get(node.name)
    ids = prop.node_ids(node.args[0]) if node.args else None
    what = f"{node.target} ({type(layer).__name__})"
    if not isinstance(ids, torch.Tensor) or not isinstance(value, torch.Tensor):
        return prop.opaque(node, f"read by {what}")
    if isinstance(layer, UNARY_LAYERS):
        return ids if ids.shape == value.shape else prop.opaque(node, f"{what} changes the shape")
    if isinstance(layer, SPATIAL_LAYERS):
        return prop.spatial(node, ids, value, what)
    if isinstance(layer, SHAPE_LAYERS):
        out = layer(ids)
        return out if prop.shape_ok(out) else prop.opaque(node, f"{what} mixes the channel axis with another")
    weighted = isinstance(layer, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm))
    if weighted and prop.calls[node.target] > 1:
        return prop.opaque(node, f"{what} is called {prop.calls[node.target]} times (shared weights)")
    if isinstance(layer, nn.Conv2d):
        return _conv(prop, node, layer, ids, value, what)
    if isinstance(layer, nn.Linear):
        slots = along(ids, -1)
        if slots is None:
            return prop.opaque(node, f"{what} reads a tensor whose channels are not on its last axis")
        prop.use(node.target, "consumer", slots)
        fresh = prop.slots.new(layer.out_features)
        prop.use(node.target, "producer", fresh)
        return spread(fresh, value.dim() - 1, value.shape)
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        slots = along(ids, 1)
        if slots is None:
            return prop.opaque(node, f"{what} reads a tensor whose channels are not on axis 1")
        prop.use(node.target, "norm", slots)
        return ids
    if isinstance(layer, nn.LayerNorm) and len(layer.normalized_shape) == 1:
        axes = normalised_axes(layer, prop.value(node.args[0]))
        slots = along(ids, axes[0]) if len(axes) == 1 else None
        if slots is None:
            return prop.opaque(node, f"{what} normalises over axes {axes}, not one channel axis")
        prop.use(node.target, "norm", slots, layer_norm=True)
        return ids
    return prop.opaque(node, f"read by {what}")


def _conv(prop: "Propagation", node: fx.Node, conv: nn.Conv2d, ids: torch.Tensor, value: torch.Tensor,
          what: str) -> Any:
    slots = along(ids, 1)
    if slots is None:
        return prop.opaque(node, f"{what} reads a tensor whose channels are not on axis 1")
    if conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels:
        prop.use(node.target, "depthwise", slots)
        return spread(slots, 1, value.shape)
    prop.use(node.target, "consumer", slots, partitions=conv.groups)
    fresh = prop.slots.new(conv.out_channels)
    prop.use(node.target, "producer", fresh, partitions=conv.groups)
    return spread(fresh, 1, value.shape)
