"""Experiment 3 (issue 5): the ImageNet path, dry run, with random weights and a small ImageFolder.

For each architecture: write a torchvision-format weights file (random init, BatchNorm statistics
randomised), build a tiny ImageFolder (``train/`` and ``val/``, 2 classes of 256x256 JPEGs with
random smooth patterns), then run the real CLI, each step in a fresh process so its peak memory is
its own:

    greedyprune prune --model NAME --weights FILE --data imagefolder:DIR --calib 32 --keep 0.5 --out pruned.pt
    greedyprune eval  --model pruned.pt --data imagefolder:DIR
    greedyprune info  --model pruned.pt

Prints time and peak RSS per step; JSON into experiments/results/imagenet_dryrun.json.

    python experiments/imagenet_dryrun.py [--models resnet50,mobilenet_v2,mobilenet_v3_large] [--calib 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from greedyprune.io import save_json, save_torch
from greedyprune.paths import results_dir
from random_models import randomized


def write_imagefolder(root: Path, per_class: int, seed: int = 0) -> None:
    """Two classes of smooth random colour patterns (upsampled noise), JPEG, 256x256."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for cls in ("class_a", "class_b"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
                Image.fromarray(small).resize((256, 256), Image.BICUBIC).save(folder / f"{i}.jpg", quality=90)


def run_cli(args: list[str]) -> dict:
    """Run ``greedyprune ARGS`` in a child process; wall time, and the peak RSS of that child alone."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "greedyprune.cli.main", *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"greedyprune {' '.join(args)} failed:\n{stderr[-2000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout[-3000:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet_v2,mobilenet_v3_large")
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=24)
    args = parser.parse_args()
    results = {"calibration_images": args.calib, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_imagefolder(root / "imagenet", args.per_class)
        data = f"imagefolder:{root / 'imagenet'}"
        for name in args.models.split(","):
            weights, pruned = root / f"{name}.pth", root / f"{name}-pruned.pt"
            save_torch(randomized(name, affine=False).state_dict(), weights)
            steps = {
                "prune": run_cli(["prune", "--model", name, "--weights", str(weights), "--data", data, "--calib",
                                  str(args.calib), "--batch-size", "16", "--keep", "0.5", "--out", str(pruned),
                                  "--refit", "none", "--no-progress"]),  # the recorded times: no global refit
                "eval_dense": run_cli(["eval", "--model", name, "--weights", str(weights), "--data", data]),
                "eval_pruned": run_cli(["eval", "--model", str(pruned), "--data", data]),
                "info": run_cli(["info", "--model", str(pruned)]),
            }
            dense = json.loads(steps["eval_dense"]["stdout"].strip().splitlines()[-1])
            small = json.loads(steps["eval_pruned"]["stdout"].strip().splitlines()[-1])
            results["models"][name] = {k: {"seconds": v["seconds"], "peak_rss_mb": v["peak_rss_mb"]}
                                       for k, v in steps.items()}
            results["models"][name].update(dense=dense, pruned=small)
            print(f"{name}: prune {steps['prune']['seconds']:.0f} s (peak {steps['prune']['peak_rss_mb']:.0f} MB), "
                  f"params {dense['params']:,} -> {small['params']:,}, FLOPs {dense['flops']:,} -> {small['flops']:,}, "
                  f"latency (batch 8) {1e3 * dense['latency_s']:.0f} -> {1e3 * small['latency_s']:.0f} ms", flush=True)
    save_json(results, results_dir() / "imagenet_dryrun.json")


if __name__ == "__main__":
    main()
