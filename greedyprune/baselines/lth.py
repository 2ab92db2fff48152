"""Lottery tickets by iterative magnitude pruning (IMP) with rewinding (Frankle & Carbin 2019; Frankle et al. 2020).

Round 0 trains the dense network from ``theta_0`` for ``T`` steps (saving ``theta_k`` at step ``k``).
Round ``r >= 1``: remove the smallest-magnitude fraction ``p`` of the *surviving* weights of the
round ``r-1`` trained network -- per layer with the output layer at ``p/2`` (``scope="layer"``), or
``p`` of all survivors ranked together (``scope="global"``) -- then rewind the survivors to
``theta_k`` (``k = 0``: the original LTH; ``k > 0``: late rewinding) and retrain for ``T - k`` steps, so
every ticket has the dense run's budget of ``T`` steps. After ``r`` layer-wise rounds a hidden layer
keeps ``(1-p)^r`` of its weights (LeNet-300-100, p = 0.2: round 7 leaves Pm = 21.1%, round 15 3.6%).

Data order. Round ``r`` visits the training examples in the order drawn from seed ``data_seed(seed, r)
= seed + 1009 r`` (round 0, the dense run: ``seed``), so rounds do not all see the same batches -- with
one shared order the minimum of the validation loss keeps landing on the same evaluation points. A
control at round ``r`` uses round ``r``'s order, so ticket and control differ only in mask/start.

Early stopping is read afterwards: the step of minimum validation loss. When that minimum is the last
evaluation (``early_stop_censored``), the true early-stop iteration is at least ``T``.

Controls at chosen rounds, each trained exactly like the ticket:

* ``reinit``: the ticket's mask on a fresh random initialisation (torch seeded with ``seed + 1000003``,
  so it differs from ``theta_0``; saved as ``start.pt`` in the control's folder);
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

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..options import opt
from ..distributed import barrier, first_rank_says, is_main
from ..errors import UserError
from ..io import save_json, save_torch
from ..models import build_model
from ..sparse import apply_masks, load_masked_state_dict, prunable_weights, weight_shapes
from ..sparse.select import global_topk, layerwise_topk, mask_counts, prune_surviving, random_masks
from ..train import TrainConfig
from .common import Splits, load_tensors, new_model, run_training, trained_state

CONTROLS = ("reinit", "random", "oneshot")


@dataclass
class LTHOptions:
    sparsity: float = opt(0.964, "target sparsity: IMP runs the number of rounds that comes closest "
                                 "(LeNet-300-100, p=0.2: 0.789 = 7 rounds = Pm 21.1%, 0.964 = 15 rounds = Pm 3.6%)")
    rounds: int = opt(0, "number of pruning rounds (0: derive from --sparsity)")
    prune_rate: float = opt(0.2, "fraction of the surviving weights pruned per round")
    output_rate: float = opt(-1.0, "rate for the output layer (-1: half of --prune-rate; layer scope only)")
    scope: str = opt("layer", "rank weights per layer or over the whole network", choices=["layer", "global"])
    rewind_step: int = opt(0, "rewind survivors to the weights of this iteration (0: original LTH, >0: late rewinding)")
    controls: str = opt("reinit,random,oneshot", "comma list of controls: reinit, random, oneshot ('' for none)")
    control_sparsities: str = opt("", "comma list: run controls at the rounds closest to these sparsities "
                                      "(empty: at the last round)")


def _parse_list(text: str, kind=float) -> list:
    try:
        return [kind(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UserError(f"expected a comma-separated list, got {text!r}") from None


def layer_rates(names: list[str], options: LTHOptions) -> dict[str, float]:
    """Per-layer pruning fraction per round: ``p``, the last (output) layer ``p/2`` unless given."""
    if not 0 < options.prune_rate < 1:
        raise UserError(f"prune_rate must be in (0, 1), got {options.prune_rate}")
    out = options.prune_rate / 2 if options.output_rate < 0 else options.output_rate
    if not 0 <= out < 1:
        raise UserError(f"output_rate must be in [0, 1), got {options.output_rate}")
    return {n: (out if i == len(names) - 1 else options.prune_rate) for i, n in enumerate(names)}


def sparsity_schedule(shapes: dict, options: LTHOptions, max_rounds: int = 200) -> list[float]:
    """Total sparsity after rounds 0, 1, ..., ``max_rounds`` (the integer counts IMP will keep)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    total = sum(sizes.values())
    rates = layer_rates(list(shapes), options)
    alive = dict(sizes)
    out = [0.0]
    for _ in range(max_rounds):
        if options.scope == "global":
            left = sum(alive.values())
            alive = {"all": left - int(round(options.prune_rate * left))}
        else:
            alive = {n: a - int(round(rates[n] * a)) for n, a in alive.items()}
        out.append(1 - sum(alive.values()) / total)
    return out


def closest_round(schedule: list[float], sparsity: float) -> int:
    return min(range(1, len(schedule)), key=lambda r: (abs(schedule[r] - sparsity), r))


def data_seed(seed: int, round_: int) -> int:
    """The data-order seed of IMP round ``round_`` (and of its controls): ``seed + 1009 round_``."""
    return seed + 1009 * round_


REINIT_SEED_OFFSET = 1_000_003  # the reinit control's initialisation: torch seeded with seed + this


def total_steps(config: TrainConfig, n_train: int) -> int:
    """``T``: the loop's step count for ``config`` on ``n_train`` examples."""
    if config.max_steps > 0:
        return config.max_steps
    return max(1, math.ceil(config.epochs * max(1, n_train // config.batch_size)))


class RewindSaver:
    """Training-loop callback: saves the (dense) weights after ``step`` optimizer steps to ``path``."""

    def __init__(self, step: int, path: Path):
        self.step, self.path = step, Path(path)

    def after_step(self, state) -> None:
        if state.step == self.step and is_main():
            save_torch({k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}, self.path)


def _model(model_name: str, dense_state: dict, masks: dict | None, classes: int | None = None) -> torch.nn.Module:
    """``model_name`` holding exactly ``dense_state`` (rewound weights), then ``masks`` applied."""
    model = build_model(model_name, classes)
    load_masked_state_dict(model, dense_state)
    if masks is not None:
        apply_masks(model, masks)
    return model


def _magnitudes(model_name: str, state: dict, classes: int | None = None) -> dict[str, torch.Tensor]:
    model = build_model(model_name, classes)
    load_masked_state_dict(model, state)
    return {n: m.weight.detach().abs() for n, m in prunable_weights(model).items()}


def _load_or_make_mask(path: Path, make) -> dict[str, torch.Tensor]:
    """``path``'s tensors; made by ``make()`` and saved first when missing (by rank 0 alone; all ranks read it)."""
    if not first_rank_says(path.exists()):
        if is_main():
            save_torch(make(), path)
        barrier()
    return load_tensors(path, "mask or initial weights")


def _save_summary(summary: dict, out: Path) -> None:
    if is_main():
        save_json(summary, out / "summary.json")


def _brief(record: dict) -> dict:
    keys = ("label", "test_acc", "test_acc_at_early_stop", "early_stop_step", "early_stop_censored", "val_loss_min",
            "steps", "seconds", "nonzero", "weights", "sparsity", "layer_density", "macs")
    return {**{k: record[k] for k in keys}, "data_seed": record["config"]["seed"]}


def run_lth(model_name: str, splits: Splits, config: TrainConfig, options: LTHOptions, out: str | Path, *,
            resume: bool = True, progress: bool = True) -> dict:
    """IMP with rewinding plus controls (module docstring); returns and writes ``out/summary.json``."""
    out = Path(out)
    if options.scope not in ("layer", "global"):
        raise UserError(f"scope must be 'layer' or 'global', got {options.scope!r}")
    controls = [c for c in (s.strip() for s in options.controls.split(",")) if c]
    bad = set(controls) - set(CONTROLS)
    if bad:
        raise UserError(f"unknown controls {sorted(bad)}; choose from {', '.join(CONTROLS)}")
    T, k = total_steps(config, len(splits.train)), options.rewind_step
    if not 0 <= k < T:
        raise UserError(f"rewind_step must be in [0, {T}) for a {T}-step run, got {k}")
    C = splits.num_classes
    torch.manual_seed(config.seed)
    init_path = out / "init.pt"
    theta0 = _load_or_make_mask(init_path, lambda: new_model(model_name, splits).state_dict())
    shapes = weight_shapes(_model(model_name, theta0, None, C))
    names = list(shapes)
    schedule = sparsity_schedule(shapes, options)
    rounds = options.rounds or closest_round(schedule, options.sparsity)
    wanted = _parse_list(options.control_sparsities) or [schedule[rounds]]
    control_rounds = sorted({min(rounds, closest_round(schedule, s)) for s in wanted})

    # round 0: dense, saving theta_k
    rewind_path = out / "rewind.pt" if k > 0 else init_path
    callbacks = [RewindSaver(k, rewind_path)] if k > 0 else []
    dense = run_training(_model(model_name, theta0, None, C), splits, config, out / "round_00", callbacks=callbacks,
                         resume=resume, progress=progress, label="dense")
    if not rewind_path.exists():
        raise UserError(f"{rewind_path} is missing; delete {out} and start again")
    theta_k = load_tensors(rewind_path, "rewound weights")
    retrain = config.replace(max_steps=T - k)
    rates = layer_rates(names, options)
    summary = {"model": model_name, "options": vars(options), "T": T, "rewind_step": k, "seed": config.seed,
               "rounds": [{"round": 0, **_brief(dense)}], "controls": []}

    masks = {n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()}
    previous = out / "round_00"
    ticket_masks = {}
    for r in range(1, rounds + 1):
        run_dir = out / f"round_{r:02d}"

        def make(prev_masks=masks, prev_dir=previous):
            scores = _magnitudes(model_name, trained_state(prev_dir), C)
            fractions = options.prune_rate if options.scope == "global" else rates
            return prune_surviving(scores, prev_masks, fractions, options.scope)

        masks = _load_or_make_mask(run_dir / "mask.pt", make)
        record = run_training(_model(model_name, theta_k, masks, C), splits,
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
                def fresh():
                    torch.manual_seed(config.seed + REINIT_SEED_OFFSET)
                    return new_model(model_name, splits).state_dict()
                start, masks = _load_or_make_mask(run_dir / "start.pt", fresh), ticket_masks[r]
            elif control == "random":
                g = torch.Generator().manual_seed(config.seed * 1000 + r)
                start = theta_k
                masks = _load_or_make_mask(run_dir / "mask.pt", lambda: random_masks(shapes, counts, g))
            else:
                if dense_magnitudes is None:
                    dense_magnitudes = _magnitudes(model_name, trained_state(out / "round_00"), C)
                start = theta_k
                masks = _load_or_make_mask(run_dir / "mask.pt", lambda: (
                    global_topk(dense_magnitudes, sum(counts.values())) if options.scope == "global"
                    else layerwise_topk(dense_magnitudes, counts)))
            record = run_training(_model(model_name, start, masks, C), splits,
                                  retrain.replace(seed=data_seed(config.seed, r)), run_dir, resume=resume,
                                  progress=progress, label=f"{control} r{r}")
            summary["controls"].append({"control": control, "round": r, **_brief(record)})
            _save_summary(summary, out)
    _save_summary(summary, out)
    return summary
