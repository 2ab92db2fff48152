"""RigL vs SET vs static sparse training on LeNet-300-100 / Fashion-MNIST at 90% and 98% sparsity (ERK),
with a dense reference trained by the same recipe (SGD Nesterov 0.9, lr 0.05 cosine, wd 1e-4, batch 128,
10 epochs; RigL/SET as google-research/rigl: updates at t = 0, dT, 2dT, ... with dT = 100 while t < T_end =
75% of training, alpha = 0.3 cosine-annealed (0.3 at t = 0), no optimizer step on update iterations).

    OMP_NUM_THREADS=1 nice .venv/bin/python experiments/baselines_rigl.py [--seeds 0,1] [--jobs 2] [--quick]

Writes experiments/results/baselines_rigl.json and .png; runs live in runs/baselines/sparse (resumable).
"""

from __future__ import annotations

from pathlib import Path

from baselines_common import RESULTS, Clock, dense_run, load_results, parse, pm, save_figure, sparse_runs, summary_row

from greedyprune.baselines.rigl import DynamicOptions, run_dynamic
from greedyprune.io import save_json

METHODS = ("rigl", "set", "static")
SPARSITIES = (0.9, 0.98)


def one_seed(seed: int, runs: Path, config, quick: bool, progress: bool) -> dict:
    """The dense run and every method x sparsity of one seed (resumable): ``{(method, sparsity): record}``."""
    splits, cfg, records = dense_run(seed, runs, config, quick, progress)
    for sparsity in SPARSITIES:
        for method in METHODS:
            options = DynamicOptions(sparsity=sparsity, distribution="erk")
            records[(method, sparsity)] = run_dynamic(method, "lenet300-100", splits, cfg, options,
                                                      runs / f"{method}-erk-s{sparsity}-seed{seed}", progress=progress)
    return records


def main() -> None:
    args = parse(__doc__.split("\n")[0])
    name = "baselines_rigl_quick" if args.quick else "baselines_rigl"
    if args.replot:
        plot(load_results(name)["table"], RESULTS / f"{name}.png")
        return
    clock = Clock()
    records, config = sparse_runs(args, one_seed)

    table = []
    for method, sparsity in [("dense", 0.0)] + [(m, s) for s in SPARSITIES for m in METHODS]:
        recs = [records[(method, sparsity, s)] for s in args.seeds]
        table.append({**summary_row(method, sparsity, recs), "layer_density": recs[0]["layer_density"],
                      "mask_updates": len(recs[0]["updates"]),
                      "optimizer_steps": recs[0]["optimizer_steps"],
                      "weights_swapped_total": sum(u[1] for u in recs[0]["updates"])})
    print(f"\n{'method':<8} {'sparsity':>8} {'non-zero':>9} {'test% final':>14} {'test% @ES':>14} {'updates':>8} {'s/run':>7}")
    for row in table:
        print(f"{row['method']:<8} {100 * row['sparsity']:>7.0f}% {row['nonzero']:>9} {pm(row['test_acc']):>14} "
              f"{pm(row['test_acc_at_early_stop']):>14} {row['mask_updates']:>8} {row['train_seconds']['mean']:>7.0f}")
    seconds = clock.seconds()
    train_seconds = sum(r["seconds"] for r in records.values())
    print(f"wall time of this call {seconds / 60:.1f} min; training time of all runs {train_seconds / 60:.1f} min")
    save_json({"description": __doc__, "seeds": args.seeds, "config": vars(config),
               "options": vars(DynamicOptions()), "table": table,
               "per_run": {f"{m}-{s}-seed{seed}": {k: r[k] for k in ("test_acc", "test_acc_at_early_stop",
                                                                      "early_stop_step", "seconds", "nonzero", "updates")}
                           for (m, s, seed), r in records.items()},
               "jobs": args.jobs, "wall_seconds": seconds, "train_seconds": train_seconds}, RESULTS / f"{name}.json")
    plot(table, RESULTS / f"{name}.png")


def plot(table, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    dense = table[0]["test_acc"]
    ax.axhspan(100 * (dense["mean"] - (dense["std"] or 0)), 100 * (dense["mean"] + (dense["std"] or 0)),
               color="grey", alpha=0.2)
    ax.axhline(100 * dense["mean"], color="grey", ls="--", label="dense")
    colors = {"rigl": "C0", "set": "C1", "static": "C2"}
    for i, sparsity in enumerate(SPARSITIES):
        for j, method in enumerate(METHODS):
            row = next(r for r in table if r["method"] == method and r["sparsity"] == sparsity)
            x = i + (j - 1) * 0.25
            values = [100 * v for v in row["test_acc"]["values"]]
            ax.bar(x, 100 * row["test_acc"]["mean"], width=0.22, color=colors[method], alpha=0.7,
                   label=method if i == 0 else None)
            ax.scatter([x] * len(values), values, color="k", s=10, zorder=3)
    ax.set_xticks(range(len(SPARSITIES)), [f"{100 * s:.0f}% sparse (ERK)" for s in SPARSITIES])
    low = min(100 * min(r["test_acc"]["values"]) for r in table)
    ax.set_ylim(low - 2, 100 * dense["mean"] + 1.5)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title("Sparse training of LeNet-300-100 on Fashion-MNIST (10 epochs, seed points)")
    save_figure(fig, path)


if __name__ == "__main__":
    main()
