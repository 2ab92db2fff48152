"""BiP's first-order alternating scheme for bilinear mask-learning problems (Zhang et al., NeurIPS 2022).

For problems exposing ``bilinear_hypergradient(x, y, batch) -> (implicit gradient, grad_y g)`` (see
:class:`~greedyprune.bilevel.masking.MaskLearningProblem`), iteration ``t`` alternates SGD on the two
levels with fresh minibatches, as BiP's released trainer does (weights on one batch, then scores on
another):

    v   = grad_y g(x, y; B_j)                                   j = 1 .. lower_steps
    b_y = mu b_y + v,           y <- y - lr_y c_y(t) b_y
    u   = [grad_x f - implicit term](x, y; B') + wd_x x         (one backward pass, no Hessian products)
    b_x = mu b_x + u,           x <- x - lr_x c_x(t) b_x

(PyTorch's SGD with momentum ``mu``: the first step takes ``b = v``.) The learning-rate factors follow
BiP's configs over ``total_steps`` iterations: ``c_y`` cosine ``0.5 (1 + cos(pi t / T))`` (its weight
optimizer), ``c_x`` step ``1 -> 0.1`` at 75% ``-> 0.01`` at 90% (its ``step_mask_schedule``); ``constant``
gives 1. The lower level's weight decay is the problem's ``gamma`` (``grad_y g = m (.) G + gamma y``).
Defaults are plain constant-step SGD; :func:`greedyprune.baselines.bip.solver_options` sets BiP's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..options import opt
from .base import BilevelSolver, SolverOptions, register
from .problem import Tensors, as_tensors, lincomb

SCHEDULES_Y = ("constant", "cosine")
SCHEDULES_X = ("constant", "step")


def schedule_factor(kind: str, t: int, total: int) -> float:
    """``cosine``: ``0.5 (1 + cos(pi t / T))``; ``step``: 1, 0.1 from 0.75 T, 0.01 from 0.9 T; ``constant``: 1."""
    if kind == "constant" or total <= 0:
        return 1.0
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t / total)))
    return 0.01 if t >= 0.9 * total else 0.1 if t >= 0.75 * total else 1.0


@dataclass
class FirstOrderOptions(SolverOptions):
    lower_steps: int = opt(1, "lower-level SGD steps per upper step")
    momentum: float = opt(0.0, "SGD momentum of both levels (BiP: 0.9)")
    weight_decay_x: float = opt(0.0, "weight decay on the upper variable (BiP's mask optimizer: 1e-4)")
    schedule_y: str = opt("constant", "lower-level step schedule (BiP: cosine)", choices=list(SCHEDULES_Y))
    schedule_x: str = opt("constant", "upper-level step schedule (BiP: step, x0.1 at 75%, x0.01 at 90%)",
                          choices=list(SCHEDULES_X))
    total_steps: int = opt(0, "iterations the schedules span (0: constant steps)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lower_steps < 1:
            raise UserError(f"lower_steps must be >= 1, got {self.lower_steps}")
        if not 0 <= self.momentum < 1 or self.weight_decay_x < 0 or self.total_steps < 0:
            raise UserError(f"need momentum in [0, 1), weight_decay_x >= 0, total_steps >= 0; got {self.momentum}, "
                            f"{self.weight_decay_x}, {self.total_steps}")
        if self.schedule_y not in SCHEDULES_Y or self.schedule_x not in SCHEDULES_X:
            raise UserError(f"schedules: lower one of {SCHEDULES_Y}, upper one of {SCHEDULES_X}; got "
                            f"{self.schedule_y!r}, {self.schedule_x!r}")


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
        self.buffer_x: Tensors | None = None
        self.buffer_y: Tensors | None = None

    def _momentum(self, buffer: Tensors | None, grad: Tensors) -> Tensors:
        mu = self.options.momentum
        return grad if buffer is None or mu == 0 else lincomb(mu, buffer, 1.0, grad)

    def step(self) -> None:
        o, t = self.options, self.iteration
        for _ in range(o.lower_steps):
            _, v = self.problem.bilinear_hypergradient(self.x, self.y, self.draw())
            self.cost.gradients += 1
            self.buffer_y = self._momentum(self.buffer_y, v)
            self.y = lincomb(1.0, self.y, -o.lr_y * schedule_factor(o.schedule_y, t, o.total_steps), self.buffer_y)
        u, _ = self.problem.bilinear_hypergradient(self.x, self.y, self.draw())
        self.cost.gradients += 1
        if o.weight_decay_x:
            u = lincomb(1.0, u, o.weight_decay_x, self.x)
        self.buffer_x = self._momentum(self.buffer_x, u)
        self.x = lincomb(1.0, self.x, -o.lr_x * schedule_factor(o.schedule_x, t, o.total_steps), self.buffer_x)

    def _extra_state(self) -> dict[str, Any]:
        if self.buffer_x is None:
            return {}
        return {"buffer_x": list(self.buffer_x), "buffer_y": list(self.buffer_y)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            self.buffer_x, self.buffer_y = as_tensors(state["buffer_x"]), as_tensors(state["buffer_y"])
