"""``greedyprune analyze``: decay curves, fitted rates and the theorems' bounds for a model's groups."""

from __future__ import annotations

from dataclasses import dataclass

from .options import opt

HELP = "measure error-vs-kept-channels curves per group, fit rates, check the theory's bounds; writes OUT/"


@dataclass
class Options:
    model: str | None = opt(None, "registered model name or a greedyprune model file")
    weights: str | None = opt(None, "weights file for a registered name")
    data: str = opt("fashion-mnist", "calibration data: fashion-mnist, imagefolder:DIR, ...")
    calib: int = opt(256, "number of calibration images")
    batch_size: int = opt(32, "calibration batch size")
    groups: str = opt("all", "'all' or comma-separated group names (see `greedyprune analyze --groups list`)")
    n_max: int | None = opt(None, "largest number of kept channels per curve (default: every channel)")
    methods: str = opt("all", "comma-separated methods (default: all of analysis.METHODS)")
    seeds: int = opt(3, "seeds of the random baseline")
    precision: str = opt("float64", "statistics products", choices=["float32", "float64"])
    out: str | None = opt(None, "output folder for curves.json, bounds.json, report.md and plots/ (required)")
    device: str = opt("cpu", "cpu or cuda")
    seed: int = opt(0, "seed of the calibration subset")
    skip_bad_images: bool = opt(False, "imagefolder data: skip (and count) unreadable images instead of stopping")
    progress: bool = opt(True, "show progress bars")


def model_group_statistics(model, batches, names=None, precision: str = "float64", progress: bool = False) -> list:
    """``analysis.GroupStatistics`` of every group (or ``names``) of an unpruned ``model``."""
    import torch

    from analysis import GroupStatistics

    from ..stats.collect import iter_group_statistics, magnitude_scores
    dtype = torch.float64 if precision == "float64" else torch.float32
    return [GroupStatistics(group.name, s.gram, s.cross, s.energy, scores=magnitude_scores(group), depth=depth)
            for depth, (group, s) in enumerate(iter_group_statistics(model, batches, dtype, progress=progress,
                                                                     names=names))]


def run(options: Options) -> None:
    import time

    from analysis import METHODS, analyze_groups

    from ..adapters import find_adapter
    from ..errors import UserError
    from ..io import check_writable
    from ..stats.check import checked_forward
    from ..train import resolve_device
    from .common import calibration_data, load_model

    if not options.out and options.groups != "list":
        raise UserError("--out is required: the folder for curves.json, bounds.json, report.md and plots")
    device = resolve_device(options.device)
    if options.groups != "list":
        check_writable(options.out, folder=True)  # fail now, not after the statistics
    model = load_model(options.model, options.weights).to(device).eval()
    available = [g.name for g in find_adapter(model).groups(model)]
    if options.groups == "list":
        print("\n".join(available))
        return
    names = None
    if options.groups != "all":
        names = {n.strip() for n in options.groups.split(",") if n.strip()}
        unknown = sorted(names - set(available))
        if unknown:
            raise UserError(f"unknown group(s) {', '.join(unknown[:3])}; run with --groups list to see the "
                            f"{len(available)} groups")
    methods = METHODS if options.methods == "all" else tuple(m.strip() for m in options.methods.split(","))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    start = time.perf_counter()
    batches = [b.to(device) for b in calibration_data(options.data, options.calib, options.batch_size, options.seed,
                                                      options.skip_bad_images)]
    checked_forward(model, batches[0])
    groups = model_group_statistics(model, batches, names, options.precision, options.progress)
    report = analyze_groups(groups, options.out, n_max=options.n_max, methods=methods,
                            seeds=tuple(range(options.seeds)), progress=options.progress,
                            title=f"Analysis of {options.model} on {options.calib} images of {options.data}")
    passed = "; ".join(f"{bound}: {c.get('pass', 0)} pass / {c.get('fail', 0)} fail"
                       for bound, c in report.summary.items())
    print(f"analysed {len(groups)} groups in {time.perf_counter() - start:.1f} s; {passed}")
    for key, path in report.files.items():
        print(f"  {key}: {path}")
