"""Issue 16, part 2: the authors' procedure (``ye2020``) vs ``reoptimized`` (+ global refit) at its widths.

1. ``ye2020`` prunes the model (resumable per layer under ``runs/ye2020/``): labelled mini-batches, whole-
   network loss, uniform weights, top-1 stop rule, 0.1-epoch fine-tunes between layers.
2. ``reoptimized`` and ``reoptimized+refit`` prune the same model to exactly the widths ``ye2020`` ended
   with (traced groups, ``streams=True``; groups ``ye2020`` does not touch keep all their channels), from
   ``--calib`` unlabelled calibration images.
3. Each pruned model: top-1 on the test images before and after the same short fine-tune
   (``--finetune-images`` x ``--finetune-epochs``), wall time and load average of every stage.

Results go to ``experiments/results/ye2020_<model>.json`` (finished stages are skipped on a rerun).

    python experiments/ye2020_compare.py --model mobilenet_v2-fmnist-quick --candidates 5 --batch 64
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from compare_finetune import ROOT, fine_tune

from greedyprune.data import calibration_batches, get_dataset, subset
from greedyprune.io import save_json
from greedyprune.models import trained_model
from greedyprune.options import settings_hash
from greedyprune.paths import results_dir
from greedyprune.prune import Pruner
from greedyprune.train import evaluate
from greedyprune.ye2020 import Ye2020Options, ye2020_prune


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2-fmnist-quick")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--tolerance", type=float, default=0.98)
    parser.add_argument("--check-images", type=int, default=300)
    parser.add_argument("--between-epochs", type=float, default=0.1, help="ye2020 fine-tune after each layer")
    parser.add_argument("--no-streams", dest="streams", action="store_false")
    parser.add_argument("--calib", type=int, default=512)
    parser.add_argument("--refit-iters", type=int, default=40)
    parser.add_argument("--test-images", type=int, default=10000)
    parser.add_argument("--finetune-images", type=int, default=5000)
    parser.add_argument("--finetune-epochs", type=float, default=1.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    options = Ye2020Options(candidates=args.candidates, batch_size=args.batch, tolerance=args.tolerance,
                            check_images=args.check_images, finetune_epochs=args.between_epochs, streams=args.streams)
    out = Path(args.out or results_dir() / f"ye2020_{args.model}.json")
    results = json.loads(out.read_text()) if out.exists() else {"model": args.model, "runs": {}}
    results["ye2020_options"] = dataclasses.asdict(options)
    model, _ = trained_model(args.model)
    test = subset(get_dataset("fashion-mnist", "test"), args.test_images, seed=0)
    train_set = get_dataset("fashion-mnist", "train")
    if "dense_top1" not in results:
        results["dense_top1"] = evaluate(model, test)["top1"]
    results.update(test_images=len(test), calibration_images=args.calib, finetune_images=args.finetune_images,
                   finetune_epochs=args.finetune_epochs)

    def finish(name: str, pruned, report, seconds: float, started_load: list[float], cpu: float) -> None:
        run = {"widths": report.widths(), "flops_before": report.flops_before, "flops_after": report.flops_after,
               "params_before": report.params_before, "params_after": report.params_after,
               "prune_seconds": seconds, "prune_cpu_seconds": cpu, "load_start": started_load, "load_end": load(),
               "top1_pruned": evaluate(pruned, test)["top1"], "refit": report.refit}
        tuned = copy.deepcopy(pruned)
        began, cpu_began = time.perf_counter(), time.process_time()
        fine_tune(tuned, args.finetune_images, args.finetune_epochs, seed=0)
        run.update(top1_finetuned=evaluate(tuned, test)["top1"], finetune_seconds=time.perf_counter() - began,
                   finetune_cpu_seconds=time.process_time() - cpu_began)
        results["runs"][name] = run
        save_json(results, out)
        print(f"{name}: FLOPs {run['flops_after'] / run['flops_before']:.1%}, top-1 {100 * run['top1_pruned']:.2f} -> "
              f"fine-tuned {100 * run['top1_finetuned']:.2f}; pruning {seconds:.0f} s (load {started_load} -> "
              f"{run['load_end']})", flush=True)

    if "ye2020" not in results["runs"]:
        began, at = time.perf_counter(), load()
        run_dir = ROOT / "runs" / "ye2020" / f"{args.model}-{settings_hash(options)}"
        pruned, report = ye2020_prune(model, train_set, options, run_dir=run_dir)
        finish("ye2020", pruned, report, report.seconds, at,
               report.options["selection_cpu_seconds"] + report.options["finetune_cpu_seconds"])
        results["runs"]["ye2020"].update(session_seconds=time.perf_counter() - began,
                                         selection_seconds=report.options["selection_seconds"],
                                         between_finetune_seconds=report.options["finetune_seconds"],
                                         layers=[dataclasses.asdict(g) for g in report.groups])
        save_json(results, out)
    widths = results["runs"]["ye2020"]["widths"]
    batches = calibration_batches("fashion-mnist", args.calib, 64, seed=0)
    for name, extra in (("reoptimized", {}), ("reoptimized+refit", {"refit": "global", "refit_iters": args.refit_iters})):
        if name in results["runs"]:
            continue
        began, at, cpu = time.perf_counter(), load(), time.process_time()
        pruned, report = Pruner(model, batches, "reoptimized", widths=widths, streams=True, progress=False, **extra).run()
        finish(name, pruned, report, time.perf_counter() - began, at, time.process_time() - cpu)
        assert results["runs"][name]["widths"] == {**results["runs"][name]["widths"], **widths}  # equal widths


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    main()
