"""Channel groups found from a model's traced graph: the contract between tracing, pipeline and surgery.

A *channel group* is a set of channels that can only be removed together: every tensor that carries
them (a conv's output, the BatchNorm and activation after it, a residual addition joining several such
tensors, a concatenation holding them at an offset) loses the same channels. Tracing
(:mod:`greedyprune.graph`) finds, for each group:

* ``producers`` -- Conv2d / Linear layers whose output rows *are* the channels (a residual stream has
  several: the stem and every block's last conv, the downsample conv);
* ``carriers`` -- everything else that holds the channels and is sliced alongside: BatchNorm,
  LayerNorm over channels, depthwise convs, per-channel parameters (ConvNeXt's layer scale) and the
  output rows of squeeze-excitation's second conv (its scale multiplies the channels);
* ``consumers`` -- Conv2d / Linear layers that *read* the channels: their input columns are refit.

Positions are always given in the **original** (unpruned) layout; the surgery maps them to the current
layout of a partly pruned model. ``positions[c]`` lists where group channel ``c`` sits along the
module's axis: one position for a conv (a row or an input channel), ``H*W`` positions for a Linear
reading a flattened conv output, an offset for a consumer reading a concatenation.

The reconstruction objective of a group sums over its consumers: consumer ``k`` with weight
``W_k`` and input columns ``x_k`` contributes ``G_k``, ``b_k``, ``E_k``; the engine sees
``G = sum_k G_k``, ``b = sum_k b_k``, ``E = sum_k E_k`` and returns one coefficient per kept channel,
folded into every consumer's columns for that channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# what an AxisRef is: producers are "out"; carriers are "norm", "depthwise" or "param"
AXIS_KINDS = ("out", "norm", "depthwise", "param")
GROUP_KINDS = ("internal", "stream")


@dataclass
class AxisRef:
    """Where a group's channels live in one module (or one parameter) of the model.

    Attributes:
        target: qualified name in the model: a module (``model.get_submodule``) for kinds ``out``,
            ``norm``, ``depthwise``; a parameter or buffer (``model.get_parameter``) for ``param``.
        kind: ``out`` (rows of a Conv2d/Linear weight and its bias; for a grouped conv its output
            channels), ``norm`` (BatchNorm, or LayerNorm over the channel axis: per-channel affine and running
            statistics), ``depthwise`` (a conv with ``groups == in == out``: one channel in, the same
            channel out), ``param`` (a tensor sliced along ``axis``).
        positions: ``LongTensor (width, block)``, original positions of each group channel on that axis.
        axis: the sliced axis (``param`` only; 0 otherwise).
    """

    target: str
    kind: str
    positions: torch.Tensor
    axis: int = 0

    def __post_init__(self) -> None:
        if self.kind not in AXIS_KINDS:
            raise ValueError(f"AxisRef kind must be one of {AXIS_KINDS}, got {self.kind!r}")


@dataclass
class Consumer:
    """A Conv2d or Linear that reads the group's channels; its input columns are refit.

    Attributes:
        target: qualified module name.
        columns: ``LongTensor (width, block)``, the original input positions (conv: input channels;
            Linear: input features, ``block = H*W`` after a flatten) of each group channel.
        bias_sink: qualified name of the module that absorbs this consumer's output offset (bias
            correction for the removed channels' mean): the consumer itself (a bias is created if it
            has none) or the BatchNorm that is the only reader of its output.
        partitions: the consumer's conv ``groups`` when it is a grouped (not depthwise) conv: input
            channel ``c`` only reaches the outputs of its partition, so the group's channels must keep
            an equal number in each partition (see :attr:`ChannelGroup.partition`).
        gate: True when the consumer reads the channels only to compute a gate that multiplies them
            (squeeze-excitation's first conv reading the pooled channels). Such a consumer is not part of
            the reconstruction objective: the surgery removes its
            columns without scaling the kept ones, and its output offset should be the removed columns'
            mean contribution ``W[:, removed] @ mean(x_removed)``.
    """

    target: str
    columns: torch.Tensor
    bias_sink: str
    partitions: int = 1
    gate: bool = False


@dataclass
class TensorRef:
    """A value of the traced graph (a node's output) that holds a group's channels.

    Attributes:
        node: the node's name in the traced graph.
        positions: ``LongTensor (width, block)``, where each group channel sits along the value's channel
            axis (``block = H*W`` for a flattened conv output; several values hold other channels too).
        size: the length of the value's channel axis (all channels, of every group and frozen ones).
    """

    node: str
    positions: torch.Tensor
    size: int


@dataclass
class ChannelGroup:
    """Channels removed together, with everything that produces, carries and reads them.

    Attributes:
        name: stable, readable name used in reports and ``widths=`` (for a single-producer group the
            producer's module path, e.g. ``layer1.0.conv1``; family name layers may alias it, e.g.
            ``features.3.hidden``; a residual stream is named after its stage, e.g. ``layer1.stream``).
        width: number of channels in the original model.
        kind: ``internal`` (one producer, channels confined between it and its consumers) or
            ``stream`` (channels shared by an addition: several producers, e.g. a ResNet stage's
            residual stream or a MobileNet stage's block outputs).
        producers / carriers / consumers: see the module docstring.
        partition: the kept width must split into ``partition`` equal parts, part ``p`` holding
            channels ``p*width/partition .. (p+1)*width/partition - 1`` (grouped convs); 1 otherwise.
        exact: False when removing channels also changes the kept ones (LayerNorm over the channel
            axis renormalises): the reconstruction objective is then an approximation.
        span: ``(first, last)`` indices into the traced graph's node list: the part of the network
            that must run to collect this group's statistics (its first producer to its last consumer).
        score: qualified name of the layer whose output filters' L1 norms rank channels for the
            ``magnitude`` baseline (the first producer).
        tensors: every value of the traced graph that holds the channels (a conv's or BatchNorm's
            output, an activation, a residual sum, a concatenation, a pooled or flattened tensor): what
            a latency cost model charges per channel (:mod:`greedyprune.latency`).
    """

    name: str
    width: int
    kind: str
    producers: list[AxisRef]
    carriers: list[AxisRef]
    consumers: list[Consumer]
    span: tuple[int, int]
    score: str
    partition: int = 1
    exact: bool = True
    notes: list[str] = field(default_factory=list)
    tensors: list[TensorRef] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in GROUP_KINDS:
            raise ValueError(f"group kind must be one of {GROUP_KINDS}, got {self.kind!r}")
        if self.width % self.partition:
            raise ValueError(f"group {self.name!r}: width {self.width} is not divisible by partition {self.partition}")


@dataclass
class FrozenChannels:
    """Channels that tracing found but that cannot be pruned, and why (shown by ``greedyprune info``).

    Examples of ``reason``: "the model's input", "the model's output (class logits)", "read by
    torch.chunk, whose split depends on the channel count", "passes through aten.view that mixes
    channels with other dimensions".
    """

    name: str
    width: int
    reason: str
    modules: list[str] = field(default_factory=list)
