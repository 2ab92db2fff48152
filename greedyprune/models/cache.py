"""Models trained once per machine and cached: ``trained_model(name)``.

The cache lives in ``greedyprune.paths.model_cache(name)/<recipe hash>/`` (``$GREEDYPRUNE_CACHE`` moves
it). A miss trains the model with its :class:`Recipe` (default: :data:`DEFAULT_RECIPES`) through
:func:`greedyprune.train.train` with checkpoints in the same folder -- so a killed build resumes --
then commits ``model.pt`` = ``{"spec", "state_dict", "recipe", "test_acc", ...}``, its JSON report
``model.pt.json`` and ``model.pt.sha256`` (the SHA-256 of ``model.pt``) together. A file lock keeps two
processes (or two ``torchrun`` ranks: the builder trains alone, :func:`greedyprune.distributed.alone`)
from training the same model at once; the others wait for the lock (with a timeout).

Integrity (:mod:`greedyprune.models.integrity`): every load checks ``model.pt`` against its recorded hash
and what it holds against the name (spec, architecture, accuracy); an entry written before hashes were
recorded is checked and its hash recorded on first load. A mismatch is refused in one line (delete the
folder to retrain) -- a changed model is never used with the accuracy recorded for another.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..options import opt
from ..data import get_dataset, num_classes, subset
from ..errors import UserError
from ..distributed import alone
from ..locking import file_lock
from ..paths import checkpoint_path, final_model_path, model_cache
from ..train import TrainConfig, evaluate, recalibrate_batchnorm, train
from ..train.config import result_fields
from .integrity import check_cache_writable, load_entry, write_entry
from .registry import build_model, model_entry


@dataclass
class Recipe:
    """How a cached model is trained: which data, how many images, and the :class:`TrainConfig`."""

    dataset: str = opt("fashion-mnist", "dataset spec to train on (its 'train' split) and test on ('test')")
    train_images: int = opt(0, "train on a seeded subset of this many images (0: the whole split)")
    subset_seed: int = opt(0, "seed of that subset")
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig, metadata={"help": "training settings"})
    bn_recalibration: int = opt(2048, "after training, re-estimate BatchNorm statistics on this many training "
                                      "images (0: keep the running averages)")

    def key(self) -> str:
        """Short hash of everything that determines the weights (not device, threads, checkpoint cadence)."""
        fields = {"dataset": self.dataset, "train_images": self.train_images, "subset_seed": self.subset_seed,
                  "train": result_fields(self.train)}
        if self.bn_recalibration:  # 0 (off) hashes like recipes from before the field existed
            fields["bn_recalibration"] = self.bn_recalibration
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def _sgd(**kw) -> TrainConfig:
    base = dict(epochs=1.0, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                schedule="cosine", label_smoothing=0.1, seed=0)
    return TrainConfig(**{**base, **kw})


# Quick recipes (the "-quick" names; the demo and tests): minutes on 2 shared cores. Few steps from
# scratch, so SGD warms up for 20 steps and BN statistics are re-estimated at the end.
# Converged recipes (the plain names; the experiments): every one of the 60,000 training images,
# random crops and flips, enough epochs to come near convergence (about 1-3 hours each on 2 cores).
DEFAULT_RECIPES: dict[str, Recipe] = {
    "lenet300-100": Recipe(train=_sgd(epochs=4, checkpoint_every=200), bn_recalibration=0),
    "small-cnn": Recipe(train_images=20_000, train=_sgd(batch_size=64, lr=0.05, checkpoint_every=50), bn_recalibration=0),
    "resnet18-fmnist-quick": Recipe(train_images=10_000, train=_sgd(batch_size=64, lr=0.05, warmup_steps=20,
                                                                     checkpoint_every=10)),
    "mobilenet_v2-fmnist-quick": Recipe(train_images=8_000, train=_sgd(batch_size=64, lr=0.1, warmup_steps=20,
                                                                        checkpoint_every=10)),
    "mobilenet_v3_small-fmnist-quick": Recipe(train_images=15_000, train=_sgd(batch_size=64, lr=0.1, warmup_steps=20,
                                                                               checkpoint_every=20)),
    "resnet18-fmnist": Recipe(train=_sgd(epochs=15, lr=0.1, warmup_steps=200, augment="crop-flip",
                                         checkpoint_every=100)),
    "mobilenet_v2-fmnist": Recipe(train=_sgd(epochs=20, lr=0.1, weight_decay=1e-4, warmup_steps=200,
                                             augment="crop-flip", checkpoint_every=100)),
    "mobilenet_v3_small-fmnist": Recipe(train=_sgd(epochs=20, lr=0.1, weight_decay=1e-4, warmup_steps=200,
                                                   augment="crop-flip", checkpoint_every=100)),
}


def has_recipe(name: str) -> bool:
    """True when ``name`` has a default recipe, i.e. :func:`trained_model` can train it on data found here."""
    return name in DEFAULT_RECIPES


def default_recipe(name: str) -> Recipe:
    model_entry(name)
    if name not in DEFAULT_RECIPES:
        raise UserError(f"no default training recipe for {name} (there is no data for it on this machine); "
                        f"pass recipe=Recipe(dataset=...) or use one of: {', '.join(DEFAULT_RECIPES)}")
    return dataclasses.replace(DEFAULT_RECIPES[name], train=dataclasses.replace(DEFAULT_RECIPES[name].train))


class TrainedModel(NamedTuple):
    model: nn.Module
    test_acc: float


class _Timer:
    """Training time summed over resumed sessions (checkpointed as callback state)."""

    def __init__(self) -> None:
        self.seconds, self._start = 0.0, None

    def on_train_begin(self, state) -> None:
        self._start = time.perf_counter()

    def after_step(self, state) -> None:
        now = time.perf_counter()
        self.seconds += now - self._start
        self._start = now

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, d: dict) -> None:
        self.seconds = float(d["seconds"])


def _build(name: str, recipe: Recipe, folder: Path, progress: bool) -> None:
    train_set = get_dataset(recipe.dataset, "train")
    if recipe.train_images:
        train_set = subset(train_set, recipe.train_images, recipe.subset_seed)
    test_set = get_dataset(recipe.dataset, "test")
    torch.manual_seed(recipe.train.seed)
    model = build_model(name, num_classes(test_set))
    timer = _Timer()
    if progress:
        print(f"training {name} once for the model cache ({folder}); later calls load it", flush=True)
    result = train(model, train_set, recipe.train, run_dir=folder, callbacks=[timer], resume=True, progress=progress)
    if recipe.bn_recalibration:
        recalibrate_batchnorm(model, train_set, recipe.bn_recalibration, seed=recipe.train.seed,
                              device=recipe.train.device)
    metrics = evaluate(model, test_set, 256, recipe.train.device)
    info = {"spec": model.greedyprune_spec, "recipe": dataclasses.asdict(recipe), "test_acc": metrics["top1"],
            "test_loss": metrics["loss"], "train_seconds": timer.seconds, "steps": result.steps,
            "train_images": len(train_set), "torch_version": str(torch.__version__)}
    write_entry(final_model_path(folder), {**info, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}},
                info)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(checkpoint_path(folder))


def cached_model_path(name: str, recipe: Recipe | None = None) -> Path:
    """Where ``trained_model(name, recipe)`` keeps its ``model.pt`` (it may not exist yet)."""
    recipe = recipe or default_recipe(name)
    return final_model_path(model_cache(name) / recipe.key())


def trained_model(name: str, recipe: Recipe | None = None, device: str = "cpu", progress: bool = True) -> TrainedModel:
    """``(model, test_acc)``: ``name`` trained with ``recipe``, from the cache or trained now (then cached).

    The model is in eval mode on ``device``; ``model.greedyprune_info`` holds the saved report
    (recipe, test accuracy/loss, training seconds, path).
    """
    model_entry(name)
    recipe = recipe or default_recipe(name)
    path = cached_model_path(name, recipe)
    if not path.exists():
        check_cache_writable(path.parent)
        with file_lock(path.parent, f"the cached model {name}"), alone():  # one builder; no collective inside
            if not path.exists():
                _build(name, recipe, path.parent, progress)
    model, saved = load_entry(name, path)
    model.to(device).eval()
    model.greedyprune_info = {k: v for k, v in saved.items() if k != "state_dict"} | {"path": str(path)}
    return TrainedModel(model, float(saved["test_acc"]))
