"""Give an unpruned model the shapes stored in a pruned state dict, so it can load it.

Only tensor shapes are read (no pickled modules): Conv2d / Linear / BatchNorm widths follow their
saved weights, depthwise convs keep ``groups == channels``, and biases added by bias correction
are created. Anything else that differs is reported by ``load_state_dict`` as usual.
"""

from __future__ import annotations

import torch
from torch import nn


def _empty(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def adopt_shapes(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Resize ``model``'s layers in place to the shapes in ``state_dict``; returns ``model``."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state_dict.get(prefix + "weight")
        if weight is None or not isinstance(module, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            continue
        bias = state_dict.get(prefix + "bias")
        if isinstance(module, nn.Conv2d):
            depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
            if weight.shape != module.weight.shape:
                module.weight = nn.Parameter(_empty(weight.shape, module.weight))
                module.out_channels = weight.shape[0]
                module.in_channels = weight.shape[0] if depthwise else weight.shape[1] * module.groups
                if depthwise:
                    module.groups = weight.shape[0]
        elif isinstance(module, nn.Linear):
            if weight.shape != module.weight.shape:
                module.weight = nn.Parameter(_empty(weight.shape, module.weight))
                module.out_features, module.in_features = weight.shape
        else:
            n = weight.shape[0]
            if n != module.num_features:
                module.num_features = n
                module.weight = nn.Parameter(_empty(weight.shape, module.weight))
                module.bias = nn.Parameter(_empty(weight.shape, module.bias))
                if module.running_mean is not None:
                    module.running_mean = torch.zeros(n, dtype=module.running_mean.dtype)
                    module.running_var = torch.ones(n, dtype=module.running_var.dtype)
            continue
        if bias is not None and (module.bias is None or module.bias.shape != bias.shape):
            module.bias = nn.Parameter(_empty(bias.shape, module.weight))
    return model
