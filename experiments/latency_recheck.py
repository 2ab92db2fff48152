"""Re-time saved greedyprune models against Torch-Pruning (issue 15): CPU time and wall clock, interleaved.

The dense random-weight model (``random_models.randomized``), the given pruned model files, and
Torch-Pruning global L1 magnitude matched to ``--target`` FLOPs with each ``--tp-round-to`` (its own
``round_to``), all in this one process: 1 thread, batch 8, ``--rounds`` rounds (order rotated every
round) of ``--repeat`` passes, median of the rounds' medians; each pass timed by ``time.perf_counter``
and by this thread's CPU time (``time.thread_time``, robust to a loaded machine). Runs B, D, E of
docs/budget.md (the pruned files written by ``greedyprune.save`` from bench_pipeline.py's settings).

    python experiments/latency_recheck.py greedy=r50.pt greedy/r8=r50-r8.pt greedy/r16=r50-r16.pt \\
        --model resnet50 --target 0.3 --tp-round-to 1,8,16
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import greedyprune
import torch_pruning_match as tpm
from greedyprune.metrics import count_flops
from random_models import randomized


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="LABEL=PATH of pruned model files (greedyprune.save)")
    parser.add_argument("--model", default="resnet50", help="the dense architecture (random weights, seed 0)")
    parser.add_argument("--target", type=float, default=0.3, help="Torch-Pruning's FLOPs fraction")
    parser.add_argument("--tp-round-to", default="1,8,16", help="Torch-Pruning round_to values ('' for none)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dense = randomized(args.model)
    example = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    models = {"dense": dense}
    for spec in args.models:
        label, _, path = spec.partition("=")
        models[label] = greedyprune.load(path)
    for round_to in [int(r) for r in args.tp_round_to.split(",") if r]:
        net, info = tpm.prune_to_flops(dense, example, args.target, "global", round_to=round_to)
        if net is not None:
            models["tp-global" + ("" if round_to == 1 else f"/r{round_to}")] = net
    x = example.expand(8, *example.shape[1:]).contiguous()
    flops = {k: count_flops(m, example) for k, m in models.items()}
    wall: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    load = os.getloadavg()[0]
    order = list(models)
    with torch.no_grad():
        for r in range(args.rounds):
            for key in order[r % len(order):] + order[:r % len(order)]:
                net = models[key].eval()
                net(x), net(x)  # warm-up
                w, c = [], []
                for _ in range(args.repeat):
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    net(x)
                    w.append(time.perf_counter() - start)
                    c.append(time.thread_time() - start_cpu)
                wall[key].append(median(w))
                cpu[key].append(median(c))
    print(f"load average before {load:.2f}, after {os.getloadavg()[0]:.2f}; {args.rounds} rounds x {args.repeat} "
          "passes, rotated order, 1 thread, batch 8")
    for key in models:
        print(f"{key:<16} FLOPs {flops[key] / flops['dense']:6.1%}  wall {median(wall[key]) * 1e3:7.1f} ms "
              f"({median(wall['dense']) / median(wall[key]):4.2f}x)  CPU {median(cpu[key]) * 1e3:7.1f} ms "
              f"({median(cpu['dense']) / median(cpu[key]):4.2f}x)", flush=True)


if __name__ == "__main__":
    main()
