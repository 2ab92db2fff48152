"""``greedyprune train``: train a registered model, or fine-tune a model file (e.g. a pruned model), resumably.

Saves DIR/model.pt (architecture spec + weights; a pruned model keeps its smaller shapes) and DIR/model.json.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..data import get_dataset, num_classes, subset
from ..errors import UserError
from ..io import save_json, save_torch
from ..paths import final_model_path, report_path
from .options import opt, with_flags

HELP = "train a model or fine-tune a model file (resumable); saves OUT/model.pt and prints the test accuracy"


@dataclass
class Options:
    model: str | None = opt(None, "model name to train from scratch (small-cnn, resnet18-fmnist, resnet50, ...) or a "
                                  "model file to fine-tune, e.g. pruned.pt (required)")
    data: str | None = opt(None, "dataset spec: fashion-mnist, imagefolder:DIR, random:CxHxW (default: the model's "
                                 "dataset; required for ImageNet-shaped models)")
    num_classes: int | None = opt(None, "classes of a model name trained from scratch (default: the data's)")
    epochs: float = opt(1.0, "passes over the training data (fractions allowed)")
    out: str | None = opt(None, "output folder: checkpoint.pt while training, model.pt at the end (required)")
    resume: bool = opt(True, "continue from OUT/checkpoint.pt when it exists")
    device: str = opt("cpu", "cpu or cuda")
    batch_size: int | None = opt(None, "images per step (default: the model's recipe)")
    lr: float | None = opt(None, "peak learning rate (default: the model's recipe; 0.01 when fine-tuning a file)")
    optimizer: str | None = opt(None, "sgd or adam (default: the model's recipe)", choices=["sgd", "adam"])
    weight_decay: float | None = opt(None, "weight decay (default: the model's recipe)")
    label_smoothing: float | None = opt(None, "label smoothing (default: the model's recipe)")
    train_images: int = opt(0, "train on a seeded subset of this many images (0: all)")
    seed: int = opt(0, "seed of the initial weights, the data order and the subset")
    checkpoint_every: int = opt(0, "checkpoint every this many steps (0: every epoch)")
    num_workers: int = opt(0, "data-loading worker processes")
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")


def _is_file(model: str) -> bool:
    return Path(model).suffix in (".pt", ".pth") or Path(model).exists()


def _config(options: Options):
    from ..models.cache import DEFAULT_RECIPES
    from ..train import TrainConfig
    if _is_file(options.model):  # fine-tuning a trained model: a low peak learning rate
        base = TrainConfig(lr=0.01, weight_decay=5e-5, label_smoothing=0.1)
    else:
        base = DEFAULT_RECIPES[options.model].train if options.model in DEFAULT_RECIPES else TrainConfig()
    changes = {k: getattr(options, k) for k in ("batch_size", "lr", "optimizer", "weight_decay", "label_smoothing")
               if getattr(options, k) is not None}
    if not (options.epochs > 0 and math.isfinite(options.epochs)):
        raise UserError(f"--epochs must be a positive number, got {options.epochs}")
    try:
        return dataclasses.replace(base, epochs=options.epochs, max_steps=0, seed=options.seed, device=options.device,
                                   checkpoint_every=options.checkpoint_every, eval_every=0,
                                   num_workers=options.num_workers, **changes).validate()
    except UserError as err:  # the config names its fields; the user typed flags
        raise with_flags(err, Options) from None


def _check_fits(model, train_set, classes: int) -> None:
    """Fail in a second, with one line, when the model cannot take the data's images or has too few outputs."""
    import torch

    from ..stats.check import checked_forward
    was_training = model.training
    out = checked_forward(model.eval(), torch.stack([train_set[0][0]]), "the training images")
    model.train(was_training)
    if out.ndim != 2 or out.shape[1] < classes:
        raise UserError(f"the model has {out.shape[-1]} outputs but the data has {classes} classes; "
                        "train a model built for this data (or fine-tune on data with the classes it was built for)")


def run(options: Options) -> None:
    import torch

    from ..distributed import is_main, same_error_on_every_rank
    from ..models import build_model, model_entry
    from ..io import check_writable
    from ..train import evaluate, resolve_device, train
    from .common import dataset_options, load_model, report_skipped
    from .defaults import data_options, train_data

    with same_error_on_every_rank():  # under torchrun: one rank's bad file or folder stops every rank alike
        if not options.out:
            raise UserError("--out is required: the folder for checkpoint.pt and model.pt")
        if not options.model:
            raise UserError("--model is required, e.g. --model small-cnn")
        resolve_device(options.device)
        check_writable(options.out, folder=True)  # fail now, not after the training
        if _is_file(options.model):
            if options.num_classes is not None:
                raise UserError("--num-classes is for a model name trained from scratch; a model file has its classes")
            model = load_model(options.model)
            data = train_data(options.data, getattr(model, "greedyprune_spec", {}).get("name"))
        else:
            model_entry(options.model)
            if options.num_classes is not None and options.num_classes < 1:
                raise UserError(f"--num-classes must be at least 1, got {options.num_classes}")
            data = train_data(options.data, options.model)
        config = _config(options)
        if options.train_images < 0:
            raise UserError(f"--train-images must be at least 1 (0: all images), got {options.train_images}")
        factory_options = {**dataset_options(data, options.skip_bad_images),
                           **data_options(data, model if _is_file(options.model) else options.model)}
        train_set = get_dataset(data, "train", **factory_options)
        if options.train_images:
            train_set = subset(train_set, options.train_images, options.seed)
        if config.batch_size > len(train_set):
            raise UserError(f"--batch-size {config.batch_size} is larger than the {len(train_set)} training images "
                            f"(every step would use all of them); use --batch-size {len(train_set)} or fewer")
        test_set = get_dataset(data, "test", **factory_options)
        if not _is_file(options.model):
            torch.manual_seed(options.seed)
            model = build_model(options.model, options.num_classes or num_classes(test_set))
        _check_fits(model, train_set, num_classes(test_set))
    result = train(model, train_set, config, run_dir=options.out, resume=options.resume)
    metrics = evaluate(model, test_set, 256, options.device, options.num_workers, shard=True)
    if not is_main():  # under torchrun (DDP) rank 0 writes and prints
        return
    report_skipped(train_set)
    report_skipped(test_set)
    spec = model.greedyprune_spec
    path = final_model_path(options.out)
    # model.json is written after model.pt: drop an older one first, so a kill between the two writes
    # leaves model.pt alone (complete; it holds spec and weights), never beside a report of another run
    report_path(path).unlink(missing_ok=True)
    save_torch({"spec": spec, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    save_json({"spec": spec, "data": data, "config": dataclasses.asdict(config), "steps": result.steps,
               "test_acc": metrics["top1"], "test_loss": metrics["loss"], "history": result.history},
              report_path(path))
    print(f"{options.model} on {data}: test accuracy {100 * metrics['top1']:.2f}% "
          f"(loss {metrics['loss']:.4f}, {result.steps} steps); saved {path}")
