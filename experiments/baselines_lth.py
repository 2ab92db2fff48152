"""Lottery tickets on LeNet-300-100 / Fashion-MNIST: IMP (p = 20%, output 10%, rewind to iteration 0)
for 15 rounds, ticket vs random re-initialisation at Pm = 21.1% (round 7) and 3.6% (round 15), random
pruning with the same per-layer ratios and one-shot magnitude pruning at 3.6%, and a well-tuned dense
SGD run with the same example budget for the Ma et al. verdict.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/baselines_lth.py [--seeds 0,1] [--jobs 2] [--quick]

Every IMP round (and its controls) sees its own data order; validation every 125 iterations. An
early stop at the last validation point is censored: the true early-stop iteration is >= T, printed
">=T" and counted in the JSON (``censored``), and the early-stop ratios are then lower bounds.
Writes experiments/results/baselines_lth.json and .png; runs live in runs/baselines/lth (resumable:
re-run the same command after a kill).
"""

from __future__ import annotations

import functools
from pathlib import Path

from baselines_common import RESULTS, RUNS, Clock, load_results, map_seeds, mean_std, parse, percent_axis, pm, save_figure

from greedyprune.baselines import load_splits, run_lth, winning_ticket_verdict
from greedyprune.baselines.lth import LTHOptions
from greedyprune.baselines.recipes import RECIPES
from greedyprune.baselines.rigl import DynamicOptions, run_dynamic
from greedyprune.io import save_json

PM = {"21%": (0.789, 7), "3.6%": (0.964, 15)}
KEYS = ("test_acc", "test_acc_at_early_stop", "early_stop_step", "early_stop_censored", "steps", "seconds")


def configs(quick: bool):
    if quick:
        return (RECIPES["lth"].replace(max_steps=300, eval_every=50),
                RECIPES["dense-sgd"].replace(max_steps=300, eval_every=50))
    return RECIPES["lth"], RECIPES["dense-sgd"]


def one_seed(seed: int, runs: Path, quick: bool, progress: bool) -> dict:
    """Every run of one seed (resumable); the records the tables need."""
    config, dense_sgd = configs(quick)
    splits = load_splits("fashion-mnist", 3000 if quick else None)
    out, cfg = runs / f"seed{seed}", config.replace(seed=seed)
    first = run_lth("lenet300-100", splits, cfg, LTHOptions(rounds=15, controls="reinit",
                                                            control_sparsities="0.789,0.964"), out, progress=progress)
    second = run_lth("lenet300-100", splits, cfg, LTHOptions(rounds=15, controls="random,oneshot",
                                                             control_sparsities="0.964"), out, progress=progress)
    reference = run_dynamic("dense", "lenet300-100", splits, dense_sgd.replace(seed=seed), DynamicOptions(),
                            runs / f"dense-sgd-seed{seed}", progress=progress)
    return {"rounds": first["rounds"], "controls": first["controls"] + second["controls"],
            "dense_sgd": {k: reference[k] for k in KEYS}}


def early_stop(records: list[dict]) -> dict:
    """Mean/std of the early-stop iteration over seeds plus how many are censored (minimum at the last evaluation)."""
    return {**mean_std([r["early_stop_step"] for r in records]),
            "censored": sum(bool(r["early_stop_censored"]) for r in records)}


def es_text(stats: dict) -> str:
    text = pm(stats, 1, 0)
    return text + (f" ({stats['censored']}/{stats['n']} >=T)" if stats["censored"] else "")


def main() -> None:
    args = parse(__doc__.split("\n")[0])
    name = "baselines_lth_quick" if args.quick else "baselines_lth"
    if args.replot:
        saved = load_results(name)
        plot(saved["table"], {int(k): v for k, v in saved["per_seed"].items()}, saved["seeds"], RESULTS / f"{name}.png")
        return
    clock = Clock()
    runs = RUNS / ("lth-quick" if args.quick else "lth") if args.runs is None else Path(args.runs)
    config, dense_sgd = configs(args.quick)
    per_seed = map_seeds(functools.partial(one_seed, runs=runs, quick=args.quick, progress=args.progress),
                         args.seeds, args.jobs)

    def round_records(r):
        return [per_seed[s]["rounds"][r] for s in args.seeds]

    def control_records(name, r):
        return [c for s in args.seeds for c in per_seed[s]["controls"] if c["control"] == name and c["round"] == r]

    def row(run, r, pm_, records):
        return {"run": run, "round": r, "pm": pm_, "test_acc": mean_std([x["test_acc"] for x in records]),
                "test_acc_at_early_stop": mean_std([x["test_acc_at_early_stop"] for x in records]),
                "early_stop_step": early_stop(records), "steps": max(x["steps"] for x in records),
                "nonzero": records[0].get("nonzero"), "macs": records[0].get("macs")}

    table = [row("dense" if r == 0 else f"ticket r{r}", r, 1 - round_records(r)[0]["sparsity"], round_records(r))
             for r in range(16)]
    for name_, rr in [("reinit", 7), ("reinit", 15), ("random", 15), ("oneshot", 15)]:
        table.append(row(f"{name_} r{rr}", rr, table[rr]["pm"], control_records(name_, rr)))
    sgd_records = [per_seed[s]["dense_sgd"] for s in args.seeds]
    table.append(row("dense SGD-cosine", 0, 1.0, sgd_records))
    table[-1]["nonzero"], table[-1]["macs"] = table[0]["nonzero"], table[0]["macs"]

    verdicts = {}
    for label, (_, r) in PM.items():
        tickets, reinits = round_records(r), control_records("reinit", r)
        for metric in ("test_acc", "test_acc_at_early_stop"):
            sgd = mean_std([x[metric] for x in sgd_records])["mean"]
            # the budgets are the steps the runs recorded, not the configured ones
            v = winning_ticket_verdict([x[metric] for x in round_records(0)], [x[metric] for x in tickets],
                                       [x[metric] for x in reinits],
                                       dense_steps=min(x["steps"] for x in round_records(0) + sgd_records),
                                       ticket_steps=max(x["steps"] for x in tickets + reinits), tolerance=0.005,
                                       well_trained_reference=sgd)
            verdicts[f"Pm {label} ({metric})"] = {**v.to_dict(), "text": str(v)}
        es_t, es_r = early_stop(tickets), early_stop(reinits)
        # censored reinit stops (>= T) make the ratio a lower bound; censored ticket stops leave it undetermined
        kind = "undetermined" if es_t["censored"] else "lower bound" if es_r["censored"] else "measured"
        verdicts[f"Pm {label} early-stop ratio reinit/ticket"] = {
            "ratio": es_r["mean"] / es_t["mean"] if es_t["mean"] else None, "kind": kind,
            "ticket": es_t, "reinit": es_r}

    print(f"\n{'run':<18} {'Pm%':>6} {'MACs':>8} {'test% final':>14} {'test% @ES':>14} {'early-stop it.':>24}")
    for r in table:
        print(f"{r['run']:<18} {100 * r['pm']:>6.1f} {r['macs']['nonzero']:>8} {pm(r['test_acc']):>14} "
              f"{pm(r['test_acc_at_early_stop']):>14} {es_text(r['early_stop_step']):>24}")
    for key, v in verdicts.items():
        if "ratio" in v:
            print(f"{key}: {v['ratio']:.2f} ({v['kind']}; censored ticket/reinit stops: "
                  f"{v['ticket']['censored']}/{v['reinit']['censored']})")
        else:
            print(f"{key}: {v['text']}")
    seconds = clock.seconds()
    # training time per seed (kept in the run records, so a reload of finished runs reports it too)
    per_seed_seconds = {s: sum(r["seconds"] for r in per_seed[s]["rounds"] + per_seed[s]["controls"])
                        + per_seed[s]["dense_sgd"]["seconds"] for s in args.seeds}
    train_seconds = sum(per_seed_seconds.values())
    print(f"wall time of this call {seconds / 60:.1f} min; training time of all runs {train_seconds / 60:.1f} min "
          f"(per seed: {', '.join(f'{v / 60:.1f}' for v in per_seed_seconds.values())} min)")
    save_json({"description": __doc__, "seeds": args.seeds, "jobs": args.jobs, "config": vars(config),
               "dense_sgd_config": vars(dense_sgd), "table": table, "verdicts": verdicts, "per_seed": per_seed,
               "wall_seconds": seconds, "train_seconds": train_seconds, "train_seconds_per_seed": per_seed_seconds},
              RESULTS / f"{name}.json")
    plot(table, per_seed, args.seeds, RESULTS / f"{name}.png")


def plot(table, per_seed, seeds, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    tickets = [row for row in table if row["run"].startswith(("dense", "ticket")) and row["run"] != "dense SGD-cosine"]
    x = [100 * row["pm"] for row in tickets]
    for ax, key, ylabel in [(axes[0], "test_acc_at_early_stop", "test accuracy at early stop (%)"),
                            (axes[1], "early_stop_step", "early-stop iteration")]:
        scale = 100 if key != "early_stop_step" else 1
        for seed in seeds:
            ax.plot(x, [scale * per_seed[seed]["rounds"][r["round"]][key] for r in tickets], "-o", ms=3, alpha=0.6,
                    label=f"IMP ticket, seed {seed}")
        style = {"reinit": ("x", "k"), "random": ("s", "C2"), "oneshot": ("^", "C3")}
        for row in table:
            kind = row["run"].split()[0]
            if kind in style:
                marker, color = style[kind]
                ax.scatter([100 * row["pm"]] * len(row[key]["values"]), [scale * v for v in row[key]["values"]],
                           marker=marker, color=color, s=40, label=f"{kind} (Pm {100 * row['pm']:.1f}%)", zorder=3)
        if key != "early_stop_step":
            sgd = table[-1][key]["mean"]
            ax.axhline(100 * sgd, color="grey", ls="--", lw=1, label="dense SGD-cosine (same budget)")
        else:
            ax.axhline(table[0]["steps"], color="grey", ls=":", lw=1)
            ax.text(100, table[0]["steps"], " T: a stop here is censored (>= T)", fontsize=7, va="bottom")
        percent_axis(ax)
        ax.set_xlabel("Pm: weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("LTH / IMP on LeNet-300-100, Fashion-MNIST (Adam 1.2e-3, batch 60, 6k iterations; "
                 "an early stop at 6k is censored)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
