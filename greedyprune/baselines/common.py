"""What every baseline shares: the data splits, one training run through the shared loop, its record.

A run is one call of :func:`greedyprune.train.train` in its own folder (``run_dir/checkpoint.pt``), so
a killed run resumes at the step it stopped and a finished one returns at once with its final weights
(the loop restores them). :func:`run_training` adds a test-set tracker (test accuracy at every
validation point, hence at the early-stop step = the step of minimum validation loss) and writes
``run_dir/result.json`` (under ``torchrun``: rank 0 writes it, every rank returns the record).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data import get_dataset, num_classes
from ..distributed import is_main
from ..errors import UserError
from ..io import load_checkpoint, read_json, save_json
from ..models import build_model
from ..paths import checkpoint_path
from ..sparse.report import sparsity_report
from ..train import TrainConfig, evaluate, train


@dataclass
class Splits:
    """``train`` (train minus the held-out validation split), ``val`` (early stopping), ``test``."""

    train: Dataset
    val: Dataset
    test: Dataset

    @property
    def num_classes(self) -> int:
        return num_classes(self.test)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.test[0][0].shape)


def new_model(model_name: str, splits: Splits) -> nn.Module:
    """A freshly initialised ``model_name`` (torch's global RNG decides the weights) for ``splits``' classes."""
    return build_model(model_name, splits.num_classes)


def load_splits(spec: str, train_size: int | None = None) -> Splits:
    """Train-minus-val / val / test of dataset ``spec`` (``train_size`` keeps a seeded subset of train)."""
    train_set = get_dataset(spec, split="train-minus-val")
    if train_size:
        from ..data import subset
        train_set = subset(train_set, train_size, seed=0)
    return Splits(train_set, get_dataset(spec, split="val"), get_dataset(spec, split="test"))


def _due(every: int, step: int, steps_per_epoch: int) -> bool:
    return step % (every if every > 0 else steps_per_epoch) == 0


class TestTracker:
    """Evaluates ``dataset`` at the same steps as the loop's validation (and at the last step)."""

    def __init__(self, dataset: Dataset, batch_size: int = 1000):
        self.dataset, self.batch_size = dataset, batch_size
        self.points: list[dict] = []

    def after_step(self, state) -> None:
        last = state.step >= state.total_steps
        if last or _due(state.config.eval_every, state.step, state.steps_per_epoch):
            metrics = evaluate(state.model, self.dataset, self.batch_size, state.device)
            self.points.append({"step": state.step, "test_acc": metrics["top1"], "test_loss": metrics["loss"]})

    def at(self, step: int | None) -> dict | None:
        return next((p for p in self.points if p["step"] == step), None)

    def state_dict(self) -> dict:
        return {"points": list(self.points)}

    def load_state_dict(self, state: dict) -> None:
        self.points = list(state["points"])


def run_training(model: nn.Module, splits: Splits, config: TrainConfig, run_dir: str | Path, *,
                 callbacks: Iterable = (), resume: bool = True, progress: bool = True, label: str = "") -> dict:
    """Train ``model`` in ``run_dir`` and return (and save as ``result.json``) its record.

    Record: ``steps`` (the last step), ``start_step`` (0, or the rewind step), ``trained_steps``
    (``steps - start_step``: the iterations this run trained), ``optimizer_steps``, ``seconds`` (training time; a finished run reloaded keeps the time it took),
    ``early_stop_step`` (min validation loss), ``early_stop_censored`` (that minimum is the last
    validation point: the run may not have reached its early-stop iteration, which is then ``>= steps``),
    ``val_loss_min``, ``test_acc_at_early_stop``, ``test_acc`` / ``test_loss`` / ``val_acc`` (final),
    ``nonzero`` / ``weights`` / ``sparsity`` of the prunable weights, ``history`` (validation points
    with test accuracy). ``model`` is left at its final trained weights.
    """
    run_dir = Path(run_dir)
    previous = run_dir / "result.json"
    earlier = read_result(previous) if resume and os.path.lexists(previous) else None
    tracker = TestTracker(splits.test)
    result = train(model, splits.train, config, run_dir=run_dir, val_set=splits.val,
                   callbacks=[tracker, *callbacks], resume=resume, progress=progress)
    final = evaluate(model, splits.test, 1000, config.device)
    scored = [h for h in result.history if h["val_loss"] is not None]
    early = tracker.at(result.early_stop_step)
    report = sparsity_report(model, input_shape=splits.input_shape)
    history = [{**h, **({"test_acc": p["test_acc"]} if (p := tracker.at(h["step"])) else {})} for h in result.history]
    record = {
        "label": label, "steps": result.steps, "start_step": result.start_step,
        "trained_steps": result.steps - result.start_step, "optimizer_steps": result.optimizer_steps,
        # training time of the call that trained the run (a finished run reloaded keeps its time)
        "seconds": earlier["seconds"] if earlier and earlier.get("steps") == result.steps else result.seconds,
        "early_stop_step": result.early_stop_step,
        "early_stop_censored": bool(scored) and result.early_stop_step == scored[-1]["step"],
        "val_loss_min": min(h["val_loss"] for h in scored) if scored else None,
        "test_acc_at_early_stop": early["test_acc"] if early else None,
        "test_acc": final["top1"], "test_loss": final["loss"],
        "val_acc": result.history[-1]["val_acc"] if result.history else None,
        "nonzero": report["prunable"]["nonzero"], "weights": report["prunable"]["weights"],
        "sparsity": report["prunable"]["sparsity"],
        "macs": {"dense": report["macs"]["dense"], "nonzero": report["macs"]["nonzero"]},
        "layer_density": {layer["name"]: layer["density"] for layer in report["layers"]},
        "config": dataclasses.asdict(config), "history": history,
    }
    if is_main():
        save_json(record, run_dir / "result.json")
    return record


def trained_state(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """The final model state dict of a finished run (from the loop's ``checkpoint.pt``)."""
    path = checkpoint_path(Path(run_dir))
    saved = load_checkpoint(path)
    state = saved.get("model") if isinstance(saved, dict) else None
    _check_tensors(state, path, "its model state")
    return state


def read_result(path: Path) -> dict:
    """A run's ``result.json``: a JSON object with numeric ``steps`` and ``seconds`` (one-line errors otherwise)."""
    fix = "delete it: the run is evaluated again from its checkpoint"
    record = read_json(path, "run record", fix)
    if not isinstance(record, dict) or not all(isinstance(record.get(k), (int, float)) and not isinstance(record.get(k), bool)
                                               for k in ("steps", "seconds")):
        raise UserError(f"run record {path} is damaged (not a JSON object with numeric steps and seconds); {fix}")
    return record


def load_tensors(path: Path, what: str = "mask") -> dict[str, torch.Tensor]:
    """A baseline's saved tensors (a mask, initial weights): a non-empty dict of named tensors, else one line."""
    data = load_checkpoint(path)
    _check_tensors(data, path, f"a {what}")
    return data


SAVED_TENSORS = ("mask.pt", "init.pt", "rewind.pt", "start.pt")


def check_saved_runs(out: str | Path) -> None:
    """Before a baseline writes anything: every ``result.json`` and saved mask / initial weights under ``out``
    that a resumed run would read is readable (one-line errors name the damaged file)."""
    out = Path(out)
    if not out.is_dir():
        return
    for path in sorted(out.rglob("*")):
        if path.name == "result.json":
            read_result(path)
        elif path.name in SAVED_TENSORS:
            load_tensors(path, "mask or initial weights")


def _check_tensors(data, path: Path, what: str) -> None:
    if not (isinstance(data, dict) and data and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in data.items())):
        raise UserError(f"{path} is damaged: {what} should be a dict of named tensors; delete it (or the run's folder) "
                        "to make it again")


def is_finished(run_dir: str | Path) -> bool:
    """True when ``run_dir`` holds a ``result.json`` (the run trained to its last step)."""
    return (Path(run_dir) / "result.json").exists()
