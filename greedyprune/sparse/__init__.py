"""Unstructured sparsity: masks (``torch.nn.utils.parametrize``), layer densities, score -> mask, reports.

Masks zero weights exactly but do not make a model faster; see :mod:`greedyprune.sparse.report`.
"""

from .density import DISTRIBUTIONS, layer_counts, layer_densities, sparsity_counts
from .masks import (WeightMask, apply_masks, get_masks, is_masked, load_masked_state_dict, mask_module,
                    mask_optimizer_state, prunable_weights, raw_weight, remove_masks, weight_shapes,
                    zero_optimizer_state)
from .report import count_macs, format_report, sparsity_report
from .select import global_topk, layerwise_topk, mask_counts, prune_surviving, random_masks, topk_mask

__all__ = [
    "DISTRIBUTIONS", "layer_counts", "layer_densities", "sparsity_counts",
    "WeightMask", "apply_masks", "get_masks", "is_masked", "load_masked_state_dict", "mask_module",
    "mask_optimizer_state", "prunable_weights", "raw_weight", "remove_masks", "weight_shapes",
    "zero_optimizer_state", "count_macs", "format_report", "sparsity_report",
    "global_topk", "layerwise_topk", "mask_counts", "prune_surviving", "random_masks", "topk_mask",
]
