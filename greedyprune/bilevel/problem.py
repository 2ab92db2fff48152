"""What a bilevel solver needs from a problem, and how its cost is counted.

A problem ``min_x f(x, y*(x))`` with ``y*(x) = argmin_y g(x, y)`` is given by stochastic oracles:
``sample(n, generator)`` draws a minibatch of ``n`` samples, ``upper(x, y, batch)`` and
``lower(x, y, batch)`` evaluate f and g on it as scalar tensors that autograd can differentiate
(twice for g). ``x`` and ``y`` are tuples of tensors so a network's parameter list fits directly.

Solvers draw every batch through :meth:`OracleCost.draw`, so ``cost.samples`` counts the samples
used; ``cost.gradients`` counts first-order oracle calls (one gradient of f or g on one batch) and
``cost.products`` second-order products (one Hessian-vector or mixed Jacobian-vector product).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import torch
from torch import Tensor

Tensors = tuple[Tensor, ...]


class BilevelProblem(Protocol):
    """Stochastic oracles of a bilevel problem (see the module docstring)."""

    def sample(self, n: int, generator: torch.Generator) -> Any: ...

    def upper(self, x: Tensors, y: Tensors, batch: Any) -> Tensor: ...

    def lower(self, x: Tensors, y: Tensors, batch: Any) -> Tensor: ...


@dataclass
class OracleCost:
    """Running totals of what a solver consumed."""

    samples: int = 0
    gradients: int = 0
    products: int = 0

    def draw(self, problem: BilevelProblem, n: int, generator: torch.Generator) -> Any:
        self.samples += int(n)
        return problem.sample(int(n), generator)

    def as_dict(self) -> dict[str, int]:
        return {"samples": self.samples, "gradients": self.gradients, "products": self.products}


def as_tensors(values: Tensor | Sequence[Tensor]) -> Tensors:
    """A tensor or a sequence of tensors -> a tuple of detached tensors (the solver's own copies)."""
    if isinstance(values, Tensor):
        values = (values,)
    return tuple(v.detach().clone() for v in values)


def lincomb(a: float, u: Tensors, b: float, v: Tensors) -> Tensors:
    """``a u + b v`` elementwise over tuples of tensors."""
    return tuple(a * ui + b * vi for ui, vi in zip(u, v))


def dot(u: Tensors, v: Tensors) -> Tensor:
    """Inner product summed over the tensors of two tuples."""
    return sum((ui * vi).sum() for ui, vi in zip(u, v))


def norm(u: Tensors) -> float:
    return float(torch.sqrt(sum((ui.double() ** 2).sum() for ui in u)))


def check_finite(values: Tensors, what: str) -> None:
    """Raise instead of carrying NaN/Inf forward (a diverging step size, usually)."""
    for v in values:
        if not bool(torch.isfinite(v).all()):
            from ..errors import UserError
            raise UserError(f"{what} became NaN/Inf; lower the step sizes (lr_x, lr_y) or the Neumann step")
