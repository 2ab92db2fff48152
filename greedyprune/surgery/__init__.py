"""Tensor surgery: remove a channel group's channels from a model, fold coefficients, correct biases.

:class:`Layout` maps the contract's original positions to a partly pruned model's current indices;
:func:`apply_selection` prunes one traced group (:mod:`greedyprune.graph`); :func:`adopt_shapes`
resizes a fresh model to a pruned state dict.
"""

from .adopt import adopt_shapes
from .apply import apply_selection, check_kept
from .axes import is_depthwise, keep_along, keep_columns, keep_rows, scale_columns
from .layout import Layout
from .slicing import (
           add_output_offset,
           slice_batchnorm,
           slice_depthwise,
           slice_inputs,
           slice_outputs,
)

__all__ = ["Layout", "add_output_offset", "adopt_shapes", "apply_selection", "check_kept", "is_depthwise",
           "keep_along", "keep_columns", "keep_rows", "scale_columns", "slice_batchnorm", "slice_depthwise",
           "slice_inputs", "slice_outputs"]
