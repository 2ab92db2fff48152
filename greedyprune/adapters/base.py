"""Channel groups and the adapter registry.

An adapter knows one architecture family. It splits the model's forward pass into ``stages``
(modules applied one after another: ``model(x) == stages[-1](...stages[0](x))``) and lists the
prunable ``ChannelGroup`` s in forward order, each with the stages it spans. Nothing is traced:
each family's structure is written out, so unsupported structure is refused rather than mis-pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import UserError

SLICE_KINDS = ("out", "bn", "depthwise", "in")


@dataclass
class Slice:
    """A module that carries the group's channels besides the consumer.

    kind: ``out`` (Conv2d/Linear output channels), ``bn`` (BatchNorm), ``depthwise`` (depthwise conv),
    ``in`` (input channels of a non-consumer layer such as squeeze-excitation's first conv; its bias is
    corrected for the mean of the removed inputs).
    """

    module: nn.Module
    kind: str
    block: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SLICE_KINDS:
            raise ValueError(f"slice kind must be one of {SLICE_KINDS}, got {self.kind!r}")


@dataclass
class ChannelGroup:
    """Channels that are pruned together: produced by ``slices``' ``out`` layers, read by ``consumer``.

    Attributes:
        name: stable name (module path of the producer), used in reports and budgets.
        consumer: Conv2d (groups=1) or Linear whose input channels are the candidates.
        consumer_block: input features per channel of a Linear consumer after Flatten (1 otherwise).
        slices: every other module that must shrink with the group.
        bias_sink: where the consumer's output offset goes (the consumer if it has a bias, else the
            BatchNorm right after it).
        score_module: the layer whose output filters' L1 norms are the magnitude scores.
        stages: (first, last) stage indices the group spans (producer .. consumer).
        consumer_stage_path: path of the consumer inside the last stage (hooks use the module itself).
    """

    name: str
    consumer: nn.Module
    slices: list[Slice]
    bias_sink: nn.Module
    score_module: nn.Module
    stages: tuple[int, int]
    consumer_block: int = 1
    side_inputs: list[nn.Module] = field(default_factory=list)

    @property
    def width(self) -> int:
        w = self.consumer.weight
        return w.shape[1] if isinstance(self.consumer, nn.Conv2d) else w.shape[1] // self.consumer_block


@dataclass
class Adapter:
    """One architecture family: ``matches(model)``, ``stages(model)``, ``groups(model)``."""

    name: str
    matches: Callable[[nn.Module], bool]
    stages: Callable[[nn.Module], list[nn.Module]]
    groups: Callable[[nn.Module], list[ChannelGroup]]
    families: str = ""


registered_adapters: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    registered_adapters[adapter.name] = adapter
    return adapter


def find_adapter(model: nn.Module) -> Adapter:
    """The adapter for ``model``, or a one-line error listing what is supported."""
    for adapter in registered_adapters.values():
        if adapter.matches(model):
            return adapter
    supported = "; ".join(f"{a.name} ({a.families})" for a in registered_adapters.values())
    raise UserError(f"no pruning adapter for {type(model).__name__}; supported: {supported}")


def check_dense_conv(conv: nn.Module, where: str) -> None:
    """Refuse grouped (non-depthwise) convs: their channels cannot be removed independently."""
    if isinstance(conv, nn.Conv2d) and conv.groups != 1:
        raise UserError(f"{where} is a grouped conv (groups={conv.groups}); greedyprune refuses to prune "
                        "through grouped convs because their channels cannot be removed independently")
