"""Sparse-to-sparse training: RigL (gradient growth), SET (random growth) and static masks.

The masks start random with per-layer counts from a density distribution (ERK or uniform) and are
updated by :class:`DynamicSparsity`, a callback of the shared training loop, with the rule of
:mod:`greedyprune.baselines.dynamic`: at step ``t`` in ``{0, dT, 2dT, ...}``, ``t < T_end``, between the
backward pass and the optimizer step, each layer drops ``floor(alpha_t k)`` of its ``k`` weights and
grows as many. As in google-research/rigl, an update iteration takes **no optimizer step** (the
reference's ``cond(is_mask_update_iter, mask_update, apply_gradients)``); here it still counts as a
step of the schedule and the data order (the reference does not advance its global step then, so it
takes ``T`` optimizer steps over ``T + updates`` batches, this loop ``T - updates`` over ``T``). After an
update, new connections (outside the old mask) and dropped ones hold ``W_orig = 0``, zero gradient and
zero optimizer state (see :mod:`greedyprune.sparse.masks`); new ones start to move at the next step. A
weight dropped and regrown in the same update keeps its value and optimizer state. Per-layer non-zero
counts never change.

Initial densities (:func:`initial_masks`): ``erk`` with ``erk_power_scale`` (the reference's exponent
on ``sum(shape) / prod(shape)``, default 1), ``er``, or ``uniform``. ``dense_first="auto"`` follows the
RigL paper and code: with ``uniform`` the first layer is dense and every other layer has the requested
sparsity (the total is then denser than requested, as in the reference); with ER/ERK nothing is forced.
``"yes"`` keeps the first layer dense (uniform: as auto; ER/ERK: the other layers share the rest so the
total is exact, as the reference does for its dense layers), ``"no"`` never.

Under ``torchrun`` the dense gradient that RigL grows by is averaged over the ranks first (each rank's
hook sees only its own images), so every rank takes the same update as one process with the global batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..options import opt
from ..distributed import all_reduce_sum, is_main, world
from ..errors import UserError
from ..io import save_json
from ..sparse import apply_masks, mask_module, prunable_weights, raw_weight, zero_optimizer_state
from ..sparse.density import sparsity_counts
from ..sparse.select import mask_counts, random_masks
from ..sparse.masks import get_masks, weight_shapes
from ..train import TrainConfig
from .common import Splits, new_model, run_training
from .dynamic import drop_fraction, is_update_step, update_mask


@dataclass
class DynamicOptions:
    sparsity: float = opt(0.9, "fraction of Linear/Conv weights that are zero")
    distribution: str = opt("erk", "per-layer density distribution", choices=["erk", "er", "uniform"])
    dense_first: str = opt("auto", "keep the first layer dense: auto (uniform: yes, every other layer at the "
                                   "requested sparsity, as RigL; er/erk: no), yes, no", choices=["auto", "yes", "no"])
    erk_power_scale: float = opt(1.0, "ERK: exponent on sum(shape) / prod(shape) (the reference's erk_power_scale)")
    update_interval: int = opt(100, "RigL/SET: steps between mask updates (dT); the first is at step 0")
    alpha: float = opt(0.3, "RigL/SET: initial drop fraction; annealed alpha/2 (1 + cos(pi t / T_end))")
    end_fraction: float = opt(0.75, "RigL/SET: stop updating at this fraction of training (T_end)")
    skip_optimizer_step: bool = opt(True, "RigL/SET: no optimizer step on update iterations (as the reference)")

    def __post_init__(self) -> None:
        if isinstance(self.dense_first, bool):  # the earlier boolean option
            self.dense_first = "yes" if self.dense_first else "no"
        if self.dense_first not in ("auto", "yes", "no"):
            raise UserError(f"dense_first must be auto, yes or no, got {self.dense_first!r}")
        if not (self.erk_power_scale > 0 and math.isfinite(self.erk_power_scale)):
            raise UserError(f"erk_power_scale must be a positive number, got {self.erk_power_scale}")


class DynamicSparsity:
    """Training-loop callback: RigL (``growth="gradient"``) or SET (``growth="random"``) mask updates."""

    def __init__(self, growth: str, interval: int = 100, alpha: float = 0.3, end_fraction: float = 0.75,
                 seed: int = 0, skip_optimizer_step: bool = True):
        if growth not in ("gradient", "random"):
            raise UserError(f"growth must be 'gradient' or 'random', got {growth!r}")
        if interval < 1 or not 0 <= alpha <= 1 or not 0 < end_fraction <= 1:
            raise UserError("need update_interval >= 1, alpha in [0, 1] and end_fraction in (0, 1]")
        self.growth, self.interval, self.alpha, self.end_fraction = growth, interval, alpha, end_fraction
        self.skip_optimizer_step = skip_optimizer_step
        self.generator = torch.Generator().manual_seed(seed)
        self.log: list[list[int]] = []  # [step, connections moved (= new ones), non-zeros] per update
        self.end_step = 0
        self.names: list[str] = []
        self.counts: dict[str, int] = {}

    def _capture(self, model, on: bool) -> None:
        for name in self.names:
            mask_module(model, name).capture_grad = on

    def on_train_begin(self, state) -> None:
        self.names = list(get_masks(state.model))
        if not self.names:
            raise UserError("dynamic sparse training needs a masked model; apply masks first")
        self.counts = mask_counts(get_masks(state.model))
        self.end_step = int(self.end_fraction * state.total_steps)
        self._capture(state.model, self.growth == "gradient" and self._due(state.step))

    def _due(self, step: int) -> bool:
        return is_update_step(step, self.interval, self.end_step)

    def after_backward(self, state) -> None:
        if not self._due(state.step):
            return
        fraction = drop_fraction(state.step, self.alpha, self.end_step)
        swapped, size = 0, world()[1]
        layers = prunable_weights(state.model)
        for name in self.names:
            wm = mask_module(state.model, name)
            grad = wm.dense_grad
            if self.growth == "gradient" and grad is None:
                raise RuntimeError(f"no dense gradient captured for {name} at step {state.step}")
            if grad is not None and size > 1:  # the hook saw this rank's images only: average as DDP does
                all_reduce_sum(grad)
                grad.div_(size)
            up = update_mask(layers[name].weight, wm.mask.bool(), fraction, self.growth, grad, self.generator)
            raw = raw_weight(state.model, name)
            changed = up.changed  # new connections and dropped ones; regrown ones keep value and state
            with torch.no_grad():
                wm.mask.copy_(up.mask.to(wm.mask.dtype))
                raw.masked_fill_(changed, 0.0)
                if raw.grad is not None:
                    raw.grad.mul_(wm.mask)
            zero_optimizer_state(state.optimizer, raw, changed)
            wm.dense_grad = None
            if int(up.mask.sum()) != self.counts[name]:
                raise RuntimeError(f"{name}: {int(up.mask.sum())} active weights after the update, {self.counts[name]} before")
            swapped += int(up.grown.sum())
        self.log.append([state.step, swapped, sum(self.counts.values())])
        self._capture(state.model, False)
        if self.skip_optimizer_step:  # the reference updates the masks instead of applying the gradients
            state.skip_optimizer_step = True

    def after_step(self, state) -> None:
        if self.growth == "gradient" and self._due(state.step):
            self._capture(state.model, True)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "log": [list(x) for x in self.log]}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.log = [list(x) for x in state["log"]]


def initial_counts(shapes: dict, options: DynamicOptions) -> dict[str, int]:
    """Non-zeros per layer of ``options.distribution`` at ``options.sparsity`` (module docstring for dense_first)."""
    first = options.dense_first == "yes" or (options.dense_first == "auto" and options.distribution == "uniform")
    if first and options.distribution == "uniform":  # RigL's uniform: first layer dense, the others at s each
        names = list(shapes)
        return {n: math.prod(shapes[n]) if i == 0 else int(round((1 - options.sparsity) * math.prod(shapes[n])))
                for i, n in enumerate(names)}
    return sparsity_counts(shapes, options.sparsity, options.distribution, dense_first=first,
                           erk_power_scale=options.erk_power_scale)


def initial_masks(model, options: DynamicOptions, seed: int) -> dict[str, torch.Tensor]:
    """Random masks with the per-layer counts of :func:`initial_counts`."""
    shapes = weight_shapes(model)
    return random_masks(shapes, initial_counts(shapes, options), torch.Generator().manual_seed(10_000 + seed))


def run_dynamic(method: str, model_name: str, splits: Splits, config: TrainConfig, options: DynamicOptions,
                out: str | Path, *, resume: bool = True, progress: bool = True) -> dict:
    """Train ``model_name`` sparse from scratch with ``method`` in ``rigl``, ``set``, ``static`` (or ``dense``); its record."""
    growth = {"rigl": "gradient", "set": "random", "static": None, "dense": None}
    if method not in growth:
        raise UserError(f"unknown dynamic sparse method {method!r}; choose rigl, set, static or dense")
    torch.manual_seed(config.seed)
    model = new_model(model_name, splits)
    if method != "dense":
        apply_masks(model, initial_masks(model, options, config.seed))
    callbacks = [] if growth[method] is None else [
        DynamicSparsity(growth[method], options.update_interval, options.alpha, options.end_fraction, config.seed,
                        options.skip_optimizer_step)]
    record = run_training(model, splits, config, out, callbacks=callbacks, resume=resume, progress=progress,
                          label=method if method == "dense" else f"{method}-{options.distribution}")
    record["method"] = method
    record["updates"] = callbacks[0].log if callbacks else []
    if is_main():
        save_json(record, Path(out) / "result.json")
    return record
