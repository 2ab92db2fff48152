"""``greedyprune prune``: greedy forward selection on a whole model, saved physically smaller."""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass

from ..budget import ALLOCATIONS
from ..errors import UserError
from ..options import SEED_RANGE
from ..stats.precision import PRECISIONS
from ..ye2020.options import Ye2020Options
from .options import opt, prefixed_fields, with_flags

HELP = ("prune a model by greedy forward selection; writes OUT (model) and OUT.json (its report). "
        "--method ye2020 (the authors' released procedure, a baseline) needs labelled training data instead of a budget")


def _methods() -> list[str]:
    """The selection methods registered when the command line is built, and ye2020 (a whole-network procedure)."""
    from ..selection import registered_methods
    return sorted(registered_methods) + ["ye2020"]


@dataclass
class _Options:
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
    latency: float | None = opt(None, "keep this fraction of the model's measured latency (every traced node timed on "
                                      "the first 8 calibration images on --device, scaled by the channels it keeps)")
    allocation: str = opt("error", "how a --flops/--params/--latency target is spread over groups: error (smallest "
                                   "error rise per unit of the target's cost), latency (per second of measured latency "
                                   "saved: a faster model at the same --flops), uniform (one kept fraction)",
                          choices=list(ALLOCATIONS))
    latency_table: str | None = opt(None, "with --latency or --allocation latency: the node times of an earlier run's "
                                          "report (OUT.json) instead of measuring them, to get its widths again")
    latency_round_to: int | None = opt(None, "with --latency or --allocation latency and --round-to 1: kept widths "
                                             "are multiples of this (a group narrower than it: the widest "
                                             "power of two leaving it two steps); default: the CPU's SIMD width in "
                                             "floats (16 with AVX-512, 8 with AVX2; oneDNN computes channels in "
                                             "blocks of it), 1 on a GPU; 1: any width", between=(1, None))
    latency_cap_uniform: bool = opt(True, "--allocation latency with --flops/--params: if the widths it picks are "
                                          "slower by the latency model than one kept fraction in every group at the "
                                          "same target, trade error for latency until they are not (docs/budget.md)")
    round_to: int = opt(1, "kept widths are multiples of this (or a group's full width): 8 or 16 make CPU "
                           "convolutions faster at the same FLOPs (they compute channels in blocks; see docs/budget.md); "
                           "1: any width", between=(1, None))
    streams: bool = opt(False, "also prune residual streams and block outputs (groups of kind 'stream': a ResNet "
                               "stage's stream, a MobileNet stage's block outputs); default: block-internal groups only")
    precision: str = opt("float32", "products of the statistics: float32 (fast, accumulated in float64), float64, "
                                    "or bfloat16 (oneDNN's bfloat16 math mode, products within ~1e-5: about 2x faster "
                                    "statistics on CPUs with native bfloat16, float32 elsewhere; "
                                    "docs/calibration_cost.md)",
                         choices=list(PRECISIONS))
    out: str | None = opt(None, "output model file, e.g. pruned.pt (required)")
    device: str | None = opt(None, "cpu or cuda (default: cuda when available)")
    seed: int = opt(0, "seed of the calibration subset, of random selection and of the weights of a name without "
                       "--weights or trained recipe", between=SEED_RANGE)
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")
    recalibrate_bn: bool = opt(False, "re-estimate BatchNorm statistics on the calibration images after pruning "
                                      "(undoes the shrinkage of least-squares refits; helped in 8 of 12 measured settings, see README)")
    refit: str = opt("auto", "global: after selection, refit the pruned layers' consumer weights and bias sinks "
                             "jointly so the penultimate features match the original's on the calibration images (no "
                             "labels; never worse on them; see README). auto: global for the greedy methods "
                             "(reoptimized, uniform, ...), none for the baselines (magnitude, random, ye2020); "
                             "skipped, with the reason in the report, where it cannot apply (e.g. a model without an "
                             "nn.Linear classifier). none: off", choices=["auto", "global", "none"])
    refit_iters: int = opt(40, "L-BFGS iterations of the global refit (about 1.1 forward+backward passes over the "
                               "calibration images each; at most 2 x ITERS + 1 passes in all)")
    ye_run_dir: str | None = opt(None, "ye2020: folder for the per-layer checkpoint, so a killed run resumes")
    cache_mb: int = opt(2048, "most memory (MiB) for each of the two kinds of original-network values kept instead "
                              "of recomputed (recorded targets, values ahead of a cut; up to twice this in all; same "
                              "result bit for bit; 0 recomputes everything: less memory, slower)", between=(0, None))
    progress: bool = opt(True, "show progress bars")


# --ye-*: every setting of the ye2020 baseline, declared once in Ye2020Options (--seed is shared)
Options = make_dataclass("Options", prefixed_fields(Ye2020Options, "ye_", "ye2020: ", exclude=("seed",)),
                         bases=(_Options,))
Options.__doc__ = "Options of ``greedyprune prune`` (the ``ye_*`` fields: :class:`greedyprune.ye2020.Ye2020Options`)."


def read_latency_table(path: str) -> dict[str, float]:
    """The node times recorded in a pruning report (``options.latency_seconds`` of OUT.json)."""
    from ..io import read_json
    report = read_json(path, what="pruning report")
    table = report.get("options", {}).get("latency_seconds") if isinstance(report, dict) else None
    if not isinstance(table, dict):
        raise UserError(f"--latency-table {path}: no latency table in it (options.latency_seconds); give the report "
                        "(OUT.json) of a run made with --latency or --allocation latency")
    return table


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
                                                           ("params", options.params), ("latency", options.latency))
                   if value is not None]
        if not budgets:
            raise UserError("give a budget: --keep F, --flops F, --params F or --latency F (fractions in (0, 1])")
        if len(budgets) > 1:
            raise UserError(f"give one budget, not {' and '.join(budgets)}: --keep, --flops, --params or --latency")
        if options.latency_table and options.latency is None and options.allocation != "latency":
            raise UserError("--latency-table is used only with --latency F or --allocation latency; add one or drop it")
        if options.latency_round_to is not None and options.latency is None and options.allocation != "latency":
            raise UserError("--latency-round-to is used only with --latency F or --allocation latency (other budgets "
                            "round to --round-to); add one or drop it")
        latency_seconds = read_latency_table(options.latency_table) if options.latency_table else None
        try:
            check_refit_options(options.refit, options.refit_iters)
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
                        latency=options.latency, latency_seconds=latency_seconds, allocation=options.allocation, round_to=options.round_to,
                        latency_round_to=options.latency_round_to, latency_cap_uniform=options.latency_cap_uniform, streams=options.streams, device=options.device or default_device(), seed=options.seed,
                        precision=options.precision, recalibrate_bn=options.recalibrate_bn,
                        refit=options.refit, refit_iters=options.refit_iters, cache_mb=options.cache_mb,
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
