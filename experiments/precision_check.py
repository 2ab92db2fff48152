"""Do float32 or bfloat16-mode statistics products change what greedy selection keeps? (``precision``).

Each calibration batch's products (``X X^T``, ``X T^T``) are formed in float32 and summed in float64 by
default, in float64 (``precision="float64"``, the reference here) or in oneDNN's bfloat16 math mode
(``precision="bfloat16"``, :mod:`greedyprune.stats.precision`). This prunes one trained model each way and
compares every precision with float64, group by group: the allocated widths, the kept channels and the
reconstruction errors. Writes ``experiments/results/precision_<model>[_streams].json``.

    python experiments/precision_check.py --model resnet18-fmnist --flops 0.5
    python experiments/precision_check.py --model resnet18-fmnist --flops 0.5 --streams --precisions float32,bfloat16
"""

from __future__ import annotations

import argparse
import time

import torch

from greedyprune.data import calibration_batches
from greedyprune.io import save_json
from greedyprune.models import trained_model
from greedyprune.paths import results_dir
from greedyprune.prune import Pruner
from greedyprune.stats.precision import effective


def compare(reports: dict, precision: str) -> dict:
    """Group by group, ``precision``'s run against the float64 one."""
    groups = []
    for a, b in zip(reports[precision].groups, reports["float64"].groups):
        groups.append({"group": a.name, "width": a.channels_after, "width_float64": b.channels_after,
                       "kept_differ": len(set(a.kept or []) ^ set(b.kept or [])),
                       "error": a.error, "error_float64": b.error,
                       "error_relative_difference": abs(a.error - b.error) / max(b.error, 1e-300)})
        print(f"{precision:>8} {a.name:<20} widths {a.channels_after}/{b.channels_after}, kept channels differing: "
              f"{groups[-1]['kept_differ']}, error {a.error:.6f} vs {b.error:.6f}")
    return {"products": effective(precision), "groups": groups,
            "same_kept_everywhere": all(g["kept_differ"] == 0 for g in groups),
            "largest_error_relative_difference": max(g["error_relative_difference"] for g in groups)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18-fmnist")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--calib", type=int, default=512)
    parser.add_argument("--streams", action="store_true", help="also prune residual streams / block outputs")
    parser.add_argument("--precisions", default="float32", help="compared with float64 (float32, bfloat16)")
    args = parser.parse_args()
    model, _ = trained_model(args.model)
    batches = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    reports, seconds = {}, {}
    precisions = [p for p in args.precisions.split(",") if p != "float64"]
    for precision in ["float64", *precisions]:
        start = time.process_time()
        _, reports[precision] = Pruner(model, batches, flops=args.flops, precision=precision, refit=None,
                                       streams=args.streams, progress=False).run()  # the selection's numerics
        seconds[precision] = time.process_time() - start
    result = {"model": args.model, "flops": args.flops, "streams": args.streams, "calibration_images": args.calib,
              "cpu_seconds": seconds, "reference": "float64",
              "compared": {p: compare(reports, p) for p in precisions}}
    for precision, c in result["compared"].items():
        print(f"{precision} (products {c['products']}) {seconds[precision]:.0f} s CPU vs float64 {seconds['float64']:.0f} s; "
              f"same kept channels in every group: {c['same_kept_everywhere']}; largest relative error difference "
              f"{c['largest_error_relative_difference']:.1e}")
    save_json(result, results_dir() / f"precision_{args.model}{'_streams' if args.streams else ''}.json")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
