"""Which values of a group's pruned-network run stay valid after the group is pruned, as they are or sliced.

The walker runs the pruned network from the cut at ``start(g)`` to ``g``'s consumer inputs, prunes ``g``,
then needs the cut at ``start(g + 1)``. Rerunning from ``start(g)`` recomputes ``g``'s producers (and
what lies between) a second time. After ``g`` keeps channels ``kept`` (removed physically:
``materialize=True``), a value that run computed is

* **clean** -- it depends on no layer ``g`` changes: valid as it is;
* **sliced** -- a Conv2d producer's output from clean inputs, or a BatchNorm / depthwise-conv carrier,
  a channelwise activation, or an add/multiply applied to sliced values only: what the pruned network
  now computes there is the old value at the kept channels, ``v[:, kept]``;
* **dirty** -- anything else (a consumer or bias sink of ``g`` reads or absorbs changed weights, an op
  that mixes channels): recomputed.

Bit for bit: a float32 CPU conv's output channels are each computed from the same inputs and weights
whichever other output channels the layer has (checked for dense convs of ResNet-50's shapes, 1x1 to
7x7, strides 1 and 2, down to one kept channel, and depthwise convs of MobileNetV2's shapes), a
BatchNorm and a channelwise op act per element. Not sliced (rerun as before): float64 or GPU values (a
float64 conv is an im2col + GEMM, and a GEMM with fewer output rows may take another kernel and round
differently -- it did, on MobileNets in float64) and Linear producers (the same). Slicing needs each producer's and carrier's rows to be the
group's channels in order (``positions == arange``, nothing removed yet); otherwise the group is
rerun as before (:func:`slice_layout_ok`).
"""

from __future__ import annotations

import torch
from torch import fx, nn

from ..graph.groups import ChannelGroup
from ..graph.ops import ELEMENTWISE, UNARY, UNARY_LAYERS, op_name

# per-element ops whose output at the kept channels is, bit for bit, the op applied to the kept channels:
# a checked subset of greedyprune.graph.ops' channel-preserving tables, matched by the same op names
CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Hardsigmoid,
                       nn.LeakyReLU, nn.ELU, nn.Identity)
CHANNELWISE_OPS = {"add", "mul", "relu", "relu6", "hardswish", "silu", "gelu", "sigmoid"}
assert set(CHANNELWISE_MODULES) <= set(UNARY_LAYERS) and CHANNELWISE_OPS <= UNARY | ELEMENTWISE
NORMS = (nn.BatchNorm2d,)


def _is_conv(module: nn.Module) -> bool:
    return type(module) is nn.Conv2d


def _channelwise(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return isinstance(root.get_submodule(node.target), CHANNELWISE_MODULES)
    return node.op in ("call_function", "call_method") and op_name(node.target) in CHANNELWISE_OPS


def classify(nodes: list[fx.Node], root: nn.Module, group: ChannelGroup) -> dict[fx.Node, str]:
    """``{node: "clean" | "sliced" | "dirty"}`` for every node (module docstring)."""
    producers = {ref.target for ref in group.producers if ref.kind == "out"}
    carriers = {ref.target for ref in group.carriers if ref.kind in ("norm", "depthwise")}
    changed = ({c.target for c in group.consumers} | {c.bias_sink for c in group.consumers}
               | {ref.target for ref in [*group.producers, *group.carriers]})
    kind: dict[fx.Node, str] = {}
    for node in nodes:
        inputs = [kind[a] for a in node.all_input_nodes]
        target = str(node.target)
        touched = node.op in ("call_module", "get_attr") and target in changed
        if node.op == "placeholder" or (not touched and all(k == "clean" for k in inputs)):
            kind[node] = "clean"
        elif node.op == "call_module" and target in producers and _is_conv(root.get_submodule(target)):
            kind[node] = "sliced" if all(k == "clean" for k in inputs) else "dirty"
        elif node.op == "call_module" and target in carriers and target not in producers:
            module = root.get_submodule(target)
            ok = isinstance(module, NORMS) or _is_conv(module)  # BatchNorm or depthwise conv
            kind[node] = "sliced" if ok and len(inputs) == 1 and inputs[0] == "sliced" else "dirty"
        elif not touched and inputs and all(k == "sliced" for k in inputs) and _channelwise(node, root):
            kind[node] = "sliced"
        else:
            kind[node] = "dirty"
    return kind


def slice_layout_ok(group: ChannelGroup, layout) -> bool:
    """Whether every producer's and carrier's rows are the group's channels in order, none removed yet."""
    width = group.width
    for ref in [*group.producers, *group.carriers]:
        if ref.kind == "param":
            continue
        if ref.positions.numel() != width or not torch.equal(ref.positions.reshape(-1), torch.arange(width)):
            return False
        rows = layout.current_rows(ref.target)
        if rows.numel() != width or not torch.equal(rows.cpu(), torch.arange(width)):
            return False
    return True


def keep_channels(value, kept: torch.Tensor, width: int):
    """``value[:, kept]`` when ``value`` is a float32 CPU activation ``(N, width, H, W)``; None if not."""
    if not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[1] != width:
        return None
    if value.dtype != torch.float32 or value.device.type != "cpu":
        return None  # float64 convs (im2col + GEMM) and GPU algorithms may round differently with fewer rows
    return value.index_select(1, kept.to(value.device))
