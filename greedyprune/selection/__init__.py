"""The selection engine: statistics -> :class:`Selection`. One registry of methods (``registered_methods``)."""

from . import herding, ranked, simplex  # noqa: F401  (register their methods)
from .api import greedy_select, greedy_select_gram
from .base import Selection, methods_with_replacement, registered_methods

__all__ = ["Selection", "greedy_select", "greedy_select_gram", "registered_methods", "methods_with_replacement"]
