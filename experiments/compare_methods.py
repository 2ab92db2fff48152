"""Experiment 1 (issues 3 and 5): greedy selection vs magnitude vs random at matched FLOPs.

For each model trained on Fashion-MNIST (the trained-model cache) and each FLOPs target, the
``reoptimized`` run allocates the widths; every other method prunes to exactly those widths (the
pipeline keeps exactly ``width`` distinct channels for every method). Top-1 on the test set without
fine-tuning, after re-estimating BatchNorm statistics on the calibration images (``recalibrate_bn``),
and after a short fine-tune (from the pruned model as it is), per-group reconstruction errors,
params/FLOPs and times go to ``experiments/results/compare_<model>.json`` (resumable: finished runs
are skipped; ``wall_seconds`` sums the runs' times) and a plot ``compare_<model>.png``. Every method
runs ``--seeds`` seeds: ``random`` draws its subset with the seed, every method fine-tunes with it.

A method name ending in ``+refit`` (e.g. ``reoptimized+refit``) is that method followed by the global
refit (``refit="global"``, ``--refit-iters``); its feature errors and refit time are recorded. A name
without it runs with ``refit=None`` (not the library's per-method default), as the recorded tables did.
``--eval-every K`` logs top-1 on a fixed test subset (``--curve-images``) every K fine-tuning steps
(``curve``) and records the steps each run needs to come within one point of the dense model on that
subset (``steps_within_1pt``); fine-tunes checkpoint under ``runs/compare/`` and resume after a kill.

    python experiments/compare_methods.py --model resnet18-fmnist --flops 0.7,0.5,0.3,0.15
    python experiments/compare_methods.py --model resnet18-fmnist --flops 0.5,0.3 --seeds 1 --finetune-images 0 \
        --methods reoptimized,reoptimized+streams --round-to 8 --out experiments/results/round_to_8.json
    python experiments/compare_methods.py --model resnet18-fmnist --flops 0.5,0.3 --seeds 2 \
        --methods reoptimized+refit,reoptimized,magnitude --finetune-images 60000 --eval-every 200
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch
from compare_finetune import (
    curve_set_of,
    fine_tune,
    plot_curves,
    run_dir_of,
    steps_within,
)

from greedyprune.data import calibration_batches, get_dataset, subset
from greedyprune.errors import UserError
from greedyprune.io import atomic_write, save_json
from greedyprune.models import trained_model
from greedyprune.paths import results_dir
from greedyprune.prune import Pruner
from greedyprune.train import evaluate, recalibrate_batchnorm_on

COLORS = {"reoptimized": "tab:blue", "reoptimized+refit": "tab:purple", "uniform": "tab:orange",
          "uniform-noreplace": "tab:brown", "magnitude": "tab:green", "magnitude-norefit": "tab:olive",
          "random": "tab:red", "magnitude+refit": "tab:cyan", "reoptimized+streams": "navy",
          "reoptimized+streams+refit": "indigo", "magnitude+streams": "darkgreen"}


def method_options(method: str, refit_iters: int) -> tuple[str, dict]:
    """``"reoptimized+streams+refit"`` -> ``("reoptimized", {"refit": "global", "refit_iters": N, "streams": True})``.

    ``+streams`` also prunes residual streams / block outputs; ``+lat`` allocates the widths by the measured
    latency they save (``allocation="latency"``; the FLOPs target stays); ``+bf16`` forms the statistics' products
    from bfloat16-rounded operands (``precision="bfloat16"``); ``+refit`` adds the global refit, and
    without it there is none (``refit=None``, whatever the method's default), so a name means one thing.
    """
    base, *suffixes = method.split("+")
    extra: dict = {"refit": None}
    for suffix in suffixes:
        if suffix == "refit":
            extra.update(refit="global", refit_iters=refit_iters)
        elif suffix == "streams":
            extra.update(streams=True)
        elif suffix == "lat":
            extra.update(allocation="latency")
        elif suffix == "bf16":
            extra.update(precision="bfloat16")
        else:
            raise SystemExit(f"unknown method suffix +{suffix} in {method!r}: use +streams, +lat, +bf16 and/or +refit")
    return base, extra


def allocator(method: str) -> str:
    """The run whose widths ``method`` is matched to: ``reoptimized``, with ``+streams`` when it prunes streams and
    ``+lat`` when its widths are allocated by the measured latency they save (``allocation="latency"``), with
    ``+bf16`` when its statistics are (its own allocation: whether the rounding changes the widths shows)."""
    suffixes = method.split("+")[1:]
    return "reoptimized" + "".join(f"+{s}" for s in ("streams", "lat", "bf16") if s in suffixes)


def plot(results: dict, path: Path) -> None:
    """Top-1 vs FLOPs kept per method: as pruned, after BN recalibration, after fine-tuning (seeds averaged)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("top1_pruned", "no fine-tuning"), ("top1_recalibrated", "BN statistics re-estimated"),
              ("top1_finetuned", "after fine-tuning")]
    panels = [(k, t) for k, t in panels if any(r.get(k) is not None for r in results["runs"].values())]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (key, title) in zip(axes, panels):
        by_method: dict[str, dict[float, list[tuple[float, float]]]] = {}
        for run in results["runs"].values():
            if run.get(key) is not None:
                point = (run["flops_after"] / run["flops_before"], run[key])
                by_method.setdefault(run["method"], {}).setdefault(run["flops_target"], []).append(point)
        for method, targets in by_method.items():
            points = sorted((sum(x for x, _ in ps) / len(ps), sum(y for _, y in ps) / len(ps)) for ps in targets.values())
            ax.plot([100 * x for x, _ in points], [100 * y for _, y in points], "o-", color=COLORS.get(method),
                    label=method)
        ax.axhline(100 * results["dense_top1"], color="gray", ls=":", label="dense")
        ax.set_xlabel("FLOPs kept (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 on Fashion-MNIST test (%)")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{results['model']}: methods at matched widths")
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18-fmnist")
    parser.add_argument("--flops", default="0.7,0.5,0.3,0.15")
    parser.add_argument("--methods", default="reoptimized,uniform,magnitude,random")
    parser.add_argument("--seeds", type=int, default=2,
                        help="seeds: of the selection (random) and of the fine-tuning (every method)")
    parser.add_argument("--calib", type=int, default=512)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--finetune-images", type=int, default=5000)
    parser.add_argument("--finetune-epochs", type=float, default=1.0)
    parser.add_argument("--refit-iters", type=int, default=40, help="L-BFGS iterations of the +refit methods")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="log top-1 on --curve-images test images every this many fine-tuning steps (0: off)")
    parser.add_argument("--curve-images", type=int, default=2000, help="size of the fixed test subset of the curves")
    parser.add_argument("--runs", default=None, help="folder of the resumable fine-tuning runs (default: runs/compare)")
    parser.add_argument("--round-to", type=int, default=1,
                        help="kept widths multiples of this (greedyprune round_to; 1: any width)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the JSON")
    args = parser.parse_args()
    if args.replot:
        out = Path(args.out or results_dir() / f"compare_{args.model}.json")
        results = json.loads(out.read_text())
        plot(results, out.with_suffix(".png"))
        plot_curves(results, out.with_name(out.stem + "_curves.png"), COLORS)
        return

    out = Path(args.out or results_dir() / f"compare_{args.model}.json")
    results = json.loads(out.read_text()) if out.exists() else {"model": args.model, "runs": {}}
    model, _ = trained_model(args.model)
    test = subset(get_dataset("fashion-mnist", "test"), args.test_images, seed=0)
    batches = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    if "dense_top1" not in results:
        results["dense_top1"] = evaluate(model, test)["top1"]
    if results.get("round_to", 1) != args.round_to and results["runs"]:
        raise SystemExit(f"{out} holds runs with --round-to {results.get('round_to', 1)}; give another --out")
    results["round_to"] = args.round_to
    results.update(calibration_images=args.calib, test_images=len(test), finetune_images=args.finetune_images,
                   finetune_epochs=args.finetune_epochs)
    curve_set = curve_set_of(args.curve_images) if args.eval_every else None
    if curve_set is not None and "curve_dense_top1" not in results:
        results.update(curve_images=len(curve_set), curve_dense_top1=evaluate(model, curve_set)["top1"])
    methods = args.methods.split(",")
    session = time.perf_counter()
    for flops in [float(f) for f in args.flops.split(",")]:
        widths: dict[str, dict] = {}  # allocating method -> the widths every method of its kind prunes to
        allocators = list(dict.fromkeys(allocator(m) for m in methods))
        unreachable = {a: why for a in allocators  # allocating method -> why this target is out of its reach
                       if (why := results.get("unreachable", {}).get(f"{flops}/{a}")) is not None}
        for method in allocators + [m for m in methods if m not in allocators]:
            pruned_once = None  # a deterministic method is pruned once; its seeds are fine-tuning seeds
            for seed in range(args.seeds):
                key = f"{flops}/{method}/{seed}"
                done = results["runs"].get(key)
                if done is not None:
                    widths.setdefault(allocator(method), done.get("widths"))
                    continue
                start = time.perf_counter()
                if allocator(method) in unreachable:  # its widths could not be allocated at this target
                    continue
                matched = widths.get(allocator(method))
                budget = {"flops": flops} if matched is None else {"widths": matched}
                if method == "random" or pruned_once is None:
                    base, extra = method_options(method, args.refit_iters)
                    cpu = time.process_time()
                    try:
                        pruned, report = Pruner(model, batches, base, seed=seed, progress=False, **budget,
                                                round_to=args.round_to, **extra).run()
                    except UserError as err:  # e.g. a target below what one channel per group costs
                        if matched is not None:
                            raise
                        unreachable[allocator(method)] = str(err)
                        results.setdefault("unreachable", {})[f"{flops}/{method}"] = str(err)
                        save_json(results, out)
                        print(f"{key}: {err}", flush=True)
                        continue
                    prune_cpu = time.process_time() - cpu
                    top1_pruned = evaluate(pruned, test)["top1"]
                    recalibrated = evaluate(recalibrate_batchnorm_on(copy.deepcopy(pruned), batches), test)["top1"]
                    if method != "random":
                        pruned_once = (pruned, report, top1_pruned, recalibrated, prune_cpu)
                else:
                    pruned, report, top1_pruned, recalibrated, prune_cpu = pruned_once
                widths.setdefault(allocator(method), report.widths())
                run = {"method": method, "seed": seed, "flops_target": flops, "widths": report.widths(),
                       "flops_before": report.flops_before, "flops_after": report.flops_after,
                       "params_before": report.params_before, "params_after": report.params_after,
                       "group_errors": {g.name: g.error for g in report.groups}, "prune_seconds": report.seconds,
                       "prune_cpu_seconds": prune_cpu,
                       "top1_pruned": top1_pruned, "top1_recalibrated": recalibrated, "top1_finetuned": None,
                       "refit": report.refit, "latency_model_kept": report.options.get("latency_model_kept")}
                if args.finetune_images and method in methods:
                    tuned = copy.deepcopy(pruned)
                    tuned_at = time.perf_counter()
                    run["curve"] = fine_tune(tuned, args.finetune_images, args.finetune_epochs, seed,
                                             run_dir=run_dir_of(out, key, args.runs), eval_every=args.eval_every,
                                             curve_set=curve_set)
                    run["finetune_seconds"] = time.perf_counter() - tuned_at  # this session's part only
                    run["top1_finetuned"] = evaluate(tuned, test)["top1"]
                    if curve_set is not None:
                        run["steps_within_1pt"] = steps_within(run["curve"], results["curve_dense_top1"])
                run["seconds"] = time.perf_counter() - start
                if method in methods:
                    results["runs"][key] = run
                    results["wall_seconds"] = results.get("wall_seconds", 0.0) + run["seconds"]
                    save_json(results, out)
                refit = (f", refit feature error {run['refit']['error_before']:.3f} -> {run['refit']['error_after']:.3f} "
                         f"in {run['refit']['seconds']:.0f} s" if run["refit"] else "")
                print(f"{key}: FLOPs {run['flops_after'] / run['flops_before']:.1%}, top-1 {100 * run['top1_pruned']:.2f}"
                      f" -> fine-tuned {100 * (run['top1_finetuned'] or 0):.2f} ({run['seconds']:.0f} s){refit}", flush=True)
    print(f"this invocation: {time.perf_counter() - session:.0f} s; all runs: {results.get('wall_seconds', 0):.0f} s")
    plot(results, out.with_suffix(".png"))
    plot_curves(results, out.with_name(out.stem + "_curves.png"), COLORS)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))  # 2 unless the caller asks for fewer
    main()
