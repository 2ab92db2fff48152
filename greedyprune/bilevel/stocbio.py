"""stocBiO-style stochastic bilevel SGD (Ji, Yang, Liang, ICML 2021): the plain baseline.

Each outer iteration warm-starts the lower level and takes ``inner_steps`` SGD steps on it, then one
SGD step on the upper level with the same implicit-gradient estimator as MRBO/VRBO:

    y <- y - lr_y grad_y g(x_k, y; B_j)          j = 1 .. inner_steps   (fresh g-batch each)
    x_{k+1} = x_k - lr_x Dhat F(x_k, y; B_f, B_g)                      (fresh f- and g-batch)

Constant step sizes, no variance reduction: reaching accuracy eps needs batches ~ eps^-1 (or steps
shrinking with eps), O(eps^-2) samples in the paper's analysis. ``inner_steps = 0`` turns it into the
single-loop variant whose lower step reuses the hypergradient's g-batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import opt
from ..errors import UserError
from .base import BilevelSolver, SolverOptions, register
from .problem import lincomb


@dataclass
class StocBiOOptions(SolverOptions):
    inner_steps: int = opt(1, "lower-level SGD steps per outer iteration (0: one step on the hypergradient's g-batch)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.inner_steps < 0:
            raise UserError(f"inner_steps must be >= 0, got {self.inner_steps}")


@register
class StocBiO(BilevelSolver):
    """Stochastic bilevel SGD with warm-started inner loop; the update rule is in the module docstring."""

    name = "stocbio"
    Options = StocBiOOptions

    def step(self) -> None:
        o = self.options
        for _ in range(o.inner_steps):
            self.y = lincomb(1.0, self.y, -o.lr_y, self.lower_grad(self.x, self.y, self.draw()))
        u, v = self.estimates(self.x, self.y, self.draw(), self.draw())
        self.x = lincomb(1.0, self.x, -o.lr_x, u)
        if o.inner_steps == 0:
            self.y = lincomb(1.0, self.y, -o.lr_y, v)
