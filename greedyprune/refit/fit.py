"""Global refit: after the greedy picks, refit the pruned layers jointly to the original's features.

Layer-wise reconstruction leaves errors that add up through depth. The refit fixes the kept channels
and adjusts only the parameters the pruning already rewrote -- each pruned group's consumer weights
``W_k`` and the biases that absorbed the removed channels' means (the consumer's bias, or the beta of
the BatchNorm that is its bias sink) -- so that the pruned network's *features* ``F_p(x)`` match the
original's ``F_o(x)`` on the calibration images (no labels):

    minimise  L(theta) = sum_n ||F_p(x_n; theta) - F_o(x_n)||^2 / V,   V = sum_n ||F_o(x_n) - mean_m F_o(x_m)||^2

``L`` is the **relative feature error** that the report shows before and after (0: identical
features; 1: as far off as predicting every image's features by their mean). The features are the
input of the last ``nn.Linear`` to run (the classifier's input; ``features=NAME`` picks another
module's input). If that Linear's own input was pruned, the widths differ and its output is matched.

L-BFGS (strong-Wolfe line search) runs ``iters`` iterations. Each loss evaluation sums the batches
with one backward per batch, so memory is one batch's graph; the original's features are computed
once. BatchNorm stays in eval mode. Every evaluated point is remembered and the best is kept, so
the result is never worse than the start on the calibration images (with no improvement the start is
restored bit for bit; so it is after an error). Sums are float64; under ``torch.distributed`` losses and gradients are summed
over ranks, so every rank takes the same steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from ..distributed import all_reduce_sum, sum_over_ranks
from ..errors import UserError
from ..stats import run_stages
from .features import features_of, last_linear
from .targets import RefitTarget, refit_parameters

METHODS = ("global",)
# what ``refit=`` accepts: a method, "auto" (the selection method's registered default) or off
CHOICES = ("auto", *METHODS, "none")


@dataclass
class RefitReport:
    features: str
    parameters: list[str]
    error_before: float
    error_after: float
    iterations: int
    evaluations: int
    seconds: float
    note: str | None = None
    cpu_seconds: float = 0.0  # this process's CPU time (all threads): the cost independent of other load

    def to_dict(self) -> dict:
        return asdict(self)


def check_refit_options(refit: str | None, iters: int) -> None:
    """One-line errors for bad ``refit=`` / ``refit_iters=`` values."""
    if refit is not None and refit not in CHOICES:
        raise UserError(f"refit must be 'auto' (the method's default), 'global', or 'none' / None (off), got {refit!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise UserError(f"refit_iters must be a positive integer (L-BFGS iterations), got {iters!r}")


def resolve_refit(refit: str | None, method_default: str | None) -> str | None:
    """The refit to run: ``"auto"`` -> ``method_default`` (the selection method's registered
    ``whole_network_refit``), ``"none"`` -> ``None``, a method name -> itself."""
    if refit == "auto":
        return method_default
    return None if refit in (None, "none") else refit


def global_refit(original: nn.Module, pruned: nn.Module, batches: list[torch.Tensor], targets: list[RefitTarget],
                 iters: int = 40, features: str | None = None, *, stages: Sequence[nn.Module] | None = None,
                 cut=None, line_search: bool = True, lr: float = 1.0, history: int = 10,
                 progress: bool = False) -> RefitReport:
    """Refit ``pruned``'s ``targets`` in place so its features match ``original``'s (see the module docstring).

    ``stages``: ``pruned`` as a sequence of modules (``pruned(x) == stages[-1](...stages[0](x))``); the
    inputs of the first stage holding a refit parameter are then computed once and every evaluation
    runs only the stages from there on. ``cut``: the same for a traced model, any object with
    ``values(x)`` (computed once per batch) and ``run(values)`` (e.g. :class:`greedyprune.partial.CutRunner`
    at the first node a refit parameter touches). ``line_search=False`` / ``lr`` are for tests (plain L-BFGS steps
    that can overshoot).
    """
    start, cpu = time.perf_counter(), time.process_time()
    name = features or last_linear(original, batches[0][:1])
    try:
        original.get_submodule(name), pruned.get_submodule(name)
    except AttributeError:
        raise UserError(f"refit_features names no module: {name!r}") from None
    was_training = pruned.training
    original.eval(), pruned.eval()
    layer, reference = pruned.get_submodule(name), original.get_submodule(name)
    with torch.no_grad():
        widths = [features_of(m, net, batches[0][:2], False).shape[1] for m, net in ((reference, original), (layer, pruned))]
        output = widths[0] != widths[1]  # the feature layer's own input was pruned: match its output
        cached = [features_of(reference, original, x, output).detach() for x in batches]
    where = f"{'output' if output else 'input'} of {name}"
    params = refit_parameters(pruned, targets)
    run, inputs = pruned, batches
    if cut is not None:
        inputs, run = [cut.values(x) for x in batches], cut.run
    elif stages is not None:
        owned = {id(p) for p in params.values()}
        cut = next(i for i, stage in enumerate(stages) if any(id(p) in owned for p in stage.parameters()))
        with torch.no_grad():
            inputs = [run_stages(stages[:cut], x) for x in batches]
        run = lambda h: run_stages(stages[cut:], h)
    s1 = torch.stack([f.double().sum(0) for f in cached]).sum(0)
    s2 = sum(float(f.double().pow(2).sum()) for f in cached)
    count = sum(f.shape[0] for f in cached)
    all_reduce_sum(s1)
    s2, count = sum_over_ranks([s2, float(count)])
    variance = s2 - float(s1.pow(2).sum()) / count  # sum_n ||F_o - mean||^2
    if not variance > 0:
        raise UserError(f"the original's features ({where}) do not vary over the calibration images; cannot refit")
    flags = {p: p.requires_grad for p in pruned.parameters()}
    for p in pruned.parameters():
        p.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    best: dict = {"loss": float("inf"), "state": None}
    losses: list[float] = []  # every evaluated point's loss; the first is the start

    # one tick per loss evaluation (L-BFGS evaluates at most 2 iters + 1 times; it may stop earlier)
    bar = tqdm(total=2 * iters + 1, desc="global refit (evaluations)", disable=not progress, leave=False)

    def closure() -> torch.Tensor:
        for p in params.values():
            p.grad = None
        total = 0.0
        for x, target in zip(inputs, cached):
            loss = (features_of(layer, run, x, output) - target).pow(2).sum() / variance
            if not loss.requires_grad:
                raise UserError(f"the features ({where}) do not depend on the refit layers; name a later module "
                                "with refit_features=NAME")
            loss.backward()
            total += float(loss.detach())
        grads = [p.grad for p in params.values() if p.grad is not None]
        all_reduce_sum(*grads)
        (total,) = sum_over_ranks([total])
        losses.append(total)
        bar.update(1)
        bar.set_postfix_str(f"feature error {total:.3g}")
        if total < best["loss"]:  # NaN compares False: never kept
            best["loss"], best["state"] = total, [p.detach().clone() for p in params.values()]
        return torch.tensor(total)

    initial = [p.detach().clone() for p in params.values()]
    kept = initial  # what the parameters end as: the start unless the run finishes with a finite start
    try:
        optimizer = torch.optim.LBFGS(list(params.values()), lr=lr, max_iter=iters, max_eval=2 * iters + 1,
                                      history_size=history, line_search_fn="strong_wolfe" if line_search else None,
                                      tolerance_grad=1e-10, tolerance_change=1e-12)
        optimizer.step(closure)  # its first evaluation is at the start
        iterations = int(optimizer.state[next(iter(params.values()))].get("n_iter", 0))
        if best["state"] is not None and not math.isnan(losses[0]):
            kept = best["state"]
    finally:  # on an error (and a NaN start) the parameters are left as they were
        with torch.no_grad():
            for p, value in zip(params.values(), kept):
                p.copy_(value)
        bar.close()
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
        pruned.train(was_training)
    before = losses[0]
    if math.isnan(before):  # NaN at the start: the pruned network itself is broken
        raise UserError(f"the pruned network's features ({where}) are not finite on the calibration images")
    after = min(best["loss"], before)
    note = None if after < before else "no L-BFGS iterate improved on the start: parameters left as they were"
    return RefitReport(where, list(params), before, after, iterations, len(losses),
                       time.perf_counter() - start, note, time.process_time() - cpu)
