"""``ye2020``: the released procedure of Ye et al. (ICML 2020) as a baseline (labelled data, whole-network loss).

Unlike the library's methods it does not reconstruct layer outputs: it grows each layer's channel set
by the cross-entropy of the whole network on labelled mini-batches, with uniform weights, until top-1
recovers, and fine-tunes between layers. See :func:`ye2020_prune`.
"""

from ..partial import CutRunner
from .order import layers_in_order, ye_groups
from .layers import Layer, Mask, make_layer
from .options import Ye2020Options
from .run import ye2020_prune
from .select import LayerOutcome, grow_layer, score_candidates, uniform_weights

__all__ = ["CutRunner", "Layer", "LayerOutcome", "Mask", "Ye2020Options", "grow_layer", "layers_in_order",
           "make_layer", "score_candidates", "uniform_weights", "ye2020_prune", "ye_groups"]
