"""Give an unpruned model the shapes stored in a pruned state dict, so it can load it.

Only tensor shapes are read (no pickled modules). Per layer of the fresh model:

* Conv2d: ``out_channels = weight.shape[0]``; a depthwise conv (``groups == in == out``) stays depthwise
  (``groups = in = out``); any other conv keeps its ``groups`` and gets ``in_channels = weight.shape[1] *
  groups`` (a pruned grouped conv keeps its group count; each group got narrower);
* Linear: ``out_features, in_features = weight.shape``;
* BatchNorm: ``num_features`` and running statistics; LayerNorm: ``normalized_shape = weight.shape``;
* biases added by bias correction are created; every other parameter or buffer whose saved shape
  differs (a layer scale, a position embedding) is replaced by an empty tensor of the saved shape.

Anything else that differs is reported by ``load_state_dict`` as usual.
"""

from __future__ import annotations

import torch
from torch import nn


def _empty(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def _resize_layer(module: nn.Module, weight: torch.Tensor) -> None:
    if isinstance(module, nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
        module.out_channels = int(weight.shape[0])
        module.in_channels = module.out_channels if depthwise else int(weight.shape[1]) * module.groups
        if depthwise:
            module.groups = module.out_channels
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = (int(s) for s in weight.shape)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        module.num_features = int(weight.shape[0])
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = tuple(int(s) for s in weight.shape)


def adopt_shapes(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Resize ``model``'s layers and tensors in place to the shapes in ``state_dict``; returns ``model``."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state_dict.get(prefix + "weight")
        if weight is not None and isinstance(getattr(module, "weight", None), torch.Tensor) \
                and weight.shape != module.weight.shape:
            _resize_layer(module, weight)
        for attr, tensor in [*module._parameters.items(), *module._buffers.items()]:
            saved = state_dict.get(prefix + attr)
            if tensor is None or saved is None or saved.shape == tensor.shape:
                continue
            if attr in module._parameters:
                module._parameters[attr] = nn.Parameter(_empty(saved.shape, tensor), tensor.requires_grad)
            else:
                module._buffers[attr] = _empty(saved.shape, tensor)
        bias = state_dict.get(prefix + "bias")
        if bias is not None and "bias" in module._parameters and module._parameters["bias"] is None:
            module.bias = nn.Parameter(_empty(bias.shape, module.weight))
    return model
