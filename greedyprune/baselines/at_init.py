"""Pruning at initialisation: SNIP, GraSP and their random controls, then static sparse training.

* ``snip``: keep the ``(1 - s) N`` largest ``|g (.) theta|`` over all layers together;
* ``grasp``: remove the highest ``S = -theta (.) Hg`` (keep the ``(1 - s) N`` lowest), over all layers:
  removing weight ``q`` changes the gradient norm ``||g||^2`` by ``~ 2 S_q``, and GraSP removes the
  weights whose removal reduces gradient flow least (see :mod:`greedyprune.baselines.saliency`);
* ``random``: a uniformly random mask with the same density in every layer;
* ``random-ratios``: a random mask with the per-layer counts the criterion named by ``ratios_from``
  (``snip`` or ``grasp``) chose -- separates *which* weights a criterion keeps from *how many per layer*.

Scores use a class-balanced batch of ``samples_per_class`` training images per class
(:func:`greedyprune.baselines.saliency.class_balanced_batch`), on the network at its initialisation.
The mask is fixed during training (weights in the mask train normally). Under ``torchrun`` rank 0
chooses and saves the mask, the other ranks read it, and rank 0 alone writes the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..options import opt
from ..distributed import barrier, first_rank_says, is_main
from ..errors import UserError
from ..io import save_json, save_torch
from ..sparse import apply_masks, weight_shapes
from ..sparse.density import sparsity_counts
from ..sparse.select import global_topk, mask_counts, random_masks
from ..train import TrainConfig
from .common import Splits, load_tensors, new_model, run_training
from .saliency import class_balanced_batch, grasp_scores, snip_scores

METHODS = ("snip", "grasp", "random", "random-ratios")


@dataclass
class InitOptions:
    sparsity: float = opt(0.9, "fraction of Linear/Conv weights removed at initialisation")
    samples_per_class: int = opt(10, "images per class in the scoring batch (GraSP: ~10)")
    temperature: float = opt(200.0, "GraSP: logits are divided by this temperature")
    ratios_from: str = opt("grasp", "random-ratios: copy the per-layer counts of this criterion",
                           choices=["grasp", "snip"])


def criterion_masks(method: str, model: torch.nn.Module, splits: Splits, options: InitOptions, seed: int
                    ) -> dict[str, torch.Tensor]:
    """The mask ``snip`` / ``grasp`` / ``random`` choose for ``model`` at its current (initial) weights."""
    shapes = weight_shapes(model)
    keep = int(round((1 - options.sparsity) * sum(math.prod(s) for s in shapes.values())))
    if method == "random":
        counts = sparsity_counts(shapes, options.sparsity, "uniform")
        return random_masks(shapes, counts, torch.Generator().manual_seed(20_000 + seed))
    inputs, targets = class_balanced_batch(splits.train, options.samples_per_class, seed=seed)
    param = next(model.parameters())
    inputs, targets = inputs.to(param.device), targets.to(param.device)
    if method == "snip":
        return global_topk(snip_scores(model, inputs, targets), keep)
    if method == "grasp":  # keep the lowest S = -theta (.) Hg, i.e. the top-k of -S
        scores = grasp_scores(model, inputs, targets, options.temperature)
        return global_topk({n: -s for n, s in scores.items()}, keep)
    raise UserError(f"unknown criterion {method!r}; choose snip, grasp or random")


def run_at_init(method: str, model_name: str, splits: Splits, config: TrainConfig, options: InitOptions,
                out: str | Path, *, resume: bool = True, progress: bool = True) -> dict:
    """Prune ``model_name`` at initialisation with ``method`` (see :data:`METHODS`), train, return the record.

    The mask is saved as ``out/mask.pt`` before training; ``random-ratios`` reads (or makes) the mask
    of ``ratios_from`` for the same seed in ``out/../<ratios_from>/mask.pt`` so the counts match.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0 <= options.sparsity < 1:
        raise UserError(f"sparsity must be in [0, 1), got {options.sparsity}")
    out = Path(out)
    torch.manual_seed(config.seed)
    model = new_model(model_name, splits)
    path = out / "mask.pt"
    if not first_rank_says(path.exists()):
        if is_main():
            save_torch(_choose(method, model_name, model, splits, config, options, out), path)
        barrier()
    apply_masks(model, load_tensors(path, "mask"))
    record = run_training(model, splits, config, out, resume=resume, progress=progress, label=method)
    record["method"] = method
    if is_main():
        save_json(record, out / "result.json")
    return record


def _choose(method: str, model_name: str, model: torch.nn.Module, splits: Splits, config: TrainConfig,
            options: InitOptions, out: Path) -> dict[str, torch.Tensor]:
    if method != "random-ratios":
        return criterion_masks(method, model, splits, options, config.seed)
    source = out.parent / options.ratios_from / "mask.pt"
    if source.exists():
        reference = load_tensors(source, "mask")
    else:
        torch.manual_seed(config.seed)
        reference = criterion_masks(options.ratios_from, new_model(model_name, splits), splits, options, config.seed)
    return random_masks(weight_shapes(model), mask_counts(reference), torch.Generator().manual_seed(30_000 + config.seed))
