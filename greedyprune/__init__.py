"""greedyprune: provable network pruning by greedy forward selection that reconstructs layer outputs."""

__version__ = "0.1.0"

from ._checkout import map_sibling_analysis  # noqa: E402

map_sibling_analysis(__file__)  # a source checkout: greedyprune.analysis is the folder analysis/ next to this one

from .errors import UserError  # noqa: E402
from .modelfile import load, save  # noqa: E402
from .prune import Pruner, prune  # noqa: E402
from .selection import Selection, greedy_select, greedy_select_gram, registered_methods  # noqa: E402

__all__ = ["Pruner", "Selection", "UserError", "greedy_select", "greedy_select_gram", "load", "prune",
           "registered_methods", "save"]
