"""``greedyprune demo``: the main job on an embedded default, end to end on real data.

Fashion-MNIST -> a ResNet-18 trained here (cached after the first run) -> pruned to about half its
FLOPs by greedy forward selection (``reoptimized``) and by magnitude pruning at the *same* widths ->
top-1 before / after pruning / with BatchNorm statistics re-estimated / after a short fine-tune -> decay
curves of a few layers as a PNG.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

from .options import opt

HELP = "prune a Fashion-MNIST ResNet-18 to half its FLOPs, greedy vs magnitude, with a decay-curve plot"


@dataclass
class Options:
    model: str = opt("resnet18-fmnist-quick", "model from the trained-model cache (trained on first use; the -quick names train in about a minute)")
    flops: float = opt(0.5, "fraction of FLOPs to keep")
    methods: str = opt("reoptimized+refit,reoptimized,magnitude",
                       "methods to compare (the first sets the widths); METHOD+refit adds the global refit, a "
                       "name alone runs without it (whatever the method's default in greedyprune prune)")
    calib: int = opt(256, "calibration images (from the training split)", between=(1, None))
    test_images: int = opt(2000, "test images for top-1 (a fixed seeded subset of the 10,000)", between=(1, None))
    finetune_images: int = opt(4000, "training images for the short fine-tune (0: skip)", between=(0, None))
    finetune_epochs: float = opt(1.0, "fine-tune epochs over those images")
    curve_groups: int = opt(4, "number of groups in the decay-curve plot", between=(1, 1000))
    out: str = opt("greedyprune-demo", "output folder (models, report JSON, plot): new, empty, or made by an "
                                        "earlier demo")
    force: bool = opt(False, "write into an --out folder that holds other files (files of the same names are replaced)")
    device: str | None = opt(None, "cpu or cuda (default: cuda when available)")


def _check_options(options: Options, train_size: int, test_size: int) -> list[str]:
    """Every option, checked before the model is trained or loaded; returns the methods."""
    import math

    from ..budget import check_fraction
    from ..errors import UserError
    from ..models import default_recipe
    from ..selection import registered_methods
    check_fraction("flops", options.flops)
    methods = [m.strip() for m in options.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m.removesuffix("+refit") not in registered_methods]
    if unknown or not methods:
        raise UserError(f"unknown method(s) {', '.join(unknown) or '(none given)'} in --methods; choose from "
                        f"{', '.join(sorted(registered_methods))} (each optionally +refit)")
    if len(set(methods)) < len(methods):
        raise UserError(f"--methods names a method twice ({options.methods}); give each once")
    default_recipe(options.model)  # a model the cache can train (one line otherwise)
    for flag, value, low, high in (("--calib", options.calib, 1, train_size),
                                   ("--test-images", options.test_images, 1, test_size),
                                   ("--finetune-images", options.finetune_images, 0, train_size),
                                   ("--curve-groups", options.curve_groups, 1, 1000)):
        if not low <= value <= high:
            raise UserError(f"{flag} must be between {low} and {high:,} (the data has that many), got {value}")
    if not (options.finetune_epochs > 0 and math.isfinite(options.finetune_epochs)):
        raise UserError(f"--finetune-epochs must be a positive number, got {options.finetune_epochs}")
    return methods


def _fine_tune(model, dataset, options: Options, device) -> None:
    from ..train import TrainConfig, train
    config = TrainConfig(epochs=options.finetune_epochs, batch_size=64, lr=0.01, weight_decay=5e-5,
                         label_smoothing=0.1, device=str(device))
    train(model, dataset, config, progress=True)
    model.eval()


def _decay_plots(model, batches, out: Path, groups: int) -> list[Path]:
    """Error vs kept channels for a few groups spread over the depth (one PNG each)."""
    from greedyprune.analysis import decay_curves, fit_curve, group_statistics
    from greedyprune.analysis.plots import plot_group
    from greedyprune.analysis.report import safe_name

    from ..pipeline.statistics import model_groups
    names = [g.name for g in model_groups(model, batches[0])]
    chosen = {names[round(i * (len(names) - 1) / max(groups - 1, 1))] for i in range(groups)}
    paths = []
    for group in group_statistics(model, batches, chosen):
        curves = decay_curves(group, min(group.size, 128), methods=("reoptimized", "uniform", "magnitude", "random"),
                              seeds=(0, 1, 2))
        path = out / f"decay_{safe_name(group.name)}.png"
        fits = {m: fit_curve(c.errors[:c.measured_until], size=group.size) for m, c in curves.curves.items()}
        plot_group(curves, fits, {}, path)  # fits over the default bulk range n <= N/2
        paths.append(path)
    return paths


def run(options: Options) -> None:
    import torch

    from ..commit import OutputSet
    from ..data import calibration_batches, get_dataset, subset
    from ..modelfile import stage_model
    from ..models import trained_model
    from ..outputs import claim_output_folder
    from ..paths import report_path
    from ..prune import Pruner
    from ..train import evaluate, recalibrate_batchnorm_on, resolve_device

    device = resolve_device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_data, test_data = get_dataset("fashion-mnist", "train"), get_dataset("fashion-mnist", "test")
    methods = _check_options(options, len(train_data), len(test_data))  # bad input fails now, not after training
    out = claim_output_folder(options.out, "demo", options.force)
    outputs = OutputSet()
    outputs.folder(out, "demo")
    for method in methods:
        outputs.file(out / f"{method}.pt")
        outputs.file(report_path(out / f"{method}.pt"))
    outputs.file(out / "demo.json")
    start = time.perf_counter()
    print(f"[1/4] model: {options.model} (trained on Fashion-MNIST on first use, then cached)")
    model, _ = trained_model(options.model, device=str(device))
    test = subset(test_data, options.test_images, seed=0)
    batches = [b.to(device) for b in calibration_batches(train_data, options.calib, 64, seed=0)]
    dense = evaluate(model, test, 256, device)["top1"]
    rows, widths = [], None
    for method in methods:
        print(f"[2/4] pruning with {method} to {options.flops:.0%} of the FLOPs")
        budget = {"flops": options.flops} if widths is None else {"widths": widths}
        refit = "global" if method.endswith("+refit") else None  # explicit both ways: a row means one thing
        pruner = Pruner(model, batches, method.removesuffix("+refit"), device=str(device), refit=refit, **budget)
        pruned, report = pruner.run()
        widths = widths or report.widths()
        after = evaluate(pruned, test, 256, device)["top1"]
        recalibrated = evaluate(recalibrate_batchnorm_on(copy.deepcopy(pruned), batches), test, 256, device)["top1"]
        tuned = None
        if options.finetune_images:
            print(f"[3/4] fine-tuning the {method} model on {options.finetune_images} images")
            train_set = subset(train_data, options.finetune_images, seed=1)
            _fine_tune(pruned, train_set, options, device)
            tuned = evaluate(pruned, test, 256, device)["top1"]
        pruned.greedyprune_spec = model.greedyprune_spec
        stage_model(outputs, out / f"{method}.pt", pruned.cpu(), report, flag="--out")
        pruned.to(device)
        rows.append({"method": method, "params_before": report.params_before, "params_after": report.params_after,
                     "flops_before": report.flops_before, "flops_after": report.flops_after, "top1_dense": dense,
                     "top1_pruned": after, "top1_bn_recalibrated": recalibrated,
                     "top1_finetuned": tuned, "prune_seconds": report.seconds,
                     "mean_group_error": sum(g.error for g in report.groups) / len(report.groups)})
    print("[4/4] decay curves of a few layers")
    with outputs:  # the models (staged above), the plots, then demo.json: committed together, demo.json last
        with outputs.tree(out) as staging:
            plots = [out / p.relative_to(staging) for p in _decay_plots(model, batches, staging, options.curve_groups)]
        outputs.save_json({"options": options.__dict__, "rows": rows, "seconds": time.perf_counter() - start},
                          out / "demo.json")
        outputs.commit()
    print()
    print(f"{'method':<18} {'params':>17} {'FLOPs':>13} {'top-1 dense':>11} {'pruned':>7} {'BN recal':>8} {'fine-tuned':>10} "
          f"{'mean err':>8} {'time':>6}")
    for r in rows:
        tuned = f"{100 * r['top1_finetuned']:.2f}" if r["top1_finetuned"] is not None else "-"
        print(f"{r['method']:<18} {r['params_before'] / 1e6:6.2f}M -> {r['params_after'] / 1e6:5.2f}M "
              f"{r['flops_after'] / r['flops_before']:12.1%} {100 * r['top1_dense']:11.2f} "
              f"{100 * r['top1_pruned']:7.2f} {100 * r['top1_bn_recalibrated']:8.2f} {tuned:>10} {r['mean_group_error']:8.3f} {r['prune_seconds']:5.0f}s")
    print(f"\ntop-1 on {options.test_images} test images; same widths for every method; "
          f"plots: {', '.join(str(p) for p in plots)}; total {time.perf_counter() - start:.0f} s")
