"""BiP: pruning as bilevel optimisation (Zhang et al., NeurIPS 2022) with selectable solvers.

Starting from a trained network, learn mask scores (upper level) and the weights trained under the
mask (lower level, cross-entropy + gamma/2 ||theta||^2) together; the mask is the global top-k of the
scores through a straight-through estimator, so exactly ``round((1 - sparsity) N)`` of the ``N``
Linear/Conv weights survive at every step and in the result. The problem and the first-order
implicit gradient are in :mod:`greedyprune.bilevel.masking`; the solvers in :mod:`greedyprune.bilevel`:

* ``first-order``: BiP's alternating scheme (one backward pass per implicit gradient), with the
  released code's optimizers: SGD with momentum 0.9 on both levels, the weights' step ``lr_weights``
  (the paper's alpha = 0.01) cosine-annealed, the scores' step ``lr_scores`` (the paper's beta = 0.1)
  divided by 10 at 75% and 100 at 90% of the run, weight decay 1e-4 on both (the lower level's is
  ``gamma``);
* ``mrbo``: recursive momentum on both levels and decaying steps;
* ``vrbo``: periodic large-batch anchors and recursive-difference inner steps.

The implicit term (``implicit_term``, all solvers; :mod:`greedyprune.bilevel.masking`): ``reference``
(default) is what BiP's code computes, ``lr2 (grad_s l)^2`` with ``lr2 = 1e-4``; ``inverse-gamma`` is
the bilinear derivation ``G (.) m (.) G / gamma_IG`` with its own ``implicit_gamma`` (tune it on a
validation split; 0 ties it to the lower-level ``gamma``); ``none`` drops it.

How mrbo/vrbo obtain the implicit gradient (``implicit``). The exact one is ``grad_s f - J^T H^{-1} grad_theta f``
with ``H = grad^2_theta theta g = diag(m) grad^2 l diag(m) + gamma I`` (on kept weights; pruned ones
have ``H = gamma I``). Two choices:

* ``bilinear`` (default): BiP's own model, ``grad^2 l ~ 0``, so ``H = gamma I`` and ``J = diag(G)``
  with ``G = grad_z l``; the estimate is the direct term minus ``implicit_term`` with f and g on their
  own batches (two backward passes, no Hessian products). It differs from ``first-order`` only in the
  update rule around it.
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

Budget: ``epochs`` passes of weight steps, as BiP's trainer counts them: an epoch is ``|train| / batch``
iterations, each drawing one lower (weight) and one upper (score) batch, so the solver stops when it
has drawn ``2 x epochs x |train set|`` samples (every minibatch counts, including VRBO's anchors). The
fine-tuning baselines of ``experiments/bilevel_prune.py`` take as many weight steps. No fine-tuning
afterwards: the lower level already trains the weights.
Resumable: with ``out`` set, the solver state is checkpointed to ``out/bip_state.pt``. One process
only: under ``torchrun`` (``WORLD_SIZE > 1``) it refuses with a one-line error instead of running the
same solver on every rank.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from .. import distributed
from ..bilevel import MaskLearningProblem, make_solver
from ..errors import UserError
from ..io import load_checkpoint, save_json, save_torch
from .bip_options import IMPLICIT, SOLVERS, BiPOptions, iterations, keep_count, solver_options

__all__ = ["IMPLICIT", "SOLVERS", "BiPOptions", "bip_problem", "bip_prune", "iterations", "keep_count", "run_bip",
           "single_process", "solver_options"]

def single_process() -> None:
    """BiP runs one solver in one process: refuse under torchrun rather than run it on every rank."""
    size = distributed.world()[1]
    try:
        size = max(size, int(os.environ.get("WORLD_SIZE", "1") or 1))
    except ValueError:
        pass
    if size > 1:
        raise UserError("bip runs in one process; launch it without torchrun")


def bip_problem(model: nn.Module, train_set: Dataset, options: BiPOptions,
                device: str | torch.device = "cpu") -> MaskLearningProblem:
    """BiP's problem on a copy of ``model`` with ``options``' sparsity, lower-level gamma and implicit term."""
    term = dict(gamma=options.gamma, device=device, implicit_term=options.implicit_term, lr2=options.lr2,
                implicit_gamma=options.implicit_gamma)
    probe = MaskLearningProblem(model, train_set, keep=1, **term)
    return MaskLearningProblem(probe.model, train_set, keep_count(probe.total, options.sparsity), **term)


def bip_prune(model: nn.Module, train_set: Dataset, options: BiPOptions, out: str | Path | None = None,
              device: str | torch.device = "cpu", resume: bool = True, progress: bool = True
              ) -> tuple[nn.Module, dict]:
    """Prune a trained ``model`` with BiP; returns ``(masked copy, record)``. ``model`` is not modified.

    The copy carries :mod:`greedyprune.sparse` masks (``get_masks`` / ``remove_masks`` work on it).
    Record: solver, sparsity, kept/total weights, solver steps, samples, oracle calls, seconds.
    """
    single_process()
    problem = bip_problem(model, train_set, options, device)
    x0, y0 = problem.initial()
    n_train = len(problem.labels)
    solver = make_solver(options.solver, problem, x0, y0, solver_options(options, n_train),
                         torch.Generator().manual_seed(options.seed))
    budget = 2 * iterations(options, n_train) * options.batch_size  # a lower and an upper batch per weight step
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
