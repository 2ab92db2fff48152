"""Benchmark of the selection engine (issue 2). Prints ratios measured side by side in one run.

1. ``reoptimized`` at N=2048, k=1024 divided by one 2048^3 float64 matrix product (goal <= 2),
   for the blocked (default) and the unblocked (block=1) variants.
2. Speed-up over the brute-force reference that re-solves least squares for every candidate at every
   step, at N=256, k=128, with identical picks (goal >= 100x).

    python experiments/bench_selection.py [--threads 2] [--json experiments/results/bench_selection.json]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from greedyprune import greedy_select_gram
from greedyprune.io import save_json
from greedyprune.selection.reference import brute_force_reoptimized


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def problem(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64) / d ** 0.5
    target = features.sum(0) + 0.1 * torch.randn(d, generator=g, dtype=torch.float64)
    return features @ features.T, features @ target, target @ target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    a = torch.randn(2048, 2048, dtype=torch.float64)
    b = torch.randn(2048, 2048, dtype=torch.float64)
    gemm = best_time(lambda: a @ b, args.repeat)
    gram, cross, energy = problem(2048, 4096)
    blocked = best_time(lambda: greedy_select_gram(gram, cross, energy, 1024, damping=0.0), args.repeat)
    unblocked = best_time(lambda: greedy_select_gram(gram, cross, energy, 1024, damping=0.0, block=1), args.repeat)
    same = torch.equal(greedy_select_gram(gram, cross, energy, 1024, damping=0.0).indices,
                       greedy_select_gram(gram, cross, energy, 1024, damping=0.0, block=1).indices)

    small = problem(256, 512, seed=1)
    fast = best_time(lambda: greedy_select_gram(*small, 128, damping=0.0), args.repeat)
    start = time.perf_counter()
    slow_picks, _ = brute_force_reoptimized(*small, 128)
    slow = time.perf_counter() - start
    identical = greedy_select_gram(*small, 128, damping=0.0).indices.tolist() == slow_picks

    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "threads": args.threads,
        "torch": torch.__version__,
        "gemm_2048_f64_s": gemm, "reoptimized_2048_1024_blocked_s": blocked,
        "reoptimized_2048_1024_unblocked_s": unblocked, "blocked_over_gemm": blocked / gemm,
        "unblocked_over_gemm": unblocked / gemm, "blocked_unblocked_same_picks": same,
        "brute_force_256_128_s": slow, "reoptimized_256_128_s": fast, "speedup_vs_brute_force": slow / fast,
        "identical_picks_vs_brute_force": identical,
    }
    print(f"one 2048^3 float64 GEMM          {gemm * 1e3:9.1f} ms")
    print(f"reoptimized N=2048 k=1024 blocked {blocked * 1e3:8.1f} ms  ratio {blocked / gemm:5.2f}  (goal <= 2)")
    print(f"reoptimized N=2048 k=1024 block=1 {unblocked * 1e3:8.1f} ms  ratio {unblocked / gemm:5.2f}  "
          f"(same picks: {same})")
    print(f"brute force N=256 k=128          {slow:9.2f} s")
    print(f"reoptimized N=256 k=128          {fast * 1e3:9.2f} ms  speed-up {slow / fast:8.0f}x  (goal >= 100x; "
          f"identical picks: {identical})")
    if args.json:
        save_json(result, args.json)


if __name__ == "__main__":
    main()
