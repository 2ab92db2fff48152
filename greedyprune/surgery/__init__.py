"""Tensor surgery: remove channels from modules, fold coefficients, correct biases, adopt saved shapes."""

from .slicing import add_output_offset, slice_batchnorm, slice_depthwise, slice_inputs, slice_outputs

__all__ = ["add_output_offset", "slice_batchnorm", "slice_depthwise", "slice_inputs", "slice_outputs"]
from .group import apply_selection  # noqa: E402

__all__ += ["apply_selection"]
from .adopt import adopt_shapes  # noqa: E402

__all__ += ["adopt_shapes"]
