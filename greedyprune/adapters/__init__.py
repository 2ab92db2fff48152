"""Architecture adapters: one module per family, registry ``registered_adapters``."""

from . import chain, mobilenet, resnet  # noqa: F401  (register the families)
from .base import Adapter, ChannelGroup, Slice, find_adapter, registered_adapters

__all__ = ["Adapter", "ChannelGroup", "Slice", "find_adapter", "registered_adapters"]
