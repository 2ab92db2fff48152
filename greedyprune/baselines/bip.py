"""BiP: pruning as bilevel optimisation (Zhang et al., NeurIPS 2022) with selectable solvers.

Starting from a trained network, learn mask scores (upper level) and the weights trained under the
mask (lower level, cross-entropy + gamma/2 ||theta||^2) together; the mask is the global top-k of the
scores through a straight-through estimator, so exactly ``round((1 - sparsity) N)`` of the ``N``
Linear/Conv weights survive at every step and in the result. The problem and the first-order
implicit gradient are in :mod:`greedyprune.bilevel.masking`; the solvers in :mod:`greedyprune.bilevel`:

* ``first-order``: BiP's alternating scheme (one backward pass per implicit gradient);
* ``mrbo``: recursive momentum on both levels and decaying steps;
* ``vrbo``: periodic large-batch anchors and recursive-difference inner steps.

The implicit gradient of mrbo/vrbo (``implicit``). The exact one is ``grad_s f - J^T H^{-1} grad_theta f``
with ``H = grad^2_theta theta g = diag(m) grad^2 l diag(m) + gamma I`` (on kept weights; pruned ones
have ``H = gamma I``). Two choices:

* ``bilinear`` (default): BiP's own model, ``grad^2 l ~ 0``, so ``H = gamma I`` and ``J = diag(G)``
  with ``G = grad_z l``; then ``H^{-1} = I / gamma`` exactly and the estimate is
  ``G_f (.) theta - G_g (.) m (.) G_f / gamma`` (f and g on their own batches; two backward passes, no
  Hessian products). It differs from ``first-order`` only in the update rule around it.
* ``cg``: the network's real Hessian by autograd products, ``cg_iters`` CG steps on
  ``(H + cg_damping I) p = grad_theta f``. On a trained network H is *indefinite*: on LeNet-300-100 at
  95% sparsity its eigenvalues run from about -0.68 to +2.3 (batch 128 and 2048), against
  gamma = 1e-3. So the lower level is not strongly convex there, CG without damping meets negative
  curvature at its 2nd iteration, and a Neumann series ``eta sum_j (I - eta H)^j`` (eta < 2 / 2.3)
  diverges along the negative directions. Damping ``cg_damping >= 0.7`` makes the system positive
  definite, but then ``(H + delta I)^{-1}`` is about ``1 / (gamma + delta)`` instead of ``1 / gamma``
  along the flat directions: the implicit term is ~450x smaller than BiP's (measured 0.18 against 82 at
  delta = 1, converged in 10 CG steps). A curvature-damped variant, not BiP's ``1 / gamma`` scaling.

(The earlier default, 3 Neumann terms with eta = 0.01, approximated ``H^{-1}`` by ``~0.03 I`` along
the gamma-directions, where ``1 / gamma = 1000``: the implicit term was effectively off.)

Budget: the solver stops when it has drawn ``epochs x |train set|`` samples (every minibatch counts,
including VRBO's anchors). No fine-tuning afterwards: the lower level already trains the weights.
Resumable: with ``out`` set, the solver state is checkpointed to ``out/bip_state.pt``. One process
only: under ``torchrun`` (``WORLD_SIZE > 1``) it refuses with a one-line error instead of running the
same solver on every rank.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from .. import distributed
from ..bilevel import FirstOrderOptions, MaskLearningProblem, MRBOOptions, VRBOOptions, make_solver
from ..options import opt
from ..errors import UserError
from ..io import load_checkpoint, save_json, save_torch

SOLVERS = ("first-order", "mrbo", "vrbo")
IMPLICIT = ("bilinear", "cg")


@dataclass
class BiPOptions:
    sparsity: float = opt(0.9, "fraction of Linear/Conv weights removed (exactly round(sparsity * N))")
    solver: str = opt("first-order", "bilevel solver", choices=list(SOLVERS))
    epochs: float = opt(1.0, "budget: samples drawn by the solver, in passes over the training set")
    batch_size: int = opt(128, "minibatch size (each estimate uses one batch for each level)")
    gamma: float = opt(1e-3, "lower-level l2 coefficient gamma (BiP's strong-convexity term)")
    lr_scores: float = opt(1.0, "upper-level (score) step size")
    lr_weights: float = opt(0.02, "lower-level (weight) step size")
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
        if self.cg_iters < 1 or not self.cg_damping >= 0:
            raise UserError(f"cg_iters must be >= 1 and cg_damping >= 0, got {self.cg_iters}, {self.cg_damping}")


def single_process() -> None:
    """BiP runs one solver in one process: refuse under torchrun rather than run it on every rank."""
    size = distributed.world()[1]
    try:
        size = max(size, int(os.environ.get("WORLD_SIZE", "1") or 1))
    except ValueError:
        pass
    if size > 1:
        raise UserError("bip runs in one process; launch it without torchrun")


def solver_options(o: BiPOptions):
    """The :mod:`greedyprune.bilevel` options of ``o.solver`` (scores are x, weights are y)."""
    common = dict(batch_size=o.batch_size, lr_x=o.lr_scores, lr_y=o.lr_weights, hypergrad=o.implicit,
                  hypergrad_iters=o.cg_iters, damping=o.cg_damping if o.implicit == "cg" else 0.0)
    if o.solver == "first-order":
        return FirstOrderOptions(**common)
    if o.solver == "mrbo":
        return MRBOOptions(**common, d=o.mrbo_d, m=o.mrbo_m, c1=o.mrbo_c, c2=o.mrbo_c)
    return VRBOOptions(**common, large_batch=o.large_batch, period=o.period, inner_steps=o.inner_steps)


def keep_count(problem_total: int, sparsity: float) -> int:
    """Weights kept: ``N - round(sparsity N)`` (at least one)."""
    return max(1, problem_total - int(round(sparsity * problem_total)))


def bip_prune(model: nn.Module, train_set: Dataset, options: BiPOptions, out: str | Path | None = None,
              device: str | torch.device = "cpu", resume: bool = True, progress: bool = True
              ) -> tuple[nn.Module, dict]:
    """Prune a trained ``model`` with BiP; returns ``(masked copy, record)``. ``model`` is not modified.

    The copy carries :mod:`greedyprune.sparse` masks (``get_masks`` / ``remove_masks`` work on it).
    Record: solver, sparsity, kept/total weights, solver steps, samples, oracle calls, seconds.
    """
    single_process()
    probe = MaskLearningProblem(model, train_set, keep=1, gamma=options.gamma, device=device)
    problem = MaskLearningProblem(probe.model, train_set, keep_count(probe.total, options.sparsity),
                                  gamma=options.gamma, device=device)
    del probe
    x0, y0 = problem.initial()
    solver = make_solver(options.solver, problem, x0, y0, solver_options(options),
                         torch.Generator().manual_seed(options.seed))
    budget = int(round(options.epochs * len(problem.labels)))
    state_path = Path(out) / "bip_state.pt" if out is not None else None
    settings = dataclasses.asdict(options)
    seconds = 0.0
    if state_path is not None and resume and state_path.exists():
        saved = load_checkpoint(state_path)
        if saved["settings"] != {k: v for k, v in settings.items() if k != "checkpoint_every"} | {
                "checkpoint_every": saved["settings"].get("checkpoint_every")}:
            raise UserError(f"{state_path} was written with other BiP settings; use another --out or --no-resume")
        solver.load_state_dict(saved["solver"])
        seconds = float(saved["seconds"])
    bar = tqdm(total=budget, initial=min(budget, solver.cost.samples), unit="sample", disable=not progress,
               desc=f"BiP-{options.solver} {100 * options.sparsity:g}%")
    start = time.perf_counter()

    def after(s) -> bool:
        bar.update(s.cost.samples - bar.n)
        done = s.cost.samples >= budget
        if state_path is not None and (done or (options.checkpoint_every and s.iteration % options.checkpoint_every == 0)):
            save_torch({"settings": settings, "solver": s.state_dict(),
                        "seconds": seconds + time.perf_counter() - start}, state_path)
        return done

    if solver.cost.samples < budget:
        solver.run(10 ** 12, after)
    bar.close()
    seconds += time.perf_counter() - start
    pruned, masks = problem.masked_model(solver.x, solver.y)
    kept = sum(int(m.sum()) for m in masks.values())
    record = {"method": f"bip-{options.solver}", "sparsity": 1 - kept / problem.total, "nonzero": kept,
              "weights": problem.total, "steps": solver.iteration, "seconds": seconds, **solver.cost.as_dict(),
              "options": settings}
    if out is not None:
        save_json(record, Path(out) / "bip.json")
    return pruned.eval(), record


def run_bip(method: str, model_name: str, splits, config, options: BiPOptions, out: str | Path, *,
            resume: bool = True, progress: bool = True) -> dict:
    """Registry entry (``greedyprune.baselines`` runner signature): BiP on the cached trained ``model_name``.

    Uses ``config.seed`` and ``config.device``; the budget and step sizes come from ``options``.
    Returns the record of :func:`bip_prune` plus ``test_acc`` / ``test_loss`` on ``splits.test``.
    """
    from ..models import trained_model
    from ..train import evaluate
    single_process()
    dense, dense_acc = trained_model(model_name, device=config.device, progress=progress)
    options = dataclasses.replace(options, seed=config.seed)
    pruned, record = bip_prune(dense, splits.train, options, out, config.device, resume, progress)
    metrics = evaluate(pruned, splits.test, 1000, config.device)
    record.update(method=method, model=model_name, dense_test_acc=dense_acc, test_acc=metrics["top1"],
                  test_loss=metrics["loss"])
    save_json(record, Path(out) / "result.json")
    return record
