"""Channel groups from the traced graph of any CNN (torch.fx): tracing, channel propagation, groups."""

from .groups import AXIS_KINDS, GROUP_KINDS, AxisRef, ChannelGroup, Consumer, FrozenChannels

__all__ = ["AXIS_KINDS", "GROUP_KINDS", "AxisRef", "ChannelGroup", "Consumer", "FrozenChannels"]
