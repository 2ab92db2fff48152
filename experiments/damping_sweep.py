"""How much ridge (``damping``) the least-squares refit wants: test top-1 after pruning, no fine-tuning.

Too little damping lets the refit fit the calibration set's noise (large, cancelling coefficients);
too much shrinks the reconstruction. Prints and writes ``experiments/results/damping_<model>.json``.

    python experiments/damping_sweep.py --model small-cnn --flops 0.3
"""

from __future__ import annotations

import argparse

import torch

from greedyprune.data import calibration_batches, get_dataset, subset
from greedyprune.io import save_json
from greedyprune.models import trained_model
from greedyprune.paths import results_dir
from greedyprune.prune import Pruner
from greedyprune.train import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small-cnn")
    parser.add_argument("--flops", type=float, default=0.3)
    parser.add_argument("--calib", type=int, default=256)
    parser.add_argument("--dampings", default="0,1e-6,1e-4,1e-3,1e-2,1e-1")
    parser.add_argument("--test-images", type=int, default=5000)
    args = parser.parse_args()
    model, _ = trained_model(args.model)
    test = subset(get_dataset("fashion-mnist", "test"), args.test_images, seed=0)
    batches = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    rows, widths = [], None
    dense = evaluate(model, test)["top1"]
    print(f"{args.model}: dense top-1 {100 * dense:.2f}% on {len(test)} test images; FLOPs target {args.flops}")
    for damping in [float(d) for d in args.dampings.split(",")]:
        budget = {"flops": args.flops} if widths is None else {"widths": widths}
        pruned, report = Pruner(model, batches, "reoptimized", damping=damping, refit=None, progress=False,
                                **budget).run()  # the layer-wise ridge alone (no global refit), as recorded
        widths = widths or report.widths()
        top1 = evaluate(pruned, test)["top1"]
        biggest = max(float(p.detach().abs().max()) for p in pruned.parameters())
        rows.append({"damping": damping, "top1": top1, "mean_group_error": sum(g.error for g in report.groups) / len(report.groups),
                     "largest_weight": biggest, "flops_after": report.flops_after, "flops_before": report.flops_before})
        print(f"damping {damping:7.0e}: top-1 {100 * top1:6.2f}%  mean calibration error "
              f"{rows[-1]['mean_group_error']:.4f}  largest |weight| {biggest:.2f}")
    save_json({"model": args.model, "flops": args.flops, "calibration_images": args.calib, "dense_top1": dense,
               "test_images": len(test), "rows": rows}, results_dir() / f"damping_{args.model}.json")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
