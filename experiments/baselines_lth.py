"""Lottery tickets on LeNet-300-100 / Fashion-MNIST under Ma et al.'s (2021) two-recipe protocol.

Each recipe runs the whole IMP experiment with its own ticket: dense, 15 rounds (p = 20% per hidden
layer, output layer not pruned as in open_lth's LeNet default, rewind to iteration 0, Gaussian Glorot
initialisation as in the paper), the ``reinit`` and ``random`` controls at Pm 21.3% (round 7) and 3.9%
(round 15), one-shot magnitude pruning at 3.9%. Recipes (``greedyprune.baselines.recipes``), batch 60,
validation every 250 iterations, ``--iterations`` T each (default 6,000; Frankle & Carbin's budget is
50,000 = ``--iterations 50000``, which did not fit the shared machine: see docs/baselines.md):

* ``adam``: Frankle & Carbin's small-lr recipe (Adam 1.2e-3, constant);
* ``sgd``: the well-tuned recipe (SGD Nesterov 0.9, cosine, wd 1e-4; lr chosen on the validation split
  from {0.0125, 0.025, 0.05, 0.1, 0.2} by a dense run, seed 0 -- done first when missing).

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/baselines_lth.py [--seeds 0,1] [--jobs 2] [--iterations T] [--rounds R]

``--rounds R`` (< 15) runs a prefix of the experiment: IMP rounds 0..R (the same masks and runs as the full
run's first rounds, so a later call with more rounds reuses them), the controls only at the judged rounds
<= R, and the verdict at 7 (Pm 21.3%) if R >= 7, else at R itself; the one-shot control needs R = 15.

Writes experiments/results/baselines_lth.json/.png and baselines_lth_sgd_tuning.json; runs live in
runs/baselines/lth2-T<T> (resumable: re-run the same command after a kill; more --seeds add seeds).
"""

from __future__ import annotations

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from baselines_common import RESULTS, RUNS, Clock, load_results, mean_std, parse, pm

from greedyprune.baselines import load_splits, run_lth
from greedyprune.baselines.common import new_model, run_training
from greedyprune.baselines.imp import LTHOptions, initialise
from greedyprune.baselines.protocol import groups_at_round, two_recipe_verdict
from greedyprune.baselines.recipes import RECIPES
from greedyprune.errors import UserError
from greedyprune.io import save_json

RECIPE = {"adam": "lth", "sgd": "lth-sgd"}
JUDGED = {"21%": 7, "3.9%": 15}
SGD_GRID = (0.0125, 0.025, 0.05, 0.1, 0.2)  # 0.0125 added after 0.025 won on the grid's edge
OPTIONS = dict(rounds=15, output_rate=0.0, init="glorot-normal")


ITERATIONS = {"value": 6000}  # set from --iterations in main (and passed to the workers)
FULL_ROUNDS = 15


def judged_rounds(rounds: int) -> dict[str, int]:
    """``{"Pm label": round}`` judged when IMP runs ``rounds`` rounds (JUDGED's rounds <= rounds, else the last)."""
    from greedyprune.baselines.imp import sparsity_schedule
    from greedyprune.models import build_model
    from greedyprune.sparse import weight_shapes
    schedule = sparsity_schedule(weight_shapes(build_model("lenet300-100")), LTHOptions(**OPTIONS), rounds)
    picked = {label: r for label, r in JUDGED.items() if r <= rounds} or {f"{100 * (1 - schedule[rounds]):.1f}%": rounds}
    return picked


def control_sparsities(rounds: int) -> str:
    from greedyprune.baselines.imp import sparsity_schedule
    from greedyprune.models import build_model
    from greedyprune.sparse import weight_shapes
    schedule = sparsity_schedule(weight_shapes(build_model("lenet300-100")), LTHOptions(**OPTIONS), rounds)
    return ",".join(f"{schedule[r]:.6f}" for r in sorted(judged_rounds(rounds).values()))


def config(recipe: str, quick: bool, lr: float | None = None, iterations: int | None = None):
    base = RECIPES[RECIPE[recipe]].replace(max_steps=iterations or ITERATIONS["value"])
    base = base.replace(max_steps=300, eval_every=50) if quick else base
    return base if lr is None else base.replace(lr=lr)


def _threads():
    import torch
    torch.set_num_threads(1)


def tune_one(lr: float, runs: Path, quick: bool, progress: bool, iterations: int) -> dict:
    """A dense run of the SGD recipe with ``lr`` (seed 0, theta_0 as IMP draws it); its validation numbers."""
    import torch
    _threads()
    splits = load_splits("fashion-mnist", 3000 if quick else None)
    torch.manual_seed(0)
    model = initialise(new_model("lenet300-100", splits), OPTIONS["init"])
    try:
        record = run_training(model, splits, config("sgd", quick, lr, iterations), runs / f"tune-sgd-lr{lr:g}",
                              progress=progress,
                              label=f"dense sgd lr {lr:g}")
    except UserError as err:  # the loss diverged: this learning rate is out
        return {"lr": lr, "val_acc": 0.0, "val_loss_min": None, "seconds": None, "diverged": str(err)}
    return {"lr": lr, "val_acc": record["val_acc"], "val_loss_min": record["val_loss_min"], "seconds": record["seconds"]}


def one_seed(recipe: str, seed: int, lr: float | None, runs: Path, quick: bool, progress: bool, iterations: int,
             rounds: int = FULL_ROUNDS) -> dict:
    """IMP + controls of one recipe and seed (resumable); the two summaries merged."""
    _threads()
    splits = load_splits("fashion-mnist", 3000 if quick else None)
    cfg, out = config(recipe, quick, lr, iterations).replace(seed=seed), runs / recipe / f"seed{seed}"
    options = {**OPTIONS, "rounds": rounds}
    first = run_lth("lenet300-100", splits, cfg, LTHOptions(**options, controls="reinit,random",
                                                             control_sparsities=control_sparsities(rounds)),
                    out, progress=progress)
    if rounds < FULL_ROUNDS:
        return {"rounds": first["rounds"], "controls": first["controls"], "T": first["T"]}
    second = run_lth("lenet300-100", splits, cfg, LTHOptions(**options, controls="oneshot",
                                                              control_sparsities="0.9612"), out, progress=progress)
    return {"rounds": first["rounds"], "controls": first["controls"] + second["controls"], "T": first["T"]}


def early_stop(records: list[dict]) -> dict:
    return {**mean_std([r["early_stop_step"] for r in records]),
            "censored": sum(bool(r["early_stop_censored"]) for r in records)}


def row(run: str, r: int, records: list[dict]) -> dict:
    return {"run": run, "round": r, "pm": 1 - records[0]["sparsity"], "macs": records[0]["macs"],
            "test_acc": mean_std([x["test_acc"] for x in records]),
            "test_acc_at_early_stop": mean_std([x["test_acc_at_early_stop"] for x in records]),
            "early_stop_step": early_stop(records), "trained_steps": max(x["trained_steps"] for x in records),
            "seconds": mean_std([x["seconds"] for x in records])}


def tables(per_recipe: dict, rounds: int = FULL_ROUNDS) -> tuple[dict, dict]:
    out, verdicts = {}, {}
    judged = judged_rounds(rounds)
    kinds = [(kind, r) for r in sorted(judged.values()) for kind in ("reinit", "random")]
    kinds += [("oneshot", FULL_ROUNDS)] if rounds >= FULL_ROUNDS else []
    for recipe, seeds in per_recipe.items():
        summaries = list(seeds.values())
        rows = [row("dense" if r == 0 else f"ticket r{r}", r, [s["rounds"][r] for s in summaries])
                for r in range(rounds + 1)]
        for kind, r in kinds:
            rows.append(row(f"{kind} r{r}", r, [c for s in summaries for c in s["controls"]
                                               if c["control"] == kind and c["round"] == r]))
        out[recipe] = rows
    if set(per_recipe) == set(RECIPE):
        for label, r in judged.items():
            for metric in ("test_acc", "test_acc_at_early_stop"):
                groups = {name: groups_at_round(list(s.values()), r, metric) for name, s in per_recipe.items()}
                v = two_recipe_verdict(groups, small_lr="adam", well_tuned="sgd")
                verdicts[f"Pm {label} ({metric})"] = {**v.to_dict(), "text": str(v)}
    return out, verdicts


def collect_finished(runs: Path, path: Path) -> None:
    """Train nothing: gather the ``result.json`` of every finished run under ``runs`` (for a call that did not finish)."""
    import json
    keys = ("label", "test_acc", "test_acc_at_early_stop", "early_stop_step", "early_stop_censored", "steps",
            "trained_steps", "seconds", "nonzero", "sparsity")
    found = {}
    for result in sorted(runs.glob("*/seed*/**/result.json")):
        record = json.loads(result.read_text())
        if record.get("steps") == record.get("config", {}).get("max_steps"):
            found[str(result.parent.relative_to(runs))] = {k: record.get(k) for k in keys}
    save_json({"runs": str(runs), "finished": found, "note": "runs finished so far; no verdict is computed from them"},
              path)
    for name, r in found.items():
        print(f"{name:<36} {r['label']:<12} test {100 * r['test_acc']:.2f}%  @ES {100 * r['test_acc_at_early_stop']:.2f}%  "
              f"{r['seconds'] / 60:.1f} min")


def main() -> None:
    args = parse(__doc__.split("\n")[0], iterations=6000, rounds=FULL_ROUNDS, collect=True)
    ITERATIONS["value"] = args.iterations
    if not 1 <= args.rounds <= FULL_ROUNDS:
        raise UserError(f"--rounds must be in 1..{FULL_ROUNDS}, got {args.rounds}")
    name = "baselines_lth_quick" if args.quick else "baselines_lth"
    name += "" if args.rounds == FULL_ROUNDS else f"_r{args.rounds}"
    if args.replot:
        saved = load_results(name)
        plot(saved["tables"], RESULTS / f"{name}.png")
        return
    clock = Clock()
    runs = Path(args.runs) if args.runs else RUNS / ("lth2-quick" if args.quick else f"lth2-T{args.iterations}")
    if args.collect:
        collect_finished(runs, RESULTS / f"{name}_finished.json")
        return
    tuning_path = RESULTS / ("baselines_lth_sgd_tuning_quick.json" if args.quick else "baselines_lth_sgd_tuning.json")
    common = dict(runs=runs, quick=args.quick, progress=args.progress, iterations=args.iterations)
    seed_job = functools.partial(one_seed, **common, rounds=args.rounds)
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        tuning = None if not tuning_path.exists() else load_results(tuning_path.stem)
        if tuning is not None and tuning.get("iterations") != (300 if args.quick else args.iterations):
            tuning = None  # tuned for another budget
        done = {g["lr"]: g for g in (tuning or {}).get("grid", [])}
        tune = [pool.submit(functools.partial(tune_one, **common), lr) for lr in SGD_GRID if lr not in done]
        adam = {s: pool.submit(seed_job, "adam", s, None) for s in args.seeds}
        if tune or tuning is None:
            grid = sorted([*done.values(), *(f.result() for f in tune)], key=lambda g: g["lr"])
            best = max(grid, key=lambda g: g["val_acc"])
            tuning = {"grid": grid, "chosen_lr": best["lr"], "criterion": "final validation accuracy, seed 0",
                      "iterations": 300 if args.quick else args.iterations}
            save_json(tuning, tuning_path)
            print(f"SGD lr grid: {[(g['lr'], round(100 * g['val_acc'], 2)) for g in grid]} -> {best['lr']}", flush=True)
        sgd = {s: pool.submit(seed_job, "sgd", s, tuning["chosen_lr"]) for s in args.seeds}
        per_recipe = {"adam": {s: f.result() for s, f in adam.items()}, "sgd": {s: f.result() for s, f in sgd.items()}}
    rows, verdicts = tables(per_recipe, args.rounds)
    for recipe, table in rows.items():
        print(f"\n[{recipe}] {'run':<12} {'Pm%':>6} {'test% final':>14} {'test% @ES':>14} {'early stop':>18}")
        for r in table:
            es = r["early_stop_step"]
            print(f"{'':>8}{r['run']:<12} {100 * r['pm']:>6.1f} {pm(r['test_acc']):>14} "
                  f"{pm(r['test_acc_at_early_stop']):>14} {pm(es, 1, 0):>12} ({es['censored']} cens.)")
    for key, v in verdicts.items():
        print(f"{key}: {v['text']}")
    train_seconds = sum(x["seconds"] for recs in per_recipe.values() for s in recs.values()
                        for x in s["rounds"] + s["controls"])
    seconds = clock.seconds()
    print(f"wall time of this call {seconds / 60:.1f} min; training time of all runs {train_seconds / 60:.1f} min")
    save_json({"description": __doc__, "seeds": args.seeds, "jobs": args.jobs, "options": OPTIONS,
               "rounds": args.rounds, "iterations": args.iterations, "judged_rounds": judged_rounds(args.rounds),
               "configs": {r: vars(config(r, args.quick, tuning["chosen_lr"] if r == "sgd" else None)) for r in RECIPE},
               "sgd_tuning": tuning, "tables": rows, "verdicts": verdicts, "per_recipe": per_recipe,
               "wall_seconds": seconds, "train_seconds": train_seconds}, RESULTS / f"{name}.json")
    plot(rows, RESULTS / f"{name}.png")


def plot(rows: dict, path: Path) -> None:
    """Left: test accuracy at early stop vs Pm; right: the early-stop iteration (both recipes, controls as markers)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from baselines_common import percent_axis, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for recipe, color in (("adam", "C0"), ("sgd", "C1")):
        table = rows.get(recipe)
        if not table:
            continue
        imp = [r for r in table if r["run"].startswith(("dense", "ticket"))]
        for ax, key, scale in ((axes[0], "test_acc_at_early_stop", 100), (axes[1], "early_stop_step", 1)):
            ax.plot([100 * r["pm"] for r in imp], [scale * r[key]["mean"] for r in imp], "-o", ms=3, color=color,
                    label=f"IMP ticket ({recipe})")
            for r, marker in ((r, {"reinit": "x", "random": "s", "oneshot": "^"}[r["run"].split()[0]])
                              for r in table if not r["run"].startswith(("dense", "ticket"))):
                ax.scatter([100 * r["pm"]] * len(r[key]["values"]), [scale * v for v in r[key]["values"]],
                           marker=marker, color=color, s=30, label=f"{r['run']} ({recipe})")
    for ax, label in ((axes[0], "test accuracy at early stop (%)"), (axes[1], "early-stop iteration")):
        percent_axis(ax)
        ax.set_xlabel("Pm: weights remaining (%)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle("LTH / IMP on LeNet-300-100, Fashion-MNIST: small-lr Adam vs tuned SGD (same iterations)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
