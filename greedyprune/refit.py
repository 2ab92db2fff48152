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
restored bit for bit). Sums are float64; under ``torch.distributed`` losses and gradients are summed
over ranks, so every rank takes the same steps.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .distributed import all_reduce_sum, sum_over_ranks
from .errors import UserError

METHODS = ("global",)


@dataclass
class RefitTarget:
    """A consumer whose input columns were pruned (its weight is refit) and the module absorbing its offset."""

    consumer: str
    bias_sink: str


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

    def to_dict(self) -> dict:
        return asdict(self)


def check_refit_options(refit: str | None, iters: int) -> None:
    """One-line errors for bad ``refit=`` / ``refit_iters=`` values."""
    if refit is not None and refit not in METHODS:
        raise UserError(f"refit must be 'global' or None (off), got {refit!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise UserError(f"refit_iters must be a positive integer (L-BFGS iterations), got {iters!r}")


def targets_of(model: nn.Module, groups: list) -> list[RefitTarget]:
    """Consumers and bias sinks of pruned ``groups``: traced groups (``group.consumers`` with names) or
    adapter groups (``group.consumer`` / ``bias_sink`` modules, plus side inputs such as squeeze-excitation)."""
    names = {id(m): n for n, m in model.named_modules()}
    found: list[RefitTarget] = []
    for group in groups:
        if hasattr(group, "consumers"):
            found += [RefitTarget(c.target, c.bias_sink) for c in group.consumers]
            continue
        found.append(RefitTarget(names[id(group.consumer)], names[id(group.bias_sink)]))
        found += [RefitTarget(names[id(m)], names[id(m)]) for m in getattr(group, "side_inputs", [])]
    unique = {(t.consumer, t.bias_sink): t for t in found}
    return list(unique.values())


def refit_parameters(model: nn.Module, targets: list[RefitTarget]) -> dict[str, nn.Parameter]:
    """``{qualified name: parameter}``: each consumer's weight and each bias sink's bias (BatchNorm: beta)."""
    params: dict[str, nn.Parameter] = {}
    for t in targets:
        for module_name, attr in ((t.consumer, "weight"), (t.bias_sink, "bias")):
            module = model.get_submodule(module_name)
            param = getattr(module, attr, None)
            if not isinstance(param, nn.Parameter):
                raise UserError(f"cannot refit {module_name}.{attr}: {type(module).__name__} has no such parameter")
            params[f"{module_name}.{attr}" if module_name else attr] = param
    return params


def last_linear(model: nn.Module, example: torch.Tensor) -> str:
    """Name of the last ``nn.Linear`` to run on ``example`` (the classifier); an error if there is none."""
    order: list[str] = []
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: order.append(n))
               for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise UserError(f"{type(model).__name__} runs no nn.Linear; name the feature layer with refit_features=NAME")
    return order[-1]


def _features(model: nn.Module, name: str, x: torch.Tensor, output: bool) -> torch.Tensor:
    """Input (or output) of module ``name`` when ``model`` runs on ``x``, flattened to ``(B, D)``."""
    got: list[torch.Tensor] = []
    module = model.get_submodule(name)
    handle = (module.register_forward_hook(lambda m, a, out: got.append(out)) if output else
              module.register_forward_pre_hook(lambda m, a: got.append(a[0])))
    try:
        model(x)
    finally:
        handle.remove()
    return got[0].flatten(1)


def global_refit(original: nn.Module, pruned: nn.Module, batches: list[torch.Tensor], targets: list[RefitTarget],
                 iters: int = 40, features: str | None = None, *, line_search: bool = True, lr: float = 1.0,
                 history: int = 10) -> RefitReport:
    """Refit ``pruned``'s ``targets`` in place so its features match ``original``'s (see the module docstring).

    ``line_search=False`` / ``lr`` are for tests (plain L-BFGS steps that can overshoot).
    """
    start = time.perf_counter()
    name = features or last_linear(original, batches[0][:1])
    try:
        original.get_submodule(name), pruned.get_submodule(name)
    except AttributeError:
        raise UserError(f"refit_features names no module: {name!r}") from None
    was_training = pruned.training
    original.eval(), pruned.eval()
    with torch.no_grad():
        output = _features(original, name, batches[0][:2], False).shape[1] != _features(pruned, name, batches[0][:2], False).shape[1]
        cached = [_features(original, name, x, output).detach() for x in batches]
    where = f"{'output' if output else 'input'} of {name}"
    params = refit_parameters(pruned, targets)
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

    def closure() -> torch.Tensor:
        for p in params.values():
            p.grad = None
        total = 0.0
        for x, target in zip(batches, cached):
            loss = (_features(pruned, name, x, output) - target).pow(2).sum() / variance
            loss.backward()
            total += float(loss.detach())
        grads = [p.grad for p in params.values() if p.grad is not None]
        all_reduce_sum(*grads)
        (total,) = sum_over_ranks([total])
        losses.append(total)
        if total < best["loss"]:  # NaN compares False: never kept
            best["loss"], best["state"] = total, [p.detach().clone() for p in params.values()]
        return torch.tensor(total)

    try:
        optimizer = torch.optim.LBFGS(list(params.values()), lr=lr, max_iter=iters, max_eval=2 * iters + 1,
                                      history_size=history, line_search_fn="strong_wolfe" if line_search else None,
                                      tolerance_grad=1e-10, tolerance_change=1e-12)
        initial = [p.detach().clone() for p in params.values()]
        optimizer.step(closure)  # its first evaluation is at the start
        iterations = int(optimizer.state[next(iter(params.values()))].get("n_iter", 0))
        with torch.no_grad():
            for p, value in zip(params.values(), best["state"] if best["state"] is not None else initial):
                p.copy_(value)
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
        pruned.train(was_training)
    before = losses[0]
    if not before == before:  # NaN at the start: the pruned network itself is broken
        raise UserError(f"the pruned network's features ({where}) are not finite on the calibration images")
    after = min(best["loss"], before)
    note = None if after < before else "no L-BFGS iterate improved on the start: parameters left as they were"
    return RefitReport(where, list(params), before, after, iterations, len(losses),
                       time.perf_counter() - start, note)
