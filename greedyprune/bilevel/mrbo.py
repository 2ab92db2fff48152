"""MRBO: momentum-based recursive bilevel optimizer (Yang, Ji, Liang, NeurIPS 2021, Algorithm 1).

Single loop. With ``Dhat F`` the implicit-gradient estimator of :mod:`.hypergrad` and ``B_t`` a fresh
minibatch pair (one for f, one for g) used at *both* the current and the previous iterate:

    eta_t  = d / (m + t)^(1/3)                          (step schedule)
    alpha_t = min(1, c1 eta_{t-1}^2),  beta_t = min(1, c2 eta_{t-1}^2)   (momentum weights, t >= 1)

    v_0 = grad_y g(x_0, y_0; B_0),  u_0 = Dhat F(x_0, y_0; B_0)
    v_t = grad_y g(x_t, y_t; B_t) + (1 - beta_t)  (v_{t-1} - grad_y g(x_{t-1}, y_{t-1}; B_t))
    u_t = Dhat F(x_t, y_t; B_t)   + (1 - alpha_t) (u_{t-1} - Dhat F(x_{t-1}, y_{t-1}; B_t))

    x_{t+1} = x_t - lr_x * eta_t * u_t,        y_{t+1} = y_t - lr_y * eta_t * v_t

i.e. STORM-type recursive momentum on both levels: with alpha = beta = 1 this is plain single-loop
SGD; with alpha, beta -> 0 the estimates become SARAH-type recursive differences whose variance
shrinks with ``||x_t - x_{t-1}|| + ||y_t - y_{t-1}||``. The paper's analysis (strongly convex lower
level) gives O(eps^-1.5) samples to an eps-stationary point versus O(eps^-2) for SGD-type methods.
Each iteration costs two estimator evaluations (current and previous point) on the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..options import opt
from ..errors import UserError
from .base import BilevelSolver, SolverOptions, register
from .problem import Tensors, as_tensors, lincomb


@dataclass
class MRBOOptions(SolverOptions):
    d: float = opt(1.0, "step schedule numerator: eta_t = d / (m + t)^(1/3)")
    m: float = opt(8.0, "step schedule offset m (>= 1)")
    c1: float = opt(1.0, "upper momentum: alpha_t = min(1, c1 eta_{t-1}^2)")
    c2: float = opt(1.0, "lower momentum: beta_t = min(1, c2 eta_{t-1}^2)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d <= 0 or self.m < 1 or self.c1 < 0 or self.c2 < 0:
            raise UserError(f"MRBO needs d > 0, m >= 1, c1, c2 >= 0; got d={self.d}, m={self.m}, "
                            f"c1={self.c1}, c2={self.c2}")


@register
class MRBO(BilevelSolver):
    """Momentum-based recursive bilevel optimizer; the update rule is in the module docstring."""

    name = "mrbo"
    Options = MRBOOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.u: Tensors | None = None
        self.v: Tensors | None = None
        self.prev: tuple[Tensors, Tensors] | None = None

    def eta(self, t: int) -> float:
        return self.options.d / (self.options.m + t) ** (1.0 / 3.0)

    def step(self) -> None:
        o, t = self.options, self.iteration
        batch_f, batch_g = self.draw(), self.draw()
        u_new, v_new = self.estimates(self.x, self.y, batch_f, batch_g)
        if self.u is None or self.prev is None:
            self.u, self.v = u_new, v_new
        else:
            alpha = min(1.0, o.c1 * self.eta(t - 1) ** 2)
            beta = min(1.0, o.c2 * self.eta(t - 1) ** 2)
            u_old, v_old = self.estimates(*self.prev, batch_f, batch_g)
            self.u = lincomb(1.0, u_new, 1.0 - alpha, lincomb(1.0, self.u, -1.0, u_old))
            self.v = lincomb(1.0, v_new, 1.0 - beta, lincomb(1.0, self.v, -1.0, v_old))
        eta = self.eta(t)
        self.prev = (self.x, self.y)
        self.x = lincomb(1.0, self.x, -o.lr_x * eta, self.u)
        self.y = lincomb(1.0, self.y, -o.lr_y * eta, self.v)

    def _extra_state(self) -> dict[str, Any]:
        if self.u is None:
            return {}
        return {"u": list(self.u), "v": list(self.v), "px": list(self.prev[0]), "py": list(self.prev[1])}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.u, self.v = as_tensors(state["u"]), as_tensors(state["v"])
            self.prev = (as_tensors(state["px"]), as_tensors(state["py"]))
