"""``greedyprune baseline``: run one unstructured-sparsity baseline (resumable) and print its result table."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import UserError
from ..options import SEED_RANGE
from .options import opt, with_flags

HELP = "run a sparsity baseline (lth, rigl, set, static, snip, grasp, random, random-ratios, dense, bip); resumable"

METHODS = ["lth", "rigl", "set", "static", "snip", "grasp", "random", "random-ratios", "dense", "bip"]


@dataclass
class Options:
    method: str | None = opt(None, "baseline to run (required)", choices=METHODS)
    model: str = opt("lenet300-100", "model name (Linear/Conv weights are sparsified)")
    data: str = opt("fashion-mnist", "dataset spec with train-minus-val/val/test splits")
    sparsity: float = opt(0.9, "fraction of Linear/Conv weights that are zero (lth: target; the closest round is used)")
    out: str | None = opt(None, "output folder (one sub-folder per training run; required)")
    resume: bool = opt(True, "continue finished/interrupted runs found in OUT")
    seed: int = opt(0, "seed of the initial weights, masks and data order", between=SEED_RANGE)
    device: str = opt("cpu", "cpu or cuda")
    # training (default: the method's recipe, see greedyprune/baselines/recipes.py)
    epochs: float | None = opt(None, "passes over the training data (default: recipe)")
    max_steps: int | None = opt(None, "optimizer steps (overrides --epochs; default: recipe)")
    batch_size: int | None = opt(None, "images per step (default: recipe)")
    optimizer: str | None = opt(None, "sgd or adam (default: recipe)", choices=["sgd", "adam"])
    lr: float | None = opt(None, "peak learning rate (default: recipe)")
    weight_decay: float | None = opt(None, "weight decay (default: recipe)")
    schedule: str | None = opt(None, "cosine or constant (default: recipe)", choices=["cosine", "constant"])
    eval_every: int | None = opt(None, "validation/test evaluation every this many steps (default: recipe)")
    train_images: int = opt(0, "train on a seeded subset of this many images (0: all)")
    progress: bool = opt(True, "show progress bars")
    # rigl / set / static
    distribution: str = opt("erk", "rigl/set/static: per-layer densities", choices=["erk", "er", "uniform"])
    dense_first: str = opt("auto", "rigl/set/static: keep the first layer dense (auto: uniform yes, as RigL; "
                                   "er/erk no)", choices=["auto", "yes", "no"])
    erk_power_scale: float = opt(1.0, "rigl/set/static: ERK exponent (the reference's erk_power_scale)")
    update_interval: int = opt(100, "rigl/set: steps between mask updates (dT)")
    alpha: float = opt(0.3, "rigl/set: initial drop fraction (cosine-annealed)")
    end_fraction: float = opt(0.75, "rigl/set: last update at this fraction of training (T_end)")
    skip_optimizer_step: bool = opt(True, "rigl/set: no optimizer step on mask-update iterations (as the reference)")
    # lth
    rounds: int = opt(0, "lth: pruning rounds (0: closest to --sparsity)")
    prune_rate: float = opt(0.2, "lth: fraction of surviving weights pruned per round")
    output_rate: float = opt(0.0, "lth: output layer rate (0: not pruned, as open_lth's LeNet; -1: half of "
                                  "--prune-rate, as Frankle & Carbin)")
    scope: str = opt("layer", "lth: prune per layer or globally", choices=["layer", "global"])
    rewind_step: int = opt(0, "lth: rewind to this iteration (0: original LTH; >0: late rewinding)")
    init: str = opt("glorot-normal", "lth: initial weights (glorot-normal: the paper's; kaiming-normal: open_lth's)",
                    choices=["glorot-normal", "kaiming-normal", "torch-default"])
    controls: str = opt("reinit,random,oneshot", "lth: controls to run (comma list, '' for none)")
    control_sparsities: str = opt("", "lth: run controls at the rounds closest to these sparsities (default: last)")
    # snip / grasp / random
    samples_per_class: int = opt(10, "snip/grasp: scoring images per class")
    temperature: float = opt(200.0, "grasp: logit temperature")
    ratios_from: str = opt("grasp", "random-ratios: copy per-layer counts of", choices=["grasp", "snip"])
    # bip (bilevel mask learning; step sizes: see docs/bilevel.md)
    solver: str = opt("first-order", "bip: bilevel solver", choices=["first-order", "mrbo", "vrbo"])
    gamma: float = opt(1e-4, "bip: lower-level l2 coefficient (BiP's weight decay)")
    implicit_term: str = opt("reference", "bip: implicit term (reference: BiP's code, lr2 (grad_s l)^2)",
                             choices=["reference", "inverse-gamma", "none"])
    lr2: float = opt(1e-4, "bip: coefficient of the reference implicit term")
    implicit_gamma: float = opt(0.0, "bip: gamma of the inverse-gamma implicit term (0: --gamma)")
    lr_scores: float = opt(0.1, "bip: upper-level (mask score) step size (the paper's beta)")
    lr_weights: float = opt(0.01, "bip: lower-level (weight) step size (the paper's alpha)")


def train_config(options: Options):
    from ..baselines.recipes import recipe_for
    base = recipe_for(options.method)
    changes = {k: getattr(options, k) for k in ("epochs", "max_steps", "batch_size", "optimizer", "lr", "weight_decay",
                                                "schedule", "eval_every") if getattr(options, k) is not None}
    if "epochs" in changes and "max_steps" not in changes:
        changes["max_steps"] = 0
    try:
        return dataclasses.replace(base, seed=options.seed, device=options.device, **changes).validate()
    except UserError as err:  # the config names its fields; the user typed flags
        raise with_flags(err, Options) from None


def method_options(options: Options):
    from ..baselines import registered_baselines
    cls = registered_baselines[options.method][1]
    try:
        return cls(**{f.name: getattr(options, f.name) for f in dataclasses.fields(cls)
                      if getattr(options, f.name, None) is not None})  # unset CLI values keep the method's default
    except UserError as err:
        raise with_flags(err, Options) from None


MAX_ROUNDS = 200  # rounds of the IMP sparsity schedule (greedyprune.baselines.lth.sparsity_schedule)


def _sparsities(text: str) -> list[float]:
    values = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if part and not 0 <= value < 1:
            raise UserError(f"--control-sparsities takes comma-separated fractions in [0, 1), got {text!r}; "
                            "e.g. --control-sparsities 0.79,0.96")
        if part:
            values.append(value)
    return values


def check_options(options: Options, config, splits) -> None:
    """Every option the chosen method uses, checked before any file is written; one-line errors naming the flag."""
    from ..baselines.lth import CONTROLS, total_steps
    method = options.method
    n_train = len(splits.train)
    if config.batch_size > n_train:
        raise UserError(f"--batch-size {config.batch_size} is larger than the {n_train} training images "
                        f"(every step would use all of them); use --batch-size {n_train} or fewer")
    if method == "lth":
        if not 0 <= options.rounds <= MAX_ROUNDS:
            raise UserError(f"--rounds must be between 0 (derive from --sparsity) and {MAX_ROUNDS}, got {options.rounds}")
        if not 0 < options.prune_rate < 1:
            raise UserError(f"--prune-rate must be a fraction in (0, 1), got {options.prune_rate}")
        if not (options.output_rate < 1 and math.isfinite(options.output_rate)):
            raise UserError(f"--output-rate must be in [0, 1) (or -1: half of --prune-rate), got {options.output_rate}")
        unknown = sorted({c.strip() for c in options.controls.split(",") if c.strip()} - set(CONTROLS))
        if unknown:
            raise UserError(f"--controls: unknown control(s) {', '.join(unknown)}; choose from {', '.join(CONTROLS)} "
                            "('' for none)")
        _sparsities(options.control_sparsities)
        steps = total_steps(config, n_train)
        if not 0 <= options.rewind_step < steps:
            raise UserError(f"--rewind-step must be in [0, {steps}) for this {steps}-step run, got {options.rewind_step}")
    if method in ("rigl", "set"):
        if options.update_interval < 1:
            raise UserError(f"--update-interval must be at least 1 step, got {options.update_interval}")
        if not 0 <= options.alpha <= 1:
            raise UserError(f"--alpha (the initial drop fraction) must be in [0, 1], got {options.alpha}")
        if not 0 < options.end_fraction <= 1:
            raise UserError(f"--end-fraction (last update, as a fraction of training) must be in (0, 1], "
                            f"got {options.end_fraction}")
    if method in ("snip", "grasp", "random-ratios"):
        if options.samples_per_class < 1:
            raise UserError(f"--samples-per-class must be at least 1 (scoring images per class), "
                            f"got {options.samples_per_class}")
        if not options.temperature > 0:
            raise UserError(f"--temperature must be > 0, got {options.temperature}")
    if method == "bip":
        for flag, value in (("--gamma", options.gamma), ("--lr-scores", options.lr_scores),
                            ("--lr-weights", options.lr_weights)):
            if not (value > 0 and math.isfinite(value)):
                raise UserError(f"{flag} must be a positive number, got {value}")


def check_model_fits(options: Options, splits) -> None:
    """The model runs on a first batch of the training images and has an output per class (one-line errors)."""
    import torch

    from ..models import build_model
    from .train import _check_fits
    with torch.random.fork_rng(devices=[]):  # the runners seed their own models; leave torch's RNG as it was
        model = build_model(options.model, splits.num_classes)
    _check_fits(model, splits.train, splits.num_classes)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def format_table(rows: list[dict]) -> str:
    lines = [f"{'run':<18} {'sparsity%':>9} {'non-zero':>9} {'test%':>7} {'early-stop':>10} {'test%@ES':>8} {'time s':>7}"]
    for r in rows:
        label = r.get("label") or f"{r.get('method', '')}-{r.get('options', {}).get('solver', '')}".strip("-")
        lines.append(f"{label:<18} {100 * r['sparsity']:>9.2f} {r['nonzero']:>9} {_pct(r['test_acc']):>7} "
                     f"{str(r.get('early_stop_step', '-')):>10} {_pct(r.get('test_acc_at_early_stop')):>8} "
                     f"{r['seconds']:>7.1f}")
    return "\n".join(lines)


def run(options: Options) -> None:
    from ..baselines import load_splits, registered_baselines
    from ..baselines.common import check_saved_runs
    from ..distributed import is_main
    from ..io import check_writable
    from ..models import model_entry
    from ..sparse.report import NOTE
    from ..train import resolve_device

    if not options.method:
        raise UserError(f"--method is required; choose one of {', '.join(METHODS)}")
    if not options.out:
        raise UserError("--out is required: the folder for the runs' checkpoints and results")
    if not 0 <= options.sparsity < 1:
        raise UserError(f"--sparsity must be in [0, 1), got {options.sparsity}")
    if options.train_images < 0:
        raise UserError(f"--train-images must be at least 1 (0: all images), got {options.train_images}")
    resolve_device(options.device)
    check_writable(options.out, folder=True)
    model_entry(options.model)
    config = train_config(options)
    settings = method_options(options)
    if options.train_images:  # an explicit count the data cannot meet is refused, never clamped
        from ..data import get_dataset
        available = len(get_dataset(options.data, "train-minus-val"))
        if options.train_images > available:
            raise UserError(f"--train-images {options.train_images} asks for more images than {options.data} has "
                            f"({available} for training); use --train-images {available} or fewer (0: all)")
    splits = load_splits(options.data, options.train_images or None)
    check_options(options, config, splits)  # every check before the runner writes its first file
    check_model_fits(options, splits)
    if options.resume:
        check_saved_runs(options.out)  # a damaged result.json / mask.pt there: refused before anything is written
    runner = registered_baselines[options.method][0]
    result = runner(options.method, options.model, splits, config, settings, options.out,
                    resume=options.resume, progress=options.progress)
    if not is_main():  # under torchrun every rank holds the same result; rank 0 prints it
        return
    rows = result["rounds"] + [{**c, "label": f"{c['control']} r{c['round']}"} for c in result["controls"]] \
        if options.method == "lth" else [result]
    print(format_table(rows))
    last = rows[-1]
    if "macs" in last:
        print(f"MACs/image: {last['macs']['nonzero']:,} non-zero of {last['macs']['dense']:,} dense")
    print(f"note: {NOTE}")
    print(f"results in {options.out}")
