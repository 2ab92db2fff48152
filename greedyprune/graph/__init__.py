"""Channel groups from the traced graph of any CNN (torch.fx): tracing, channel propagation, groups.

``find_groups(model, example, streams=True) -> TracedModel`` is the entry point; the groups follow the
contract in :mod:`greedyprune.graph.groups` (positions in the original layout).
"""

from .build import TracedModel, find_groups
from .groups import AXIS_KINDS, GROUP_KINDS, AxisRef, ChannelGroup, Consumer, FrozenChannels
from .trace import is_torch_layer, trace

__all__ = ["AXIS_KINDS", "GROUP_KINDS", "AxisRef", "ChannelGroup", "Consumer", "FrozenChannels", "TracedModel",
           "find_groups", "is_torch_layer", "trace"]
