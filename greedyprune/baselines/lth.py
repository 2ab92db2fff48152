"""Lottery tickets by iterative magnitude pruning (IMP) with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Round 0 trains the dense network from ``theta_0`` (drawn by :func:`~greedyprune.baselines.imp.initialise`)
for ``T`` steps (saving ``theta_k`` at step ``k``). Round ``r >= 1``: remove the smallest-magnitude
fraction ``p`` of the *surviving* weights of the round ``r-1`` trained network -- per layer
(``scope="layer"``) or ``p`` of all survivors ranked together (``scope="global"``); the output layer
is not pruned by default (open_lth's LeNet), or at ``p/2`` (the paper), see :mod:`.imp` -- then rewind
the survivors to ``theta_k`` (``k = 0``: the original LTH; ``k > 0``: late rewinding) and retrain from
step ``k`` to ``T``. Late rewinding continues as open_lth does: the learning-rate schedule and the data
order resume at step ``k`` (``TrainConfig.start_step``), the optimizer state starts empty (open_lth
saves weights only at the rewind point). After ``r`` layer-wise rounds a hidden layer keeps
``(1-p)^r`` of its weights (LeNet-300-100, p = 0.2, output layer kept: round 7 leaves Pm = 21.3%,
round 15 3.9%; with the output layer at p/2: 21.1% and 3.6%).

Data order. Round ``r`` visits the training examples in the order drawn from seed ``data_seed(seed, r)
= seed + 1009 r`` (round 0, the dense run: ``seed``), so rounds do not all see the same batches -- with
one shared order the minimum of the validation loss keeps landing on the same evaluation points. A
control at round ``r`` uses round ``r``'s order, so ticket and control differ only in mask/start.

Early stopping is read afterwards: the step of minimum validation loss. When that minimum is the last
evaluation (``early_stop_censored``), the true early-stop iteration is at least ``T``.

Controls at chosen rounds, each trained exactly like the ticket:

* ``reinit``: the ticket's mask on a fresh random initialisation of the same scheme (torch seeded with
  ``seed + 1000003``, so it differs from ``theta_0``; saved as ``start.pt`` in the control's folder);
* ``random``: a random mask with the ticket's per-layer counts, rewound to ``theta_k``;
* ``oneshot``: magnitude pruning of the dense trained network straight to the ticket's per-layer counts
  (global: its total), rewound to ``theta_k``.

Resumption: every run lives in its own folder (``round_RR/``, ``controls/NAME_rRR/``) with the loop's
``checkpoint.pt``; masks are saved before their run starts, ``theta_0``/``theta_k`` once. A killed
experiment re-run with the same arguments skips finished runs and resumes the interrupted one at its step.

Under ``torchrun`` every rank trains (DDP), rank 0 alone writes the masks, ``theta_0``/``theta_k``, the
results and ``summary.json``; the other ranks wait for it and read the same files.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..distributed import is_main
from ..errors import UserError
from ..io import save_json
from ..sparse import weight_shapes
from ..sparse.select import global_topk, layerwise_topk, mask_counts, random_masks
from ..train import TrainConfig
from .common import Splits, load_tensors, new_model, run_training, trained_state
from .imp import (CONTROLS, REINIT_SEED_OFFSET, LTHOptions, RewindSaver, closest_round, data_seed, initialise,
                  load_or_make, magnitudes, masked_model, output_rate, parse_list, prune_round, sparsity_schedule,
                  total_steps)

__all__ = ["CONTROLS", "LTHOptions", "closest_round", "data_seed", "run_lth", "sparsity_schedule", "total_steps"]


def _save_summary(summary: dict, out: Path) -> None:
    if is_main():
        save_json(summary, out / "summary.json")


def _brief(record: dict) -> dict:
    keys = ("label", "test_acc", "test_acc_at_early_stop", "early_stop_step", "early_stop_censored", "val_loss_min",
            "steps", "start_step", "trained_steps", "seconds", "nonzero", "weights", "sparsity", "layer_density",
            "macs")
    return {**{k: record[k] for k in keys}, "data_seed": record["config"]["seed"],
            "optimizer": record["config"]["optimizer"], "lr": record["config"]["lr"]}


def _oneshot(dense_magnitudes: dict, counts: dict, options: LTHOptions) -> dict:
    """Magnitude pruning of the dense trained net straight to the ticket's per-layer counts (global: total)."""
    if options.scope == "layer":
        return layerwise_topk(dense_magnitudes, counts)
    names = list(dense_magnitudes)
    ranked = names[:-1] if output_rate(options) == 0 else names
    out = global_topk({n: dense_magnitudes[n] for n in ranked}, sum(counts[n] for n in ranked))
    return {n: out[n] if n in out else torch.ones_like(dense_magnitudes[n], dtype=torch.bool) for n in names}


def run_lth(model_name: str, splits: Splits, config: TrainConfig, options: LTHOptions, out: str | Path, *,
            resume: bool = True, progress: bool = True) -> dict:
    """IMP with rewinding plus controls (module docstring); returns and writes ``out/summary.json``."""
    out = Path(out)
    controls = [c for c in (s.strip() for s in options.controls.split(",")) if c]
    bad = set(controls) - set(CONTROLS)
    if bad:
        raise UserError(f"unknown controls {sorted(bad)}; choose from {', '.join(CONTROLS)}")
    T, k = total_steps(config, len(splits.train)), options.rewind_step
    if not 0 <= k < T:
        raise UserError(f"rewind_step must be in [0, {T}) for a {T}-step run, got {k}")
    C = splits.num_classes

    def fresh(seed: int) -> dict:
        torch.manual_seed(seed)
        return initialise(new_model(model_name, splits), options.init).state_dict()

    init_path = out / "init.pt"
    theta0 = load_or_make(init_path, lambda: fresh(config.seed))
    shapes = weight_shapes(masked_model(model_name, theta0, None, C))
    schedule = sparsity_schedule(shapes, options)
    rounds = options.rounds or closest_round(schedule, options.sparsity)
    wanted = parse_list(options.control_sparsities) or [schedule[rounds]]
    control_rounds = sorted({min(rounds, closest_round(schedule, s)) for s in wanted})

    # round 0: dense, saving theta_k
    rewind_path = out / "rewind.pt" if k > 0 else init_path
    callbacks = [RewindSaver(k, rewind_path)] if k > 0 else []
    dense = run_training(masked_model(model_name, theta0, None, C), splits, config, out / "round_00",
                         callbacks=callbacks, resume=resume, progress=progress, label="dense")
    if not rewind_path.exists():
        raise UserError(f"{rewind_path} is missing; delete {out} and start again")
    theta_k = load_tensors(rewind_path, "rewound weights")
    retrain = config.replace(start_step=k)  # steps k .. T: the schedule and data order continue from k
    summary = {"model": model_name, "options": vars(options), "T": T, "rewind_step": k, "seed": config.seed,
               "rounds": [{"round": 0, **_brief(dense)}], "controls": []}

    masks = {n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()}
    previous = out / "round_00"
    ticket_masks = {}
    for r in range(1, rounds + 1):
        run_dir = out / f"round_{r:02d}"

        def make(prev_masks=masks, prev_dir=previous):
            return prune_round(magnitudes(model_name, trained_state(prev_dir), C), prev_masks, options)

        masks = load_or_make(run_dir / "mask.pt", make)
        record = run_training(masked_model(model_name, theta_k, masks, C), splits,
                              retrain.replace(seed=data_seed(config.seed, r)), run_dir, resume=resume,
                              progress=progress, label=f"ticket r{r}")
        summary["rounds"].append({"round": r, **_brief(record)})
        ticket_masks[r] = masks
        previous = run_dir
        _save_summary(summary, out)

    dense_magnitudes = None
    for r in control_rounds:
        counts = mask_counts(ticket_masks[r])
        for control in controls:
            run_dir = out / "controls" / f"{control}_r{r:02d}"
            if control == "reinit":
                start = load_or_make(run_dir / "start.pt", lambda: fresh(config.seed + REINIT_SEED_OFFSET))
                masks = ticket_masks[r]
            elif control == "random":
                g = torch.Generator().manual_seed(config.seed * 1000 + r)
                start = theta_k
                masks = load_or_make(run_dir / "mask.pt", lambda: random_masks(shapes, counts, g))
            else:
                if dense_magnitudes is None:
                    dense_magnitudes = magnitudes(model_name, trained_state(out / "round_00"), C)
                start = theta_k
                masks = load_or_make(run_dir / "mask.pt", lambda: _oneshot(dense_magnitudes, counts, options))
            record = run_training(masked_model(model_name, start, masks, C), splits,
                                  retrain.replace(seed=data_seed(config.seed, r)), run_dir, resume=resume,
                                  progress=progress, label=f"{control} r{r}")
            summary["controls"].append({"control": control, "round": r, **_brief(record)})
            _save_summary(summary, out)
    _save_summary(summary, out)
    return summary
