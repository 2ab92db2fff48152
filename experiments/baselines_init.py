"""Pruning at initialisation on LeNet-300-100 / Fashion-MNIST at 90% and 98% sparsity: SNIP and GraSP
(T = 200, 10 images per class) against random pruning (same density in every layer) and random pruning
with the per-layer ratios SNIP or GraSP chose; then static sparse training with the recipe of
baselines_rigl.py (SGD Nesterov 0.9, lr 0.05 cosine, wd 1e-4, batch 128, 10 epochs), dense run shared.

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/baselines_init.py [--seeds 0,1] [--jobs 2] [--quick]

Writes experiments/results/baselines_init.json and .png; runs live in runs/baselines/sparse (resumable).
"""

from __future__ import annotations

from pathlib import Path

from baselines_common import (RESULTS, Clock, dense_run, load_results, mean_std, parse, pm, save_figure, sparse_runs,
                              summary_row)

from greedyprune.baselines.at_init import InitOptions, run_at_init
from greedyprune.io import save_json

# label -> (method, ratios_from)
METHODS = {"snip": ("snip", "snip"), "grasp": ("grasp", "grasp"), "random": ("random", "grasp"),
           "random-ratios-snip": ("random-ratios", "snip"), "random-ratios-grasp": ("random-ratios", "grasp")}
SPARSITIES = (0.9, 0.98)


def one_seed(seed: int, runs: Path, config, quick: bool, progress: bool) -> dict:
    """The dense run and every criterion x sparsity of one seed (resumable): ``{(label, sparsity): record}``."""
    splits, cfg, records = dense_run(seed, runs, config, quick, progress)
    for sparsity in SPARSITIES:
        folder = runs / f"init-s{sparsity}-seed{seed}"
        for label, (method, source) in METHODS.items():
            options = InitOptions(sparsity=sparsity, ratios_from=source)
            # random-ratios copies the per-layer counts of folder/<ratios_from>/mask.pt (same seed, sparsity)
            records[(label, sparsity)] = run_at_init(method, "lenet300-100", splits, cfg, options, folder / label,
                                                     progress=progress)
    return records


def main() -> None:
    args = parse(__doc__.split("\n")[0])
    name = "baselines_init_quick" if args.quick else "baselines_init"
    if args.replot:
        plot(load_results(name)["table"], RESULTS / f"{name}.png")
        return
    clock = Clock()
    records, config = sparse_runs(args, one_seed)

    table = []
    for label, sparsity in [("dense", 0.0)] + [(m, s) for s in SPARSITIES for m in METHODS]:
        recs = [records[(label, sparsity, s)] for s in args.seeds]
        table.append({**summary_row(label, sparsity, recs),
                      "layer_density": {k: mean_std([r["layer_density"][k] for r in recs])["mean"]
                                        for k in recs[0]["layer_density"]}})
    print(f"\n{'method':<20} {'sparsity':>8} {'test% final':>14} {'test% @ES':>14}  layer densities (fc1/fc2/fc3, %)")
    for row in table:
        dens = "/".join(f"{100 * v:.1f}" for v in row["layer_density"].values())
        print(f"{row['method']:<20} {100 * row['sparsity']:>7.0f}% {pm(row['test_acc']):>14} "
              f"{pm(row['test_acc_at_early_stop']):>14}  {dens}")
    seconds = clock.seconds()
    train_seconds = sum(r["seconds"] for r in records.values())
    print(f"wall time of this call {seconds / 60:.1f} min; training time of all runs {train_seconds / 60:.1f} min")
    save_json({"description": __doc__, "seeds": args.seeds, "config": vars(config), "options": vars(InitOptions()),
               "table": table,
               "per_run": {f"{m}-{s}-seed{seed}": {k: r[k] for k in ("test_acc", "test_acc_at_early_stop",
                                                                      "early_stop_step", "seconds", "nonzero",
                                                                      "layer_density")}
                           for (m, s, seed), r in records.items()},
               "jobs": args.jobs, "wall_seconds": seconds, "train_seconds": train_seconds}, RESULTS / f"{name}.json")
    plot(table, RESULTS / f"{name}.png")


def plot(table, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    dense = table[0]["test_acc"]
    ax.axhline(100 * dense["mean"], color="grey", ls="--", label="dense")
    labels = list(METHODS)
    width = 0.8 / len(labels)
    for i, sparsity in enumerate(SPARSITIES):
        for j, label in enumerate(labels):
            row = next(r for r in table if r["method"] == label and r["sparsity"] == sparsity)
            x = i + (j - (len(labels) - 1) / 2) * width
            ax.bar(x, 100 * row["test_acc"]["mean"], width=width * 0.9, color=f"C{j}", alpha=0.75,
                   label=label if i == 0 else None)
            ax.scatter([x] * row["test_acc"]["n"], [100 * v for v in row["test_acc"]["values"]], color="k", s=8,
                       zorder=3)
    ax.set_xticks(range(len(SPARSITIES)), [f"{100 * s:.0f}% sparse" for s in SPARSITIES])
    low = min(100 * min(r["test_acc"]["values"]) for r in table)
    ax.set_ylim(max(0, low - 3), 100 * dense["mean"] + 1.5)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Pruning at initialisation, LeNet-300-100 / Fashion-MNIST (10 epochs, seed points)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
