"""How each traced function, method and torch layer treats channels (name tables).

* ``UNARY``: the output carries the first tensor argument's channels element for element.
* ``ELEMENTWISE``: broadcasting operands are joined: operands carrying channels on the same axis are
  the same channels (residual ``add``, squeeze-excitation ``mul``, layer-scale ``mul`` by a parameter).
* ``SPATIAL``: per-channel ops that change the spatial size (pooling, interpolation).
* ``REDUCE``: reductions; fine when they do not reduce over the channel axis.
* ``SHAPE``: re-arrangements, computed by applying the same op to the id tensor; ``SELECT`` among them
  may drop channels (``chunk``, ``split``, slicing), which ties them to the channel count.
* ``CONCAT``: ``cat``/``stack``.

Anything else is *opaque*: the channels it reads are frozen, and its output is one frozen slot.
"""

from __future__ import annotations

from torch import nn

UNARY = {"relu", "relu_", "relu6", "gelu", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "hardswish",
         "hardswish_", "hardsigmoid", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "selu",
         "celu", "softplus", "mish", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
         "feature_alpha_dropout", "stochastic_depth", "contiguous", "clone", "detach", "float", "half",
         "double", "to", "type_as", "abs", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal", "erf", "neg",
         "pos", "clamp", "clamp_", "clamp_min", "clamp_max", "clip", "zeros_like", "ones_like", "empty_like",
         "full_like", "nan_to_num", "gelu_"}
ELEMENTWISE = {"add", "sub", "mul", "truediv", "div", "iadd", "isub", "imul", "itruediv", "add_", "sub_",
               "mul_", "div_", "rsub", "maximum", "minimum", "pow", "where", "addcmul"}
SPATIAL = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "max_pool2d", "interpolate",
           "upsample", "upsample_nearest", "upsample_bilinear", "lp_pool2d"}
REDUCE = {"mean", "sum", "amax", "amin", "std", "var", "logsumexp"}
SELECT = {"getitem", "chunk", "split", "unbind", "narrow", "select", "tensor_split", "index_select",
          "split_with_sizes"}
SHAPE = SELECT | {"view", "reshape", "flatten", "permute", "transpose", "t", "unsqueeze", "squeeze",
                  "expand", "expand_as", "repeat", "movedim", "swapaxes", "unflatten", "view_as", "reshape_as"}
CONCAT = {"cat", "concat", "concatenate", "stack"}
RESHAPES = {"view", "reshape"}  # a fixed size among their arguments is a channel count baked into the code

UNARY_LAYERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid,
                nn.Sigmoid, nn.Tanh, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Hardtanh, nn.Identity,
                nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
SPATIAL_LAYERS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample,
                  nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.LPPool2d)
SHAPE_LAYERS = (nn.Flatten, nn.Unflatten)


def op_name(target: object) -> str:
    """The name a call_function / call_method target is looked up by (``operator.add`` -> ``add``)."""
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))
