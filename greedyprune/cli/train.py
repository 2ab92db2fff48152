"""``greedyprune train``: train a registered model, or fine-tune a model file (e.g. a pruned model), resumably.

Saves DIR/model.pt (architecture spec + weights; a pruned model keeps its smaller shapes) and DIR/model.pt.json;
DIR/checkpoint.pt records what the run was started with, and a resume with other data or options is refused.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..data import get_dataset, num_classes, subset
from ..errors import UserError
from ..paths import checkpoint_path, final_model_path, report_path
from ..options import SEED_RANGE
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
    seed: int = opt(0, "seed of the initial weights, the data order and the subset", between=SEED_RANGE)
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


def _declare_outputs(out: str):
    """The run folder and every file train writes in it, checked now (one-line errors)."""
    from ..commit import OutputSet
    from ..io import check_writable
    from ..outputs import check_output_file
    check_writable(out, folder=True)
    check_output_file(checkpoint_path(Path(out)), role=f"{out}: its checkpoint {checkpoint_path(Path(out))}")
    outputs = OutputSet()
    path = final_model_path(out)
    outputs.file(path, role=f"{out}: its model {path}")
    outputs.file(report_path(path), role=f"{out}: its report {report_path(path)}")
    return outputs


def _fit_batch(config, options: Options, n_train: int):
    """An explicit --batch-size above the number of training images is refused; the recipe's default adapts
    (and says so on stderr)."""
    import sys
    if config.batch_size <= n_train:
        return config
    if options.batch_size is not None:
        raise UserError(f"--batch-size {config.batch_size} is larger than the {n_train} training images "
                        f"(every step would use all of them); use --batch-size {n_train} or fewer")
    print(f"greedyprune: the default batch size {config.batch_size} is more than the {n_train} training images; "
          f"using --batch-size {n_train}", file=sys.stderr)
    return dataclasses.replace(config, batch_size=n_train)


def _identity(options: Options, train_set, data: str) -> dict:
    """What a run is started with, recorded in its checkpoint: a resume with anything else is refused."""
    from ..data.fingerprint import fingerprint
    from ..io import file_sha256
    model = options.model
    if _is_file(model):
        model = f"{model} (sha256 {file_sha256(model)[:16]})"
    return {"--model": model, "--data": data, "--num-classes": options.num_classes,
            "--train-images": options.train_images, "--skip-bad-images": options.skip_bad_images, "data content": fingerprint(train_set)}


def run(options: Options) -> None:
    import torch

    from ..distributed import is_main, same_error_on_every_rank
    from ..models import build_model, model_entry
    from ..train import evaluate, resolve_device, train
    from .common import dataset_options, load_model, report_skipped
    from .defaults import data_options, train_data

    with same_error_on_every_rank():  # under torchrun: one rank's bad file or folder stops every rank alike
        if not options.out:
            raise UserError("--out is required: the folder for checkpoint.pt and model.pt")
        if not options.model:
            raise UserError("--model is required, e.g. --model small-cnn")
        resolve_device(options.device)
        outputs = _declare_outputs(options.out)  # fail now, not after the training
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
        if options.train_images > len(train_set):  # an explicit value the data cannot meet is refused
            raise UserError(f"--train-images {options.train_images} asks for more images than {data} has "
                            f"({len(train_set)}); use --train-images {len(train_set)} or fewer (0: all)")
        if options.train_images:
            train_set = subset(train_set, options.train_images, options.seed)
        config = _fit_batch(config, options, len(train_set))
        test_set = get_dataset(data, "test", **factory_options)
        if not _is_file(options.model):
            torch.manual_seed(options.seed)
            model = build_model(options.model, options.num_classes or num_classes(test_set))
        _check_fits(model, train_set, num_classes(test_set))
        identity = _identity(options, train_set, data)
    result = train(model, train_set, config, run_dir=options.out, resume=options.resume, identity=identity)
    metrics = evaluate(model, test_set, 256, options.device, options.num_workers, shard=True)
    if not is_main():  # under torchrun (DDP) rank 0 writes and prints
        return
    report_skipped(train_set)
    report_skipped(test_set)
    spec = model.greedyprune_spec
    path = final_model_path(options.out)
    with outputs:  # model.pt and model.pt.json: staged, then committed together (greedyprune.commit)
        outputs.save_torch({"spec": spec, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
        outputs.save_json({"spec": spec, "data": data, "config": dataclasses.asdict(config),
                           "started_with": identity, "steps": result.steps, "test_acc": metrics["top1"],
                           "test_loss": metrics["loss"], "history": result.history}, report_path(path))
        outputs.commit()
    print(f"{options.model} on {data}: test accuracy {100 * metrics['top1']:.2f}% "
          f"(loss {metrics['loss']:.4f}, {result.steps} steps); saved {path}")
