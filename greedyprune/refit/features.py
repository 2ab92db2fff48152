"""The features the global refit matches: by default the input of the last ``nn.Linear`` to run."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import UserError


def last_linear(model: nn.Module, example: torch.Tensor) -> str:
    """Name of the last ``nn.Linear`` to run on ``example`` (the classifier); an error if there is none."""
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: order.append(n))
               for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise UserError(f"{type(model).__name__} runs no nn.Linear; name the feature layer with refit_features=NAME")
    return order[-1]


def features_of(module: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                output: bool) -> torch.Tensor:
    """Input (or output) of ``module`` while ``run(x)`` executes (the model, or its stages after a cut), ``(B, D)``."""
    got: list[torch.Tensor] = []
    handle = (module.register_forward_hook(lambda m, a, out: got.append(out)) if output else
              module.register_forward_pre_hook(lambda m, a: got.append(a[0])))
    try:
        run(x)
    finally:
        handle.remove()
    if not got:
        raise UserError(f"the feature layer {type(module).__name__} did not run")
    return got[0].flatten(1)
