"""The implicit hypergradient of ``Phi(x) = f(x, y*(x))`` with autograd second-order products.

Implicit differentiation of ``grad_y g(x, y*(x)) = 0`` gives ``dy*/dx = -H^{-1} J`` with
``H = grad^2_yy g`` and ``J = grad^2_yx g``, hence

    grad Phi(x) = grad_x f(x, y) - J^T p,        H p = grad_y f(x, y),

evaluated at the current ``y`` (an estimate of ``y*(x)``). ``H v`` and ``J^T p`` are computed by
double backward through ``grad_y g`` (never forming H or J). The linear system is solved by either

- ``neumann``: ``p = eta * sum_{j=0}^{Q-1} (I - eta H)^j grad_y f`` (the truncated Neumann series of
  ``H^{-1}``; converges when ``0 < eta < 2 / lambda_max(H)``; Q-1 Hessian-vector products), or
- ``cg``: Q conjugate-gradient iterations on ``(H + damping I) p = grad_y f`` (Q products; for a
  positive-definite H, exact after dim(y) iterations; stops early at non-positive curvature), or
- ``bilinear``: no linear solve -- the problem's own closed form for a bilinear model
  (``problem.bilinear_estimates``; for mask learning ``H = gamma I``, ``J = diag(G)``, see
  :mod:`.masking`): two first-order oracle calls, no products.

Both use the given batches only, so calling twice with the same batches at two points gives the
paired differences that MRBO's and VRBO's recursive estimators need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..options import opt
from ..errors import UserError
from .problem import BilevelProblem, OracleCost, Tensors, dot, lincomb


@dataclass
class HypergradOptions:
    """How the linear system ``H p = grad_y f`` is solved."""

    solver: str = opt("neumann", "linear solver for the implicit gradient", choices=["neumann", "cg", "bilinear"])
    iters: int = opt(10, "Neumann terms Q (Q-1 Hessian-vector products) or CG iterations")
    eta: float = opt(0.1, "Neumann step: must be below 2/lambda_max of the lower-level Hessian")
    damping: float = opt(0.0, "CG only: solve (H + damping I) p = grad_y f")

    def __post_init__(self) -> None:
        if self.solver not in ("neumann", "cg", "bilinear"):
            raise UserError(f"hypergradient solver must be 'neumann', 'cg' or 'bilinear', got {self.solver!r}")
        if self.iters < 1:
            raise UserError(f"hypergradient iters must be >= 1, got {self.iters}")
        if self.solver == "neumann" and self.eta <= 0:
            raise UserError(f"Neumann step eta must be > 0, got {self.eta}")
        if not self.damping >= 0:
            raise UserError(f"CG damping must be >= 0, got {self.damping}")


def _leaves(values: Tensors) -> Tensors:
    return tuple(v.detach().requires_grad_(True) for v in values)


def _grad(output: Tensor | Tensors, inputs: Tensors, grad_outputs: Tensors | None = None, **kwargs: Any) -> Tensors:
    """Autograd gradient with zeros for inputs the output does not depend on."""
    if grad_outputs is not None:  # vector-Jacobian product: skip outputs that carry no graph
        pairs = [(o, v) for o, v in zip(output, grad_outputs) if o.requires_grad]
        if not pairs:
            return tuple(torch.zeros_like(i) for i in inputs)
        output, grad_outputs = tuple(o for o, _ in pairs), tuple(v for _, v in pairs)
    elif not output.requires_grad:
        return tuple(torch.zeros_like(i) for i in inputs)
    grads = torch.autograd.grad(output, inputs, grad_outputs=grad_outputs, allow_unused=True, **kwargs)
    return tuple(torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads))


def lower_gradient(problem: BilevelProblem, x: Tensors, y: Tensors, batch: Any, cost: OracleCost) -> Tensors:
    """``grad_y g(x, y; batch)`` (one first-order oracle call)."""
    yl = _leaves(y)
    with torch.enable_grad():
        out = _grad(problem.lower(tuple(v.detach() for v in x), yl, batch), yl)
    cost.gradients += 1
    return tuple(g.detach() for g in out)


def upper_gradients(problem: BilevelProblem, x: Tensors, y: Tensors, batch: Any,
                    cost: OracleCost) -> tuple[Tensors, Tensors]:
    """``(grad_x f, grad_y f)`` on one batch (one first-order oracle call)."""
    xl, yl = _leaves(x), _leaves(y)
    with torch.enable_grad():
        grads = _grad(problem.upper(xl, yl, batch), xl + yl)
    cost.gradients += 1
    return tuple(g.detach() for g in grads[:len(x)]), tuple(g.detach() for g in grads[len(x):])


def solve_hessian(hvp, rhs: Tensors, options: HypergradOptions) -> tuple[Tensors, int]:
    """Approximately solve ``H p = rhs`` given ``hvp(v) = H v``; returns ``(p, products used)``."""
    if options.solver == "neumann":
        term, total = rhs, rhs
        for _ in range(options.iters - 1):
            term = lincomb(1.0, term, -options.eta, hvp(term))
            total = lincomb(1.0, total, 1.0, term)
        return tuple(options.eta * t for t in total), options.iters - 1
    # Conjugate gradient on (H + damping I) p = rhs, started at p = 0.
    p = tuple(torch.zeros_like(r) for r in rhs)
    r, d = rhs, rhs
    rr = dot(r, r)
    used = 0
    for _ in range(options.iters):
        if float(rr) <= 1e-30:
            break
        hd = hvp(d)
        used += 1
        if options.damping:
            hd = lincomb(1.0, hd, options.damping, d)
        curvature = dot(d, hd)
        if float(curvature) <= 0:  # not positive definite along d: stop with what we have
            break
        step = rr / curvature
        p = lincomb(1.0, p, float(step), d)
        r = lincomb(1.0, r, -float(step), hd)
        rr_new = dot(r, r)
        d = lincomb(1.0, r, float(rr_new / rr), d)
        rr = rr_new
    return p, used


def hypergradient(problem: BilevelProblem, x: Tensors, y: Tensors, batch_f: Any, batch_g: Any,
                  options: HypergradOptions, cost: OracleCost) -> tuple[Tensors, Tensors]:
    """Estimate ``grad Phi(x) = grad_x f - J^T H^{-1} grad_y f`` at ``(x, y)``.

    ``f`` is evaluated on ``batch_f``, ``g`` and all its second-order products on ``batch_g``.
    Returns ``(hypergradient, grad_y g)``: the lower-level gradient comes free from the same pass.
    Costs two first-order oracle calls and ``iters`` (Neumann) or at most ``iters + 1`` (CG) products;
    ``bilinear`` delegates to ``problem.bilinear_estimates`` (two oracle calls, no products).
    """
    if options.solver == "bilinear":
        if not hasattr(problem, "bilinear_estimates"):
            raise UserError("hypergradient 'bilinear' needs a bilinear problem (bilinear_estimates); use cg or neumann")
        u, v = problem.bilinear_estimates(x, y, batch_f, batch_g)
        cost.gradients += 2
        return u, v
    fx, fy = upper_gradients(problem, x, y, batch_f, cost)
    xl, yl = _leaves(x), _leaves(y)
    with torch.enable_grad():
        gy = _grad(problem.lower(xl, yl, batch_g), yl, create_graph=True)

        def hvp(v: Tensors) -> Tensors:
            return tuple(h.detach() for h in _grad(gy, yl, grad_outputs=v, retain_graph=True))

        p, used = solve_hessian(hvp, fy, options)
        mixed = _grad(gy, xl, grad_outputs=p)
    cost.gradients += 1
    cost.products += used + 1
    return tuple(a - b.detach() for a, b in zip(fx, mixed)), tuple(g.detach() for g in gy)
