"""BiP's options and their translation into :mod:`greedyprune.bilevel` solver options (see :mod:`.bip`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..bilevel import FirstOrderOptions, MRBOOptions, VRBOOptions
from ..bilevel.masking import IMPLICIT_TERMS
from ..errors import UserError
from ..options import opt

SOLVERS = ("first-order", "mrbo", "vrbo")
IMPLICIT = ("bilinear", "cg")


@dataclass
class BiPOptions:
    sparsity: float = opt(0.9, "fraction of Linear/Conv weights removed (exactly round(sparsity * N))")
    solver: str = opt("first-order", "bilevel solver", choices=list(SOLVERS))
    epochs: float = opt(1.0, "budget: passes of weight steps (each step also draws a score batch)")
    batch_size: int = opt(128, "minibatch size (each estimate uses one batch for each level)")
    gamma: float = opt(1e-4, "lower-level l2 coefficient gamma (BiP's code: its weight decay, 1e-4)")
    implicit_term: str = opt("reference", "implicit term: reference (BiP's code: lr2 (grad_s l)^2), inverse-gamma "
                             "(G m G / implicit_gamma), none", choices=list(IMPLICIT_TERMS))
    lr2: float = opt(1e-4, "reference implicit term: its coefficient (1e-4 in all BiP configs)")
    implicit_gamma: float = opt(0.0, "inverse-gamma implicit term: gamma of H = gamma I (0: the lower-level gamma)")
    lr_scores: float = opt(0.1, "upper-level (score) step size (the paper's beta = 0.1)")
    lr_weights: float = opt(0.01, "lower-level (weight) step size (the paper's alpha = 0.01)")
    momentum: float = opt(0.9, "first-order: SGD momentum of both levels (BiP: 0.9)")
    score_decay: float = opt(1e-4, "first-order: weight decay of the scores (BiP's mask optimizer: 1e-4)")
    weights_schedule: str = opt("cosine", "first-order: weight step schedule", choices=["cosine", "constant"])
    scores_schedule: str = opt("step", "first-order: score step schedule (step: x0.1 at 75%, x0.01 at 90%)",
                               choices=["step", "constant"])
    implicit: str = opt("bilinear", "mrbo/vrbo implicit gradient: BiP's bilinear model (H = gamma I, no Hessian "
                        "products) or damped CG on the network's Hessian", choices=list(IMPLICIT))
    cg_iters: int = opt(10, "implicit cg: CG iterations (Hessian-vector products) per estimate")
    cg_damping: float = opt(1.0, "implicit cg: solve (H + damping I) p = grad f; the trained net's Hessian has "
                                 "eigenvalues down to about -0.7, so keep it above that")
    mrbo_d: float = opt(1.0, "mrbo: eta_t = d / (m + t)^(1/3)")
    mrbo_m: float = opt(8.0, "mrbo: schedule offset m")
    mrbo_c: float = opt(1.0, "mrbo: momentum weights alpha = beta = min(1, c eta^2)")
    large_batch: int = opt(1024, "vrbo: anchor batch size")
    period: int = opt(10, "vrbo: outer steps between anchors")
    inner_steps: int = opt(2, "vrbo: lower steps per outer step")
    seed: int = opt(0, "seed of the minibatch draws")
    checkpoint_every: int = opt(50, "solver steps between checkpoints when an output folder is given")

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise UserError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.solver not in SOLVERS:
            raise UserError(f"unknown BiP solver {self.solver!r}; choose one of {', '.join(SOLVERS)}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise UserError(f"epochs must be a positive number, got {self.epochs}")
        if self.implicit not in IMPLICIT:
            raise UserError(f"unknown implicit gradient {self.implicit!r}; choose one of {', '.join(IMPLICIT)}")
        if self.implicit_term not in IMPLICIT_TERMS:
            raise UserError(f"unknown implicit_term {self.implicit_term!r}; choose one of {', '.join(IMPLICIT_TERMS)}")
        if self.lr2 < 0 or self.implicit_gamma < 0:
            raise UserError(f"lr2 and implicit_gamma must be >= 0, got {self.lr2}, {self.implicit_gamma}")
        if self.cg_iters < 1 or not self.cg_damping >= 0:
            raise UserError(f"cg_iters must be >= 1 and cg_damping >= 0, got {self.cg_iters}, {self.cg_damping}")


def iterations(o: BiPOptions, n_train: int) -> int:
    """Weight steps of the budget: ``epochs x |train| / batch`` (at least one)."""
    return max(1, math.ceil(o.epochs * n_train / o.batch_size))


def solver_options(o: BiPOptions, n_train: int = 0):
    """The :mod:`greedyprune.bilevel` options of ``o.solver`` (scores are x, weights are y)."""
    common = dict(batch_size=o.batch_size, lr_x=o.lr_scores, lr_y=o.lr_weights, hypergrad=o.implicit,
                  hypergrad_iters=o.cg_iters, damping=o.cg_damping if o.implicit == "cg" else 0.0)
    if o.solver == "first-order":
        return FirstOrderOptions(**common, momentum=o.momentum, weight_decay_x=o.score_decay,
                                 schedule_y=o.weights_schedule, schedule_x=o.scores_schedule,
                                 total_steps=iterations(o, n_train) if n_train else 0)
    if o.solver == "mrbo":
        return MRBOOptions(**common, d=o.mrbo_d, m=o.mrbo_m, c1=o.mrbo_c, c2=o.mrbo_c)
    return VRBOOptions(**common, large_batch=o.large_batch, period=o.period, inner_steps=o.inner_steps)


def keep_count(problem_total: int, sparsity: float) -> int:
    """Weights kept: ``N - round(sparsity N)`` (at least one)."""
    return max(1, problem_total - int(round(sparsity * problem_total)))
