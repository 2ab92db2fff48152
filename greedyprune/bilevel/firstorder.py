"""BiP's first-order alternating scheme for bilinear mask-learning problems (Zhang et al., NeurIPS 2022).

For problems exposing ``bilinear_hypergradient(x, y, batch) -> (implicit gradient, grad_y g)`` (see
:class:`~greedyprune.bilevel.masking.MaskLearningProblem`: ``H ~ gamma I``, ``J = diag(G)``), one
iteration alternates SGD on the two levels with fresh minibatches:

    y <- y - lr_y grad_y g(x, y; B_j)                    j = 1 .. lower_steps
    x <- x - lr_x [grad_x f - J^T H^{-1} grad_y f](x, y; B')   (one backward pass, no Hessian products)

Constant step sizes. Each implicit gradient costs one first-order oracle call and no products,
versus 2 + Q calls/products per estimate (and two estimates per step) for MRBO.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import opt
from ..errors import UserError
from .base import BilevelSolver, SolverOptions, register
from .problem import lincomb


@dataclass
class FirstOrderOptions(SolverOptions):
    lower_steps: int = opt(1, "lower-level SGD steps per upper step")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lower_steps < 1:
            raise UserError(f"lower_steps must be >= 1, got {self.lower_steps}")


@register
class FirstOrder(BilevelSolver):
    """BiP's first-order scheme; needs ``problem.bilinear_hypergradient``."""

    name = "first-order"
    Options = FirstOrderOptions

    def __init__(self, problem, *args, **kwargs) -> None:
        if not hasattr(problem, "bilinear_hypergradient"):
            raise UserError("solver 'first-order' needs a bilinear problem (bilinear_hypergradient); "
                            "use mrbo, vrbo or stocbio for general problems")
        super().__init__(problem, *args, **kwargs)

    def step(self) -> None:
        o = self.options
        for _ in range(o.lower_steps):
            _, v = self.problem.bilinear_hypergradient(self.x, self.y, self.draw())
            self.cost.gradients += 1
            self.y = lincomb(1.0, self.y, -o.lr_y, v)
        u, _ = self.problem.bilinear_hypergradient(self.x, self.y, self.draw())
        self.cost.gradients += 1
        self.x = lincomb(1.0, self.x, -o.lr_x, u)
