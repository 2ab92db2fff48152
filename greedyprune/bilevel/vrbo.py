"""VRBO: variance-reduced bilevel optimizer (Yang, Ji, Liang, NeurIPS 2021, Algorithm 2).

Double loop with SARAH/SPIDER-type recursive estimators and periodic large-batch anchors. With
``Dhat F`` the implicit-gradient estimator of :mod:`.hypergrad`:

    outer iteration k (x moves once):
      if k mod q == 0:   (anchor) draw a large batch S1 (size large_batch for f and for g):
          v = grad_y g(x_k, y_k; S1),   u = Dhat F(x_k, y_k; S1)
      x_{k+1} = x_k - lr_x u
      inner loop, y_0~ = y_k, previous point (x_k, y_k), current point (x_{k+1}, y_0~):
        for t = 0 .. m:   draw a small batch S2 (batch_size), used at both points
          v <- v + grad_y g(current; S2) - grad_y g(previous; S2)
          u <- u + Dhat F(current; S2)   - Dhat F(previous; S2)
          if t < m:  y_{t+1}~ = y_t~ - lr_y v ;  previous <- current ; current <- (x_{k+1}, y_{t+1}~)
      y_{k+1} = y_m~        (u, v now estimate the gradients at (x_{k+1}, y_{k+1}) and carry over)

Constant step sizes; the paper takes q, |S1| ~ eps^-1 and m, |S2| ~ eps^-0.5 for O(eps^-1.5)
samples overall. The last correction (t = m) is skipped when the next iteration is an anchor, since
the anchor replaces the estimates anyway. Our reading of the index bookkeeping: m lower steps per
outer step, estimates always refer to the current iterate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..options import opt
from ..errors import UserError
from .base import BilevelSolver, SolverOptions, register
from .problem import Tensors, as_tensors, lincomb


@dataclass
class VRBOOptions(SolverOptions):
    large_batch: int = opt(256, "anchor batch size |S1| (for f and for g)")
    period: int = opt(8, "anchor period q (outer iterations between large batches)")
    inner_steps: int = opt(3, "lower-level steps m per outer iteration")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.large_batch < 1 or self.period < 1 or self.inner_steps < 1:
            raise UserError(f"VRBO needs large_batch, period, inner_steps >= 1; got {self.large_batch}, "
                            f"{self.period}, {self.inner_steps}")


@register
class VRBO(BilevelSolver):
    """Variance-reduced bilevel optimizer; the update rule is in the module docstring."""

    name = "vrbo"
    Options = VRBOOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.u: Tensors | None = None
        self.v: Tensors | None = None

    def _correct(self, cur: tuple[Tensors, Tensors], prev: tuple[Tensors, Tensors]) -> None:
        batch_f, batch_g = self.draw(), self.draw()
        u_cur, v_cur = self.estimates(*cur, batch_f, batch_g)
        u_prev, v_prev = self.estimates(*prev, batch_f, batch_g)
        self.u = lincomb(1.0, self.u, 1.0, lincomb(1.0, u_cur, -1.0, u_prev))
        self.v = lincomb(1.0, self.v, 1.0, lincomb(1.0, v_cur, -1.0, v_prev))

    def step(self) -> None:
        o, k = self.options, self.iteration
        if k % o.period == 0 or self.u is None:
            self.u, self.v = self.estimates(self.x, self.y, self.draw(o.large_batch), self.draw(o.large_batch))
        x_next = lincomb(1.0, self.x, -o.lr_x, self.u)
        prev, cur = (self.x, self.y), (x_next, self.y)
        anchor_next = (k + 1) % o.period == 0
        for t in range(o.inner_steps + 1):
            if t == o.inner_steps and anchor_next:
                break
            self._correct(cur, prev)
            if t < o.inner_steps:
                prev, cur = cur, (x_next, lincomb(1.0, cur[1], -o.lr_y, self.v))
        self.x, self.y = cur

    def _extra_state(self) -> dict[str, Any]:
        return {} if self.u is None else {"u": list(self.u), "v": list(self.v)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.u, self.v = as_tensors(state["u"]), as_tensors(state["v"])
