"""The solver interface shared by MRBO, VRBO and stocBiO, and the registry ``registered_solvers``.

A solver owns copies of ``x`` (upper variable) and ``y`` (lower variable), a seeded generator for
its minibatches, and an :class:`~greedyprune.bilevel.problem.OracleCost`. ``step()`` is one outer
iteration; ``run(steps, callback)`` repeats it. ``state_dict()`` holds tensors and numbers only, so a
run can be checkpointed with ``greedyprune.io.save_torch`` and resumed after
``greedyprune.io.load_checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..options import opt
from ..errors import UserError
from .hypergrad import HypergradOptions, hypergradient, lower_gradient
from .problem import BilevelProblem, OracleCost, Tensors, as_tensors, check_finite


@dataclass
class SolverOptions:
    """Fields every bilevel solver has."""

    batch_size: int = opt(32, "samples per minibatch (one for f and one for g per estimate)")
    lr_x: float = opt(0.1, "upper-level step size")
    lr_y: float = opt(0.1, "lower-level step size")
    hypergrad: str = opt("neumann", "implicit gradient: Neumann series or CG on autograd Hessian products, or "
                         "the problem's bilinear closed form", choices=["neumann", "cg", "bilinear"])
    hypergrad_iters: int = opt(10, "Neumann terms or CG iterations")
    neumann_eta: float = opt(0.1, "Neumann step (below 2 / largest eigenvalue of the lower Hessian)")
    damping: float = opt(0.0, "CG only: solve (H + damping I) p = grad_y f")

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr_x < 0 or self.lr_y <= 0:
            raise UserError(f"step sizes must be lr_x >= 0 (0 freezes x), lr_y > 0; got lr_x={self.lr_x}, lr_y={self.lr_y}")
        self.hypergrad_options()  # validates

    def hypergrad_options(self) -> HypergradOptions:
        return HypergradOptions(self.hypergrad, self.hypergrad_iters, self.neumann_eta, self.damping)


class BilevelSolver:
    """Base class: holds the iterates, the generator and the cost; subclasses define ``step``."""

    name = "base"
    Options: type[SolverOptions] = SolverOptions

    def __init__(self, problem: BilevelProblem, x0: Tensor | Sequence[Tensor], y0: Tensor | Sequence[Tensor],
                 options: SolverOptions | None = None, generator: torch.Generator | None = None) -> None:
        self.problem = problem
        self.options = options if options is not None else self.Options()
        if not isinstance(self.options, self.Options):
            raise UserError(f"{self.name} needs {self.Options.__name__}, got {type(self.options).__name__}")
        self.x, self.y = as_tensors(x0), as_tensors(y0)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.cost = OracleCost()
        self.iteration = 0
        self._hg = self.options.hypergrad_options()

    # -- oracles, all counted in self.cost --------------------------------------------------------
    def draw(self, n: int | None = None) -> Any:
        return self.cost.draw(self.problem, self.options.batch_size if n is None else n, self.generator)

    def estimates(self, x: Tensors, y: Tensors, batch_f: Any, batch_g: Any) -> tuple[Tensors, Tensors]:
        """``(hypergradient, grad_y g)`` at ``(x, y)`` on the given batches."""
        return hypergradient(self.problem, x, y, batch_f, batch_g, self._hg, self.cost)

    def lower_grad(self, x: Tensors, y: Tensors, batch: Any) -> Tensors:
        return lower_gradient(self.problem, x, y, batch, self.cost)

    # -- driving ----------------------------------------------------------------------------------
    def step(self) -> None:
        raise NotImplementedError

    def run(self, steps: int, callback: Callable[["BilevelSolver"], bool | None] | None = None) -> "BilevelSolver":
        """``steps`` outer iterations; ``callback(solver)`` after each, returning True stops early."""
        for _ in range(steps):
            self.step()
            self.iteration += 1
            check_finite(self.x + self.y, f"{self.name} iterate")
            if callback is not None and callback(self):
                break
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y), "iteration": self.iteration,
                "cost": self.cost.as_dict(), "generator": self.generator.get_state(), "extra": self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.x, self.y = as_tensors(state["x"]), as_tensors(state["y"])
        self.iteration = int(state["iteration"])
        self.cost = OracleCost(**state["cost"])
        self.generator.set_state(state["generator"])
        self._load_extra_state(state["extra"])

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass


registered_solvers: dict[str, type[BilevelSolver]] = {}


def register(cls: type[BilevelSolver]) -> type[BilevelSolver]:
    registered_solvers[cls.name] = cls
    return cls


def make_solver(name: str, problem: BilevelProblem, x0, y0, options: SolverOptions | None = None,
                generator: torch.Generator | None = None) -> BilevelSolver:
    """Look a solver up by name (``mrbo``, ``vrbo``, ``stocbio``) and build it."""
    if name not in registered_solvers:
        raise UserError(f"unknown bilevel solver {name!r}; choose one of {sorted(registered_solvers)}")
    return registered_solvers[name](problem, x0, y0, options, generator)
