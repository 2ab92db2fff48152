"""One checked forward pass: does the model run on these inputs, and stay finite? Names the layer if not.

Used before any statistics are gathered, so a shape mismatch or a model with NaN/Inf weights fails in
seconds with a one-line :class:`UserError` instead of a traceback (or NaN statistics) later.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def all_finite(t: torch.Tensor) -> bool:
    """Whether every element of ``t`` is finite: one reduction (``sum(t)`` is finite when every element is:
    NaN and Inf propagate, ``Inf - Inf = NaN``), the elementwise test only when the sum is not (NaN/Inf
    somewhere, or a float overflow of finite values)."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def checked_forward(model: nn.Module, x: torch.Tensor, what: str = "the calibration images") -> torch.Tensor:
    """``model(x)`` under ``no_grad``; raises :class:`UserError` naming the layer that fails or goes non-finite.

    * ``x`` itself holds NaN/Inf -> the inputs are blamed.
    * a layer raises (typically a shape mismatch) -> its name, the input shape, and the error's first line.
    * a leaf layer's output is the first to hold NaN/Inf -> its name (and whether its own weights do).
    """
    shape = tuple(x.shape[1:])
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise UserError(f"{what} contain NaN/Inf values; check the data")
    names = {module: name or type(model).__name__ for name, module in model.named_modules()}
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    entered: list[nn.Module] = []
    bad: list[nn.Module] = []

    def pre_hook(module: nn.Module, _args) -> None:
        entered.append(module)

    def hook(module: nn.Module, _args, out) -> None:
        if not bad and isinstance(out, torch.Tensor) and out.is_floating_point() and not all_finite(out):
            bad.append(module)

    handles = [m.register_forward_pre_hook(pre_hook) for m in leaves] + [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = model(x)
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        if isinstance(err, UserError):
            raise
        where = f" at layer {names[entered[-1]]!r} ({type(entered[-1]).__name__})" if entered else ""
        raise UserError(f"the model cannot run on {what} of shape {shape}{where}: {_first_line(err)}; "
                        "use data of the input shape the model was built for") from None
    finally:
        for handle in handles:
            handle.remove()
    if bad or (isinstance(out, torch.Tensor) and not bool(torch.isfinite(out).all())):
        if not bad:
            raise UserError(f"the model's output holds NaN/Inf on {what}; check the weights and inputs")
        layer = bad[0]
        weights = [p for p in layer.parameters(recurse=False)] + [b for b in layer.buffers(recurse=False)
                                                                  if b.is_floating_point()]
        cause = " (its own weights hold NaN/Inf)" if any(not bool(torch.isfinite(w).all()) for w in weights) else ""
        raise UserError(f"non-finite activations (NaN/Inf): layer {names[layer]!r} ({type(layer).__name__}) is the "
                        f"first to produce them on {what}{cause}; check or reload the weights")
    return out
