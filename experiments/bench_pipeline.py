"""Benchmark of whole-network pruning (issue 3). Prints ratios measured side by side in one run.

* total pruning time / one forward pass of the original model over the same calibration images
  (resnet50, 224x224, 64 images; goal <= 8), for float32 and float64 statistics products;
* peak resident memory of the process (after the forward pass alone, and after pruning);
* CPU inference speed-up of the keep-0.5 pruned resnet50 over the dense one (batch 8).

Random weights (BatchNorm statistics randomised so activations are not trivial) and random images:
the work done does not depend on the values.

    python experiments/bench_pipeline.py [--model resnet50] [--images 64] [--threads 2]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", default="float32,float64")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = randomized(args.model)
    images = torch.randn(args.images, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    batches = list(images.split(args.batch))
    with torch.no_grad():
        model(batches[0])  # warm-up
        start = time.perf_counter()
        for b in batches:
            model(b)
        forward = time.perf_counter() - start
    rss_forward = peak_rss_mb()
    result = {"model": args.model, "images": args.images, "threads": args.threads, "torch": torch.__version__,
              "machine": platform.machine(), "forward_s": forward, "peak_rss_after_forward_mb": rss_forward}
    print(f"{args.model}: forward over {args.images} images at 224x224: {forward:.2f} s (peak RSS {rss_forward:.0f} MB)")
    pruned = None
    for precision in args.precisions.split(","):
        start = time.perf_counter()
        pruned, report = greedyprune.prune(model, batches, keep=0.5, precision=precision, progress=False)
        seconds = time.perf_counter() - start
        rss = peak_rss_mb()
        result[f"prune_{precision}_s"] = seconds
        result[f"prune_{precision}_over_forward"] = seconds / forward
        result[f"peak_rss_after_prune_{precision}_mb"] = rss
        print(f"prune keep=0.5 ({precision} products): {seconds:.1f} s = {seconds / forward:.2f} x forward "
              f"(goal <= 8); peak RSS {rss:.0f} MB")
    result.update(params_before=report.params_before, params_after=report.params_after,
                  flops_before=report.flops_before, flops_after=report.flops_after)
    example = images[:1]
    dense_latency = measure_latency(model, example, batch=8, repeat=10)
    pruned_latency = measure_latency(pruned, example, batch=8, repeat=10)
    result.update(dense_latency_s=dense_latency, pruned_latency_s=pruned_latency,
                  inference_speedup=dense_latency / pruned_latency)
    print(f"params {report.params_before:,} -> {report.params_after:,}; FLOPs {report.flops_before:,} -> "
          f"{report.flops_after:,} ({report.flops_after / report.flops_before:.1%})")
    print(f"latency batch 8: dense {dense_latency * 1e3:.0f} ms, pruned {pruned_latency * 1e3:.0f} ms, "
          f"speed-up {dense_latency / pruned_latency:.2f}x")
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
