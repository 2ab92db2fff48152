"""Do float32 statistics products change what greedy selection keeps? (the default ``precision``).

Each calibration batch's products (``X X^T``, ``X T^T``) are formed in float32 and summed in float64 by
default, or formed in float64 (``precision="float64"``). This prunes one trained model both ways and
compares, group by group, the allocated widths, the kept channels and the reconstruction errors.
Writes ``experiments/results/precision_<model>.json``.

    python experiments/precision_check.py --model resnet18-fmnist --flops 0.5
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18-fmnist")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--calib", type=int, default=512)
    args = parser.parse_args()
    model, _ = trained_model(args.model)
    batches = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    reports, seconds = {}, {}
    for precision in ("float32", "float64"):
        start = time.perf_counter()
        _, reports[precision] = Pruner(model, batches, flops=args.flops, precision=precision, refit=None,
                                       progress=False).run()  # the selection's numerics: no refit, as recorded
        seconds[precision] = time.perf_counter() - start
    groups = []
    for a, b in zip(reports["float32"].groups, reports["float64"].groups):
        groups.append({"group": a.name, "width_float32": a.channels_after, "width_float64": b.channels_after,
                       "kept_differ": len(set(a.kept or []) ^ set(b.kept or [])),
                       "error_float32": a.error, "error_float64": b.error,
                       "error_relative_difference": abs(a.error - b.error) / max(b.error, 1e-300)})
        print(f"{a.name:<20} widths {a.channels_after}/{b.channels_after}, kept channels differing: "
              f"{groups[-1]['kept_differ']}, error {a.error:.6f} vs {b.error:.6f}")
    result = {"model": args.model, "flops": args.flops, "calibration_images": args.calib, "seconds": seconds,
              "groups": groups, "same_kept_everywhere": all(g["kept_differ"] == 0 for g in groups),
              "largest_error_relative_difference": max(g["error_relative_difference"] for g in groups)}
    print(f"float32 {seconds['float32']:.0f} s, float64 {seconds['float64']:.0f} s; same kept channels in every group: "
          f"{result['same_kept_everywhere']}; largest relative error difference "
          f"{result['largest_error_relative_difference']:.1e}")
    save_json(result, results_dir() / f"precision_{args.model}.json")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
