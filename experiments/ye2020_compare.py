"""Issue 16, part 2: the authors' procedure (``ye2020``) vs ``reoptimized`` (+ global refit) at its widths.

1. ``ye2020`` prunes the model (resumable per layer under ``runs/ye2020/``): labelled mini-batches, whole-
   network loss, uniform weights, top-1 stop rule, 0.1-epoch fine-tunes between layers.
2. ``reoptimized`` and ``reoptimized+refit`` prune the same model to exactly the widths ``ye2020`` ended
   with (traced groups, ``streams=True``; groups ``ye2020`` does not touch keep all their channels), from
   ``--calib`` unlabelled calibration images.
3. Each pruned model: top-1 on the test images before and after the same short fine-tune
   (``--finetune-images`` x ``--finetune-epochs``), wall time and load average of every stage.

Results go to ``experiments/results/ye2020_<model>.json`` (finished stages are skipped on a rerun; the
``ye2020`` run itself resumes after its last finished layer from ``--runs``). At the end, and with
``--table FILE`` without running anything, a markdown table of the results is printed.

    python experiments/ye2020_compare.py --model mobilenet_v2-fmnist-quick --candidates 5 --batch 64
    python experiments/ye2020_compare.py --table experiments/results/ye2020_compare_mobilenet_v2-fmnist.json
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


RELEASED = {"candidates": 50, "batch_size": 128, "tolerance": 0.98, "check_images": 300, "finetune_epochs": 0.1}


def table(results: dict) -> str:
    """Markdown: the settings (and what differs from the released procedure), ``ye2020``'s widths, and one row
    per method: FLOPs and parameters kept, top-1 before/after the common fine-tune, wall and CPU seconds."""
    ye = results["ye2020_options"]
    changed = ", ".join(f"{k} {ye[k]:g} (released {v:g})" for k, v in RELEASED.items() if ye[k] != v) or "none"
    lines = [f"**{results['model']}**: dense top-1 {100 * results['dense_top1']:.2f} on {results['test_images']} test "
             f"images; reoptimized from {results['calibration_images']} calibration images; common fine-tune "
             f"{results['finetune_epochs']:g} epoch over {results['finetune_images']} training images. ye2020 "
             f"settings differing from the released code: {changed}; final fine-tune "
             f"{ye['final_epochs']:g} epochs (released 150).", ""]
    layers = results["runs"].get("ye2020", {}).get("layers", [])
    if layers:
        lines += ["ye2020 widths (kept/original): " + ", ".join(
            f"{g['name'].removeprefix('features.')} {g['channels_after']}/{g['channels_before']}" for g in layers), ""]
    lines += ["| method | FLOPs kept | params kept | top-1 pruned | top-1 fine-tuned | pruning wall s | pruning CPU s "
              "| fine-tune wall s | fine-tune CPU s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, run in results["runs"].items():
        note = (f" (selection {run['selection_seconds']:.0f} + fine-tunes between layers "
                f"{run['between_finetune_seconds']:.0f})" if "selection_seconds" in run else "")
        lines.append(f"| `{name}` | {run['flops_after'] / run['flops_before']:.1%} | "
                     f"{run['params_after'] / run['params_before']:.1%} | {100 * run['top1_pruned']:.2f} | "
                     f"{100 * run['top1_finetuned']:.2f} | {run['prune_seconds']:.0f}{note} | "
                     f"{run['prune_cpu_seconds']:.0f} | {run['finetune_seconds']:.0f} | "
                     f"{run['finetune_cpu_seconds']:.0f} |")
    return "\n".join(lines)


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
    parser.add_argument("--runs", default=None, help="folder of the resumable ye2020 runs (default runs/ye2020)")
    parser.add_argument("--table", default=None, help="print the markdown table of this results file and exit")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return

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
        run_dir = Path(args.runs or ROOT / "runs" / "ye2020") / f"{args.model}-{settings_hash(options)}"
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
    for name, extra in (("reoptimized", {"refit": None}),
                        ("reoptimized+refit", {"refit": "global", "refit_iters": args.refit_iters})):
        if name in results["runs"]:
            continue
        began, at, cpu = time.perf_counter(), load(), time.process_time()
        pruned, report = Pruner(model, batches, "reoptimized", widths=widths, streams=True, progress=False, **extra).run()
        finish(name, pruned, report, time.perf_counter() - began, at, time.process_time() - cpu)
        assert results["runs"][name]["widths"] == {**results["runs"][name]["widths"], **widths}  # equal widths
    print(table(results))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    main()
