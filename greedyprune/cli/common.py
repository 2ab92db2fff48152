"""What several sub-commands share: turning ``--model/--weights`` and ``--data`` into objects."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import UserError


def is_model_file(model: str) -> bool:
    """``--model`` names a file (``.pt``/``.pth`` or an existing path), not a registered model."""
    return Path(model).suffix in (".pt", ".pth") or Path(model).exists()


def load_model(model: str | None, weights: str | None = None, num_classes: int | None = None, *,
               warn_random: bool = False, progress: bool = True, seed: int = 0) -> nn.Module:
    """``--model`` is a greedyprune model file (pruned or trained) or a registered name (+ ``--weights``).

    A registered name without ``--weights``: a name with a default training recipe (``resnet18-fmnist``,
    ``mobilenet_v2-fmnist``, ... -- ``greedyprune.models.has_recipe``) gives the *trained* model from the
    model cache (trained once, with progress, when absent) and one stderr note saying so; any other name
    (the torchvision ImageNet architectures) has random weights drawn with ``seed`` (so two identical
    commands prune the same model), and ``warn_random`` prints a one-line stderr warning about it (rank 0
    alone prints under ``torchrun``). ``model.greedyprune_weights`` records what was loaded:
    ``{"weights": <file> | "trained cache: <path>" | "random (no --weights)", "test_acc": float | None}``.

    ``num_classes`` (``--num-classes``) sizes the classifier of a registered name. Without it, a weights
    file that fits the architecture but for its class count (a fine-tuned 2-class resnet18) sets it,
    with a stderr note; with it, such a file is a one-line error naming the value to pass.
    """
    import sys

    from ..distributed import is_main
    from ..modelfile import load
    from ..models import build_model, has_recipe, load_weights, model_entry, trained_model
    from ..models.weights import classes_in_weights, read_weights
    if not model:
        raise UserError("--model is required: a registered name (e.g. resnet50) or a greedyprune model file")
    if num_classes is not None and num_classes < 1:
        raise UserError(f"--num-classes must be at least 1, got {num_classes}")
    if is_model_file(model):
        if weights:
            raise UserError("--weights is only for registered model names; the model file already holds weights")
        net = load(model)
        saved = getattr(net, "greedyprune_spec", None) or {}
        if num_classes is not None and saved.get("num_classes") not in (None, num_classes):
            raise UserError(f"--num-classes {num_classes} does not match {model}, which has {saved['num_classes']} "
                            "classes; leave --num-classes out for a model file")
        net.greedyprune_weights = {"weights": str(model), "test_acc": None}
        return net
    entry = model_entry(model)
    if not weights and has_recipe(model) and num_classes in (None, entry.num_classes):
        net, acc = trained_model(model, progress=progress)
        path = net.greedyprune_info["path"]
        if is_main():
            print(f"greedyprune: {model} without --weights: the trained model from the cache ({path}; "
                  f"test top-1 {100 * acc:.2f}%)", file=sys.stderr)
        net.greedyprune_weights = {"weights": f"trained cache: {path}", "test_acc": acc}
        return net.eval()
    import torch
    with torch.random.fork_rng(devices=[]):  # seeded random weights; torch's global RNG is left as it was
        torch.manual_seed(seed)
        net = build_model(model, num_classes)
    if weights:
        state = read_weights(weights)
        found = classes_in_weights(net, state)
        if found:  # the file fits but for its class count: take it from the file, or say which flag to pass
            classes, key = found
            shape = "(" + ", ".join(str(s) for s in state[key].shape) + ")"
            if num_classes is not None:
                raise UserError(f"--num-classes {num_classes} does not match {weights}: its {key} is {shape}, "
                                f"{classes} classes; pass --num-classes {classes} (or leave it out)")
            if is_main():
                print(f"greedyprune: {weights} has {classes} classes ({key} is {shape}): building {model} "
                      f"with --num-classes {classes}", file=sys.stderr)
            net = build_model(model, classes)
        load_weights(net, weights, state=state)
        net.greedyprune_weights = {"weights": str(weights), "test_acc": None}
    else:
        if warn_random and is_main():
            print(f"greedyprune: warning: {model} without --weights has RANDOM weights (seeded with --seed {seed}; no "
                  "trained recipe for it); pass --weights FILE to use trained ones", file=sys.stderr)
        net.greedyprune_weights = {"weights": "random (no --weights)", "test_acc": None}
    return net.eval()


def default_device() -> str:
    """``--device`` when not given: ``cuda`` where there is a GPU, else ``cpu``."""
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def eval_split(data: str) -> str:
    """Held-out split of a data spec: ImageNet-style folders use ``val``, the rest ``test``."""
    return "val" if data.startswith("imagefolder:") else "test"


def dataset_options(data: str, skip_bad_images: bool) -> dict:
    """Factory options for ``--data``: ``--skip-bad-images`` applies to image folders (other data has no files)."""
    return {"skip_bad_images": True} if skip_bad_images and data.strip().startswith("imagefolder:") else {}


def report_skipped(dataset) -> None:
    """One stderr line counting the unreadable images ``--skip-bad-images`` skipped (nothing when none)."""
    import sys
    inner = dataset
    while not hasattr(inner, "skipped") and hasattr(inner, "dataset"):
        inner = inner.dataset
    skipped = sorted(getattr(inner, "skipped", ()))
    if skipped:
        print(f"greedyprune: skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]} "
              "(each replaced by the next readable one)", file=sys.stderr)


def calibration_data(data: str, calib: int | None, batch_size: int, seed: int, skip_bad_images: bool = False,
                     default: int = 512, **dataset_extra) -> list:
    """``--calib`` images of ``--data`` (training split) as batches, with one-line errors for bad sizes.

    ``calib=None`` (not given): ``default`` images, or every image when the data has fewer (said on stderr);
    a given ``calib`` above the number of images is refused. ``dataset_extra`` goes to the dataset
    factory (e.g. ``image_size`` for image folders read at the model's input size).
    """
    import sys

    from ..data import calibration_batches, get_dataset
    from ..distributed import is_main
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if calib is not None and calib < 1:
        raise UserError(f"--calib must be at least 1 image, got {calib}")
    dataset = get_dataset(data, "train", **dataset_options(data, skip_bad_images), **dataset_extra)
    if calib is None:
        calib = min(default, len(dataset))
        if calib < default and is_main():
            print(f"greedyprune: --calib defaults to {default} images but {data} has {len(dataset)}: using all "
                  f"{len(dataset)}", file=sys.stderr)
    if len(dataset) < calib:
        raise UserError(f"--calib {calib} asks for more images than {data} has ({len(dataset)}); "
                        f"use --calib {len(dataset)} or fewer, or more data")
    batches = calibration_batches(dataset, calib, batch_size, seed)
    report_skipped(dataset)
    return batches
