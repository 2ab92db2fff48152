"""Benchmark of whole-network pruning (issue 3). Prints ratios measured side by side in one run.

* total pruning time / one forward pass of the original model over the same calibration images
  (resnet50, 224x224, 64 images; goal <= 8), for float32 and float64 statistics products;
* peak resident memory (after the forward pass alone, and after pruning), each precision in its own
  fresh process so that one run's peak does not hide the other's;
* CPU inference speed-up of the keep-0.5 pruned resnet50 over the dense one (batch 8).

Random weights (BatchNorm statistics randomised so activations are not trivial) and random images:
the work done does not depend on the values.

    python experiments/bench_pipeline.py [--model resnet50] [--images 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time

import torch

import greedyprune
from greedyprune.io import save_json
from greedyprune.metrics import measure_latency
from random_models import randomized


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(args) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    torch.set_num_threads(args.threads)
    model = randomized(args.model)
    images = torch.randn(args.images, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    return model, list(images.split(args.batch))


def forward_seconds(model, batches, repeat: int = 3) -> float:
    """The fastest of ``repeat`` forward passes over all batches (the conservative side of the ratio)."""
    times = []
    with torch.no_grad():
        model(batches[0])  # warm-up
        for _ in range(repeat):
            start = time.perf_counter()
            for b in batches:
                model(b)
            times.append(time.perf_counter() - start)
    return min(times)


def one_precision(args, precision: str, queue) -> None:
    """In a fresh process: forward pass, then pruning, side by side; peak RSS of each phase is this process's own."""
    model, batches = setup(args)
    forward = forward_seconds(model, batches)
    rss_forward = peak_rss_mb()
    start = time.perf_counter()
    pruned, report = greedyprune.prune(model, batches, keep=0.5, precision=precision, progress=False)
    seconds = time.perf_counter() - start
    result = {"forward_s": forward, "prune_s": seconds, "peak_rss_after_forward_mb": rss_forward,
              "peak_rss_after_prune_mb": peak_rss_mb(), "params_before": report.params_before,
              "params_after": report.params_after, "flops_before": report.flops_before,
              "flops_after": report.flops_after}
    if precision == args.precisions.split(",")[0]:
        example = batches[0][:1]
        result["dense_latency_s"] = measure_latency(model, example, batch=8, repeat=10)
        result["pruned_latency_s"] = measure_latency(pruned, example, batch=8, repeat=10)
    queue.put(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", default="float32,float64")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    result = {"model": args.model, "images": args.images, "threads": args.threads, "torch": torch.__version__,
              "machine": platform.machine(), "load_average_before": os.getloadavg()}
    for precision in args.precisions.split(","):
        queue = context.Queue()
        child = context.Process(target=one_precision, args=(args, precision, queue))
        child.start()
        run = queue.get()
        child.join()
        ratio = run["prune_s"] / run["forward_s"]
        result[precision] = {**run, "prune_over_forward": ratio}
        print(f"{args.model}, {args.images} images at 224x224, {precision} products (fresh process): forward "
              f"{run['forward_s']:.2f} s, prune keep=0.5 {run['prune_s']:.1f} s = {ratio:.2f} x forward (goal <= 8); "
              f"peak RSS {run['peak_rss_after_forward_mb']:.0f} MB after the forward pass, "
              f"{run['peak_rss_after_prune_mb']:.0f} MB after pruning", flush=True)
        if "dense_latency_s" in run:
            speedup = run["dense_latency_s"] / run["pruned_latency_s"]
            result["inference_speedup"] = speedup
            print(f"params {run['params_before']:,} -> {run['params_after']:,}; FLOPs {run['flops_before']:,} -> "
                  f"{run['flops_after']:,} ({run['flops_after'] / run['flops_before']:.1%})")
            print(f"latency batch 8: dense {run['dense_latency_s'] * 1e3:.0f} ms, pruned "
                  f"{run['pruned_latency_s'] * 1e3:.0f} ms, speed-up {speedup:.2f}x")
    result["load_average_after"] = os.getloadavg()
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
