"""Objectives: a group's consumer batches -> the engine's (G, b, E) and per-consumer bias offsets.

Registry ``registered_objectives`` (name -> factory ``(group, views, product_dtype) -> GroupObjective``);
``reconstruction`` (the default) rebuilds every consumer's original output.
"""

from . import reconstruction  # noqa: F401  (registers "reconstruction")
from .base import ConsumerView, GroupObjective, GroupProblem, registered_objectives

__all__ = ["ConsumerView", "GroupObjective", "GroupProblem", "registered_objectives"]
