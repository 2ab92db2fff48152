"""Unstructured weight masks through ``torch.nn.utils.parametrize``.

A masked layer computes with ``W = W_orig (.) M`` where ``M`` is a 0/1 buffer of the weight's shape.
Consequences, all relied on by the baselines:

* forward: a masked entry of ``W`` is exactly ``0.0`` (multiplication by an exact zero);
* backward: ``dL/dW_orig = dL/dW (.) M``, so a masked entry's gradient is exactly zero;
* optimizer: :func:`apply_masks` also zeroes the pruned entries of ``W_orig`` and
  :func:`zero_optimizer_state` zeroes their optimizer state, after which SGD (momentum, weight decay)
  and Adam/AdamW keep them at exactly zero: every update term of an entry is a multiple of its
  gradient, its state or its own value, all zero (Adam: ``m = v = 0`` gives a ``0 / (0 + eps)`` step);
* saving: the mask is a buffer, so ``model.state_dict()`` carries it (plain tensors, loadable with
  ``weights_only=True``); rebuild a masked model from such a state dict with :func:`load_masked_state_dict`.

Masks are keyed by the weight's name in the unmasked model, e.g. ``"fc1.weight"``.
Masks do not make a model faster: dense kernels still multiply the zeros.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import UserError

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MASK_SUFFIX = ".parametrizations.weight.0.mask"


class WeightMask(nn.Module):
    """Parametrization ``W = W_orig * mask``. Optionally records the dense gradient ``dL/dW``.

    ``capture_grad = True`` makes the next forward register a hook on ``W`` that stores
    ``dL/dW`` (the gradient of the *effective*, dense-shaped weight, non-zero also at masked entries)
    in ``dense_grad``. RigL grows connections by this gradient.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)
        self.capture_grad = False
        self.dense_grad: torch.Tensor | None = None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        out = weight * self.mask
        if self.capture_grad and out.requires_grad:
            out.register_hook(self._store)
        return out

    def _store(self, grad: torch.Tensor) -> None:
        self.dense_grad = grad.detach().clone()


def prunable_weights(model: nn.Module) -> "OrderedDict[str, nn.Module]":
    """Weight name (``"<module>.weight"``) -> module, for every Linear/Conv layer, in module order."""
    return OrderedDict((f"{name}.weight" if name else "weight", module) for name, module in model.named_modules()
                       if isinstance(module, PRUNABLE_TYPES))


def weight_shapes(model: nn.Module) -> "OrderedDict[str, torch.Size]":
    """Weight name -> shape, for every prunable layer."""
    return OrderedDict((name, module.weight.shape) for name, module in prunable_weights(model).items())


def _module(model: nn.Module, name: str) -> nn.Module:
    layers = prunable_weights(model)
    if name not in layers:
        raise UserError(f"{name!r} is not a prunable weight of this model; choose from {', '.join(layers)}")
    return layers[name]


def is_masked(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight") and isinstance(
        module.parametrizations.weight[0], WeightMask)


def mask_module(model: nn.Module, name: str) -> WeightMask:
    """The :class:`WeightMask` of weight ``name`` (raises if that weight is not masked)."""
    module = _module(model, name)
    if not is_masked(module):
        raise UserError(f"{name} has no mask; call apply_masks first")
    return module.parametrizations.weight[0]


def raw_weight(model: nn.Module, name: str) -> nn.Parameter:
    """The trainable parameter behind weight ``name`` (``W_orig`` when masked, else the weight itself)."""
    module = _module(model, name)
    return module.parametrizations.weight.original if is_masked(module) else module.weight


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor], zero_pruned: bool = True) -> nn.Module:
    """Put (or replace) a mask on each named weight; ``masks`` values are 0/1 or bool tensors.

    With ``zero_pruned`` the pruned entries of the underlying parameter are set to zero as well, so
    that optimizers keep them at zero (see the module docstring). Returns ``model`` (modified in place).
    The parameter object is kept, so an optimizer built before masking still updates it.
    """
    layers = prunable_weights(model)
    for name, mask in masks.items():
        if name not in layers:
            raise UserError(f"mask for {name!r} does not match a prunable weight; choose from {', '.join(layers)}")
        module = layers[name]
        if tuple(mask.shape) != tuple(module.weight.shape):
            raise UserError(f"mask for {name} has shape {tuple(mask.shape)}, the weight {tuple(module.weight.shape)}")
        raw = raw_weight(model, name)
        value = mask.detach().to(device=raw.device, dtype=raw.dtype)
        if not bool(((value == 0) | (value == 1)).all()):
            raise UserError(f"mask for {name} must hold only 0 and 1")
        if is_masked(module):
            module.parametrizations.weight[0].mask.copy_(value)
        else:
            parametrize.register_parametrization(module, "weight", WeightMask(value.clone()))
        if zero_pruned:
            with torch.no_grad():
                raw.mul_(value)
    return model


def get_masks(model: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """Weight name -> bool mask, for every masked weight (unmasked weights are left out)."""
    return OrderedDict((name, module.parametrizations.weight[0].mask.bool().clone())
                       for name, module in prunable_weights(model).items() if is_masked(module))


def remove_masks(model: nn.Module, bake: bool = True) -> nn.Module:
    """Remove every mask. ``bake=True`` leaves ``W_orig * mask`` as a plain weight (zeros stay)."""
    for module in prunable_weights(model).values():
        if is_masked(module):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=bake)
    return model


def zero_optimizer_state(optimizer: torch.optim.Optimizer, param: torch.Tensor, where: torch.Tensor) -> None:
    """Zero every per-element state tensor of ``param`` (momentum, Adam moments, ...) where ``where`` is True."""
    state = optimizer.state.get(param, {})
    where = where.to(param.device).bool()
    with torch.no_grad():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.masked_fill_(where, 0)


def mask_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Zero the optimizer state (and any stored gradient) of every masked-out entry of ``model``."""
    for name, mask in get_masks(model).items():
        param = raw_weight(model, name)
        zero_optimizer_state(optimizer, param, ~mask)
        if param.grad is not None:
            param.grad.masked_fill_(~mask.to(param.device), 0)


def load_masked_state_dict(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> nn.Module:
    """Load a state dict that may hold masks (saved from a masked model) into a fresh or masked model.

    The masks found in ``state`` are applied first, so the keys line up; weights unmasked in ``state``
    but masked in ``model`` are unmasked (baked) first.
    """
    masks = {}
    for key, value in state.items():
        if key.endswith(_MASK_SUFFIX):
            prefix = key[: -len(_MASK_SUFFIX)]
            masks[f"{prefix}.weight" if prefix else "weight"] = value
    layers = prunable_weights(model)
    for name, module in layers.items():
        if is_masked(module) and name not in masks:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    apply_masks(model, masks, zero_pruned=False)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:160]
        raise UserError(f"state dict does not fit this model ({first}); build the same architecture first") from None
    return model
