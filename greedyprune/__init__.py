"""greedyprune: provable network pruning by greedy forward selection that reconstructs layer outputs."""

from .errors import UserError
from .selection import Selection, greedy_select, greedy_select_gram, registered_methods

__all__ = ["Selection", "UserError", "greedy_select", "greedy_select_gram", "registered_methods"]
__version__ = "0.1.0"
