"""Sparse-to-sparse training: RigL (gradient growth), SET (random growth) and static masks.

The masks start random with per-layer counts from a density distribution (ERK or uniform) and are
updated by :class:`DynamicSparsity`, a callback of the shared training loop, with the rule of
:mod:`greedyprune.baselines.dynamic`: at step ``t`` in ``{dT, 2dT, ...}``, ``t < T_end``, between the
backward pass and the optimizer step, each layer drops ``floor(alpha_t k)`` of its ``k`` weights and
grows as many. After an update, new connections (outside the old mask) and dropped ones hold
``W_orig = 0``, zero gradient and zero optimizer state, so the optimizer step that follows leaves them
at exactly zero (see :mod:`greedyprune.sparse.masks`); new ones start to move at the next step. A weight
dropped and regrown in the same update keeps its value, gradient and optimizer state. Per-layer non-zero
counts never change.

Under ``torchrun`` the dense gradient that RigL grows by is averaged over the ranks first (each rank's
hook sees only its own images), so every rank takes the same update as one process with the global batch.
"""

from __future__ import annotations

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
    dense_first: bool = opt(False, "keep the first layer dense (the others share the rest exactly)")
    update_interval: int = opt(100, "RigL/SET: steps between mask updates (dT)")
    alpha: float = opt(0.3, "RigL/SET: initial drop fraction; annealed alpha/2 (1 + cos(pi t / T_end))")
    end_fraction: float = opt(0.75, "RigL/SET: stop updating at this fraction of training (T_end)")


class DynamicSparsity:
    """Training-loop callback: RigL (``growth="gradient"``) or SET (``growth="random"``) mask updates."""

    def __init__(self, growth: str, interval: int = 100, alpha: float = 0.3, end_fraction: float = 0.75,
                 seed: int = 0):
        if growth not in ("gradient", "random"):
            raise UserError(f"growth must be 'gradient' or 'random', got {growth!r}")
        if interval < 1 or not 0 <= alpha <= 1 or not 0 < end_fraction <= 1:
            raise UserError("need update_interval >= 1, alpha in [0, 1] and end_fraction in (0, 1]")
        self.growth, self.interval, self.alpha, self.end_fraction = growth, interval, alpha, end_fraction
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

    def after_step(self, state) -> None:
        if self.growth == "gradient" and self._due(state.step):
            self._capture(state.model, True)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "log": [list(x) for x in self.log]}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.log = [list(x) for x in state["log"]]


def initial_masks(model, options: DynamicOptions, seed: int) -> dict[str, torch.Tensor]:
    """Random masks with the per-layer counts of ``options.distribution`` at ``options.sparsity``."""
    shapes = weight_shapes(model)
    counts = sparsity_counts(shapes, options.sparsity, options.distribution, dense_first=options.dense_first)
    return random_masks(shapes, counts, torch.Generator().manual_seed(10_000 + seed))


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
        DynamicSparsity(growth[method], options.update_interval, options.alpha, options.end_fraction, config.seed)]
    record = run_training(model, splits, config, out, callbacks=callbacks, resume=resume, progress=progress,
                          label=method if method == "dense" else f"{method}-{options.distribution}")
    record["method"] = method
    record["updates"] = callbacks[0].log if callbacks else []
    if is_main():
        save_json(record, Path(out) / "result.json")
    return record
