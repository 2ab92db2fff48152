"""``greedyprune prune``: greedy forward selection on a whole model, saved physically smaller."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..options import SEED_RANGE
from .options import opt, with_flags

HELP = ("prune a model by greedy forward selection; writes OUT (model) and OUT.json (its report). "
        "--method ye2020 (the authors' released procedure, a baseline) needs labelled training data instead of a budget")


def _methods() -> list[str]:
    """The selection methods registered when the command line is built, and ye2020 (a whole-network procedure)."""
    from ..selection import registered_methods
    return sorted(registered_methods) + ["ye2020"]


@dataclass
class Options:
    model: str | None = opt(None, "model name (resnet50, vgg16, any torchvision classification name, timm:NAME, "
                                  "resnet18-fmnist, ...) or a model file")
    weights: str | None = opt(None, "weights file for a model name (torchvision .pth or a state-dict checkpoint)")
    num_classes: int | None = opt(None, "classes of a model name (default: the model's, or what --weights holds)")
    data: str | None = opt(None, "calibration data: fashion-mnist, imagefolder:DIR, random:CxHxW, ... (default: the "
                                 "model's dataset; ImageNet-shaped models without --data: random images, with a warning)")
    calib: int | None = opt(None, "number of calibration images, a seeded subset of the training split (default: 512, "
                                  "or all the data has when fewer)")
    batch_size: int = opt(64, "calibration batch size")
    method: str = opt("reoptimized", "selection method (greedyprune.selection.registered_methods); ye2020 = "
                                     "the authors' released procedure (baseline): it NEEDS LABELS (the labelled "
                                     "training split of --data), scores channels by the whole network's cross-entropy, fine-tunes between layers, picks its own widths (no "
                                     "--keep/--flops/--params) and is slow; see the --ye-* options",
                      choices=_methods)
    keep: float | None = opt(None, "keep this fraction of the channels of every group")
    flops: float | None = opt(None, "keep this fraction of the model's FLOPs (widths allocated by error per FLOP)")
    params: float | None = opt(None, "keep this fraction of the model's parameters")
    allocation: str = opt("error", "how a --flops/--params target is spread over groups", choices=["error", "uniform"])
    round_to: int = opt(1, "kept widths are multiples of this (or a group's full width): 8 or 16 make CPU "
                           "convolutions faster at the same FLOPs (they compute channels in blocks; see docs/budget.md); "
                           "1: any width", between=(1, None))
    streams: bool = opt(False, "also prune residual streams and block outputs (groups of kind 'stream': a ResNet "
                               "stage's stream, a MobileNet stage's block outputs); default: block-internal groups only")
    precision: str = opt("float32", "products of the statistics: float32 (fast, accumulated in float64) or float64",
                         choices=["float32", "float64"])
    out: str | None = opt(None, "output model file, e.g. pruned.pt (required)")
    device: str | None = opt(None, "cpu or cuda (default: cuda when available)")
    seed: int = opt(0, "seed of the calibration subset, of random selection and of the weights of a name without "
                       "--weights or trained recipe", between=SEED_RANGE)
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")
    recalibrate_bn: bool = opt(False, "re-estimate BatchNorm statistics on the calibration images after pruning "
                                      "(undoes the shrinkage of least-squares refits; helped in 8 of 12 measured settings, see README)")
    refit: str = opt("none", "after selection, refit the pruned layers' consumer weights and bias sinks jointly so the "
                             "penultimate features match the original's on the calibration images (no labels; "
                             "never worse on them; see README)", choices=["global", "none"])
    refit_iters: int = opt(40, "L-BFGS iterations of --refit global (each ~2 forward+backward passes over the "
                               "calibration images)")
    ye_candidates: int = opt(50, "ye2020: random channels scored per step, one partial forward each (released: 50)")
    ye_batch_size: int = opt(128, "ye2020: labelled images per step's fresh mini-batch and per fine-tuning step "
                                  "(released: 128)")
    ye_tolerance: float = opt(0.98, "ye2020: stop a layer when top-1 on the check subset reaches this fraction of its "
                                    "starting top-1 (released: 0.98)")
    ye_check_images: int = opt(300, "ye2020: size of the check subset, every (n/this)-th training image (released: 300)")
    ye_finetune_epochs: float = opt(0.1, "ye2020: fine-tuning after each layer, epochs (released: 0.1, SGD lr 2.5e-3)")
    ye_final_epochs: float = opt(0.0, "ye2020: final fine-tune, epochs (released: 150; default 0 = skipped here)")
    ye_streams: bool = opt(True, "ye2020: also prune block outputs (MobileNetV2), as the released code does")
    ye_run_dir: str | None = opt(None, "ye2020: folder for the per-layer checkpoint, so a killed run resumes")
    progress: bool = opt(True, "show progress bars")


def run(options: Options) -> None:
    from ..distributed import is_main, same_error_on_every_rank
    from ..modelfile import check_model_outputs, save
    from ..prune import Pruner
    from ..refit import check_refit_options
    from ..train.checkpoint import resolve_device
    from .common import calibration_data, default_device, load_model
    from .defaults import data_options, resolve_data

    if options.method == "ye2020":
        from .prune_ye2020 import run_ye2020
        return run_ye2020(options)
    with same_error_on_every_rank():  # under torchrun: one rank's bad file or folder stops every rank alike
        if not options.out:
            raise UserError("--out is required: where to write the pruned model (e.g. pruned.pt)")
        budgets = [f"--{name} {value}" for name, value in (("keep", options.keep), ("flops", options.flops),
                                                           ("params", options.params)) if value is not None]
        if not budgets:
            raise UserError("give a budget: --keep F, --flops F or --params F (fractions in (0, 1])")
        if len(budgets) > 1:
            raise UserError(f"give one budget, not {' and '.join(budgets)}: --keep, --flops or --params")
        try:
            check_refit_options(None if options.refit == "none" else options.refit, options.refit_iters)
        except UserError as err:
            raise with_flags(err, Options) from None
        if options.device is not None:  # None: cuda when available; "" or cpu:1 are mistakes, not "auto"
            resolve_device(options.device)
        check_model_outputs(options.out)  # fail now, not after the pruning: OUT and its report OUT.json
        model = load_model(options.model, options.weights, options.num_classes, warn_random=True, seed=options.seed)
        data = resolve_data(options.data, model)
        batches = calibration_data(data, options.calib, options.batch_size, options.seed, options.skip_bad_images,
                                   **data_options(data, model))
    try:
        pruner = Pruner(model, batches, options.method, keep=options.keep, flops=options.flops, params=options.params,
                        allocation=options.allocation, round_to=options.round_to, streams=options.streams, device=options.device or default_device(), seed=options.seed,
                        precision=options.precision, recalibrate_bn=options.recalibrate_bn,
                        refit=None if options.refit == "none" else options.refit, refit_iters=options.refit_iters,
                        progress=options.progress and is_main())
        pruned, report = pruner.run()
    except UserError as err:  # the Pruner agrees on every rank-local failure; the rest is computed from sums
        err.all_ranks = True  # shared by all ranks, so every rank raises the same error
        raise
    if not is_main():  # under torchrun every rank holds the same model; rank 0 writes and prints it
        return
    if hasattr(model, "greedyprune_spec"):
        pruned.greedyprune_spec = model.greedyprune_spec
    save(options.out, pruned.cpu(), report)
    print(report.table())
    print(f"saved {options.out}")
