"""Lottery tickets on LeNet-300-100 / Fashion-MNIST: IMP (p = 20%, output 10%, rewind to iteration 0)
for 15 rounds, ticket vs random re-initialisation at Pm = 21.1% (round 7) and 3.6% (round 15), random
pruning with the same per-layer ratios and one-shot magnitude pruning at 3.6%, and a well-tuned dense
SGD run with the same example budget for the Ma et al. verdict.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/baselines_lth.py [--seeds 0,1] [--quick]

Writes experiments/results/baselines_lth.json and .png; runs live in runs/baselines/lth (resumable:
re-run the same command after a kill).
"""

from __future__ import annotations

from baselines_common import RESULTS, RUNS, Clock, load_results, mean_std, parse, percent_axis, pm, save_figure

from greedyprune.baselines import load_splits, run_lth, winning_ticket_verdict
from greedyprune.baselines.lth import LTHOptions
from greedyprune.baselines.recipes import RECIPES
from greedyprune.baselines.rigl import DynamicOptions, run_dynamic
from greedyprune.io import save_json

PM = {"21%": (0.789, 7), "3.6%": (0.964, 15)}


def main() -> None:
    args = parse(__doc__.split("\n")[0])
    name = "baselines_lth_quick" if args.quick else "baselines_lth"
    if args.replot:
        saved = load_results(name)
        plot(saved["table"], {int(k): v for k, v in saved["per_seed"].items()}, saved["seeds"], RESULTS / f"{name}.png")
        return
    clock = Clock()
    runs = RUNS / ("lth-quick" if args.quick else "lth") if args.runs is None else __import__("pathlib").Path(args.runs)
    splits = load_splits("fashion-mnist", 3000 if args.quick else None)
    config = RECIPES["lth"].replace(max_steps=300, eval_every=50) if args.quick else RECIPES["lth"]
    dense_sgd = RECIPES["dense-sgd"].replace(max_steps=300, eval_every=50) if args.quick else RECIPES["dense-sgd"]
    per_seed = {}
    for seed in args.seeds:
        out = runs / f"seed{seed}"
        cfg = config.replace(seed=seed)
        first = run_lth("lenet300-100", splits, cfg, LTHOptions(rounds=15, controls="reinit",
                                                                control_sparsities="0.789,0.964"),
                        out, progress=args.progress)
        second = run_lth("lenet300-100", splits, cfg, LTHOptions(rounds=15, controls="random,oneshot",
                                                                 control_sparsities="0.964"),
                         out, progress=args.progress)
        reference = run_dynamic("dense", "lenet300-100", splits, dense_sgd.replace(seed=seed), DynamicOptions(),
                                runs / f"dense-sgd-seed{seed}", progress=args.progress)
        per_seed[seed] = {"rounds": first["rounds"], "controls": first["controls"] + second["controls"],
                          "dense_sgd": {k: reference[k] for k in ("test_acc", "test_acc_at_early_stop",
                                                                  "early_stop_step", "steps", "seconds")}}

    def rounds(r, key):
        return mean_std([per_seed[s]["rounds"][r][key] for s in args.seeds])

    def control(name, r, key):
        return mean_std([c[key] for s in args.seeds for c in per_seed[s]["controls"]
                         if c["control"] == name and c["round"] == r])

    table = []
    for r in range(16):
        table.append({"run": "dense" if r == 0 else f"ticket r{r}", "round": r,
                      "pm": 1 - per_seed[args.seeds[0]]["rounds"][r]["sparsity"],
                      "test_acc": rounds(r, "test_acc"), "test_acc_at_early_stop": rounds(r, "test_acc_at_early_stop"),
                      "early_stop_step": rounds(r, "early_stop_step")})
    for name, rr in [("reinit", 7), ("reinit", 15), ("random", 15), ("oneshot", 15)]:
        table.append({"run": f"{name} r{rr}", "round": rr, "pm": table[rr]["pm"], "test_acc": control(name, rr, "test_acc"),
                      "test_acc_at_early_stop": control(name, rr, "test_acc_at_early_stop"),
                      "early_stop_step": control(name, rr, "early_stop_step")})
    sgd = {k: mean_std([per_seed[s]["dense_sgd"][k] for s in args.seeds]) for k in ("test_acc", "test_acc_at_early_stop")}
    table.append({"run": "dense SGD-cosine", "round": 0, "pm": 1.0, "test_acc": sgd["test_acc"],
                  "test_acc_at_early_stop": sgd["test_acc_at_early_stop"],
                  "early_stop_step": mean_std([per_seed[s]["dense_sgd"]["early_stop_step"] for s in args.seeds])})

    verdicts = {}
    for label, (_, r) in PM.items():
        for metric in ("test_acc", "test_acc_at_early_stop"):
            v = winning_ticket_verdict(rounds(0, metric)["values"], rounds(r, metric)["values"],
                                       control("reinit", r, metric)["values"], dense_steps=config.max_steps,
                                       ticket_steps=config.max_steps, tolerance=0.005,
                                       well_trained_reference=sgd[metric]["mean"])
            verdicts[f"Pm {label} ({metric})"] = v.to_dict()
        es_t, es_r = rounds(r, "early_stop_step")["mean"], control("reinit", r, "early_stop_step")["mean"]
        verdicts[f"Pm {label} early-stop ratio reinit/ticket"] = es_r / es_t if es_t else None

    print(f"\n{'run':<18} {'Pm%':>6} {'test% final':>14} {'test% @ES':>14} {'early-stop it.':>16}")
    for row in table:
        print(f"{row['run']:<18} {100 * row['pm']:>6.1f} {pm(row['test_acc']):>14} {pm(row['test_acc_at_early_stop']):>14} "
              f"{pm(row['early_stop_step'], 1, 0):>16}")
    for key, v in verdicts.items():
        print(f"{key}: " + (f"{v:.2f}" if isinstance(v, float) else ("WINNING TICKET" if v and v["winning_ticket"]
                                                                     else "not a winning ticket") +
                            ("" if not isinstance(v, dict) else " -- " + "; ".join(v["reasons"]))))
    seconds = clock.seconds()
    train_seconds = sum(r["seconds"] for s in args.seeds for r in per_seed[s]["rounds"] + per_seed[s]["controls"]) + \
        sum(per_seed[s]["dense_sgd"]["seconds"] for s in args.seeds)
    print(f"wall time of this call {seconds / 60:.1f} min; training time of all runs {train_seconds / 60:.1f} min")
    save_json({"description": __doc__, "seeds": args.seeds, "config": vars(config), "dense_sgd_config": vars(dense_sgd),
               "table": table, "verdicts": verdicts, "per_seed": per_seed, "wall_seconds": seconds,
               "train_seconds": train_seconds},
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
        percent_axis(ax)
        ax.set_xlabel("Pm: weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("LTH / IMP on LeNet-300-100, Fashion-MNIST (Adam 1.2e-3, batch 60, 6k iterations)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
