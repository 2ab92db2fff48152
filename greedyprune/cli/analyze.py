"""``greedyprune analyze``: decay curves, fitted rates and the theorems' bounds for a model's groups."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import SEED_RANGE
from .options import opt

DEFAULT_ANALYZE_CALIB = 256
HELP = "measure error-vs-kept-channels curves per group, fit rates, check the theory's bounds; writes OUT/"


@dataclass
class Options:
    model: str | None = opt(None, "registered model name or a greedyprune model file; a name with a training "
                                  "recipe (resnet18-fmnist, mobilenet_v2-fmnist, ...) and no --weights is the "
                                  "trained model from the cache (trained once, minutes, if absent)")
    weights: str | None = opt(None, "weights file for a registered name (without it: the trained cache where "
                                    "there is a recipe, else RANDOM weights, with a warning)")
    num_classes: int | None = opt(None, "classes of a model name (default: the model's, or what --weights holds)")
    data: str | None = opt(None, "calibration data: fashion-mnist, imagefolder:DIR, random:CxHxW, ... (default: the "
                                 "model's dataset; ImageNet-shaped models without --data: random images, with a warning)")
    calib: int | None = opt(None, f"number of calibration images (default: {DEFAULT_ANALYZE_CALIB}, or all the data "
                                  "has when fewer)")
    batch_size: int = opt(32, "calibration batch size")
    groups: str = opt("all", "'all' or comma-separated group names (see `greedyprune analyze --groups list`)")
    n_max: int | None = opt(None, "largest number of kept channels per curve (default: every channel, n = 1..N)")
    fit_range: str | None = opt(None, "fit range N_LO:N_HI of kept channels (default: 1 .. N/2, leaving out the "
                                      "end-game near n = N; the report also gives the verdict over N/4, N/2, "
                                      "3N/4 and all)")
    uniform_picks: int | None = opt(None, "picks (with repeats) of uniform herding per group (default: 8 x n_max)")
    methods: str = opt("all", "comma-separated methods (default: all of greedyprune.analysis.METHODS)")
    seeds: int = opt(3, "seeds of the random baseline")
    precision: str = opt("float64", "statistics products", choices=["float32", "float64"])
    out: str | None = opt(None, "output folder for curves.json, bounds.json, report.md and plots/ (required; new, "
                                "empty, or made by an earlier analyze)")
    force: bool = opt(False, "write into an --out folder that holds other files (files of the same names are replaced)")
    device: str = opt("cpu", "cpu or cuda")
    seed: int = opt(0, "seed of the calibration subset (and of RANDOM weights: a name without --weights or recipe)",
                    between=SEED_RANGE)
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")
    progress: bool = opt(True, "show progress bars")


def parse_fit_range(text: str | None) -> tuple[int, int] | None:
    """``"N_LO:N_HI"`` -> ``(N_LO, N_HI)``; one-line error otherwise."""
    from ..errors import UserError
    if text is None:
        return None
    parts = text.replace(",", ":").split(":")
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--fit-range must be N_LO:N_HI (two whole numbers, e.g. 1:64), got {text!r}") from None
    if not 1 <= lo < hi:
        raise UserError(f"--fit-range needs 1 <= N_LO < N_HI, got {text!r}")
    return lo, hi


def run(options: Options) -> None:
    import time

    from greedyprune.analysis import METHODS, analyze_groups, group_statistics

    from ..errors import UserError
    from ..commit import OutputSet
    from ..outputs import claim_output_folder
    from ..pipeline.statistics import model_groups
    from ..stats.check import checked_forward
    from ..train import resolve_device
    from ..models import build_model
    from .common import calibration_data, is_model_file, load_model
    from .defaults import data_options, resolve_data

    if not options.out and options.groups != "list":
        raise UserError("--out is required: the folder for curves.json, bounds.json, report.md and plots")
    device = resolve_device(options.device)
    fit_range = parse_fit_range(options.fit_range)
    if options.uniform_picks is not None and options.uniform_picks < 1:
        raise UserError(f"--uniform-picks must be at least 1, got {options.uniform_picks}")
    if options.groups != "list":  # fail now, not after the statistics
        out = claim_output_folder(options.out, "analyze", options.force)
        outputs = OutputSet()
        outputs.folder(out, "analyze")
    if options.groups == "list":  # the names do not depend on the weights: no training, no warning
        if options.model and not options.weights and not is_model_file(options.model):
            model = build_model(options.model, options.num_classes)
        else:
            model = load_model(options.model, options.weights, options.num_classes)
        print("\n".join(g.name for g in model_groups(model, _example(model))))
        return
    model = load_model(options.model, options.weights, options.num_classes, warn_random=True,
                       progress=options.progress, seed=options.seed)
    data = resolve_data(options.data, model)
    weights = getattr(model, "greedyprune_weights", {})
    model = model.to(device).eval()
    available = [g.name for g in model_groups(model, _example(model).to(device))]
    names = None
    if options.groups != "all":
        names = {n.strip() for n in options.groups.split(",") if n.strip()}
        if not names:
            raise UserError(f"--groups {options.groups!r} names no group; give 'all', comma-separated group names, "
                            "or 'list' to see them")
        unknown = sorted(names - set(available))
        if unknown:
            raise UserError(f"--groups: unknown group(s) {', '.join(unknown[:3])}; run with --groups list to see the "
                            f"{len(available)} groups")
    methods = METHODS if options.methods == "all" else tuple(m.strip() for m in options.methods.split(",") if m.strip())
    if not methods:
        raise UserError(f"--methods {options.methods!r} names no method; give 'all' or some of {', '.join(METHODS)}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"--methods: unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "random" in methods and options.seeds < 1:
        raise UserError(f"--seeds must be at least 1 for the random baseline, got {options.seeds}; "
                        "or leave random out of --methods")
    if options.n_max is not None and options.n_max < 1:
        raise UserError(f"--n-max must be at least 1 kept channel (or left out: every channel), got {options.n_max}")
    start = time.perf_counter()
    batches = [b.to(device) for b in calibration_data(data, options.calib, options.batch_size, options.seed,
                                                      options.skip_bad_images, default=DEFAULT_ANALYZE_CALIB,
                                                      **data_options(data, model))]
    images = sum(len(b) for b in batches)
    checked_forward(model, batches[0])
    groups = group_statistics(model, batches, names, precision=options.precision, device=device,
                              progress=options.progress)
    source = {"model": options.model, "weights": weights.get("weights", "?"), "test_acc": weights.get("test_acc"),
              "data": data, "calibration_images": images, "seed": options.seed}
    # every file is written into a hidden staging folder inside OUT, then committed by renames with
    # report.md last (greedyprune.commit): a failure leaves an earlier analysis in OUT as it was
    with outputs:
        with outputs.tree(out, last=("curves.json", "bounds.json", "report.md")) as staging:
            report = analyze_groups(groups, staging, n_max=options.n_max, methods=methods,
                                    seeds=tuple(range(options.seeds)), progress=options.progress, fit_range=fit_range,
                                    uniform_picks=options.uniform_picks, source={k: v for k, v in source.items()
                                                                                 if v is not None},
                                    title=f"Analysis of {options.model} on {images} images of {data}")
        outputs.commit()
    passed = "; ".join(f"{bound}: {c.get('pass', 0)} pass / {c.get('fail', 0)} fail"
                       + (f" / {c.get('informative', 0)} informative" if bound != "fcfw_endpoint" else "")
                       for bound, c in report.summary.items())
    print(f"analysed {len(groups)} groups in {time.perf_counter() - start:.1f} s; {passed}")
    for key, path in report.files.items():
        print(f"  {key}: {out / Path(path).relative_to(staging)}")


def _example(model):
    """One zero image of the model's input shape (models built by greedyprune.models know it)."""
    import torch

    from ..models.registry import input_shape
    return torch.zeros(1, *input_shape(model))
