"""How good is the latency model (greedyprune.latency)? Its prediction against measured pruned models.

One fresh model with random weights (``random_models.randomized``): every traced node timed on a batch,
the slowest nodes printed with their time per FLOP (convolutions, linear layers) or per output element
(everything else: the memory-bound work FLOPs do not count); then models pruned to several widths --
the same kept fraction in every group, and random widths -- each with the latency the model predicts
(the dense node times scaled by what each node keeps) beside the latency measured on the pruned model
(this thread's CPU time and wall clock, median of interleaved rounds, order rotated).

    python experiments/latency_model.py --model resnet50 --size 224 --batch 8 --threads 1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_conv_widths import timed  # (wall, thread CPU) medians of repeated no-grad passes after a warm-up
from random_models import randomized

import greedyprune
from greedyprune.budget import cost_model
from greedyprune.graph import trace
from greedyprune.latency import is_product, node_seconds
from greedyprune.metrics import module_flops


def slowest_nodes(model: torch.nn.Module, x: torch.Tensor, seconds: dict[str, float], top: int) -> None:
    traced = trace(model, x[:1])
    flops, _ = module_flops(model, x)
    modules = dict(model.named_modules())
    total = sum(seconds.values())
    print(f"{'node':<28} {'share':>6} {'ms':>7}  cost per unit")
    for name, t in sorted(seconds.items(), key=lambda kv: -kv[1])[:top]:
        node = next(n for n in traced.nodes if n.name == name)
        module = modules.get(node.target) if node.op == "call_module" else None
        if module is not None and is_product(module) and flops.get(node.target):
            unit = f"{t / (flops[node.target] * x.shape[0]) * 1e9:.4f} ns/FLOP"
        else:
            value = traced.values.get(name)
            elements = value.numel() * x.shape[0] if isinstance(value, torch.Tensor) else 0
            unit = f"{t / elements * 1e9:.3f} ns/element" if elements else "-"
        print(f"{name:<28} {t / total:>6.1%} {t * 1e3:>7.2f}  {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keeps", default="0.75,0.5,0.3", help="uniform kept fractions to prune to")
    parser.add_argument("--random-widths", type=int, default=3, help="models with random widths (seeded)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=8, help="slowest nodes to list")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = randomized(args.model)
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).expand(
        args.batch, -1, -1, -1).contiguous()
    pruner = greedyprune.Pruner(model, [x[:2]], keep=1.0, streams=True, refit=None, progress=False)
    seconds = node_seconds(pruner.nodes[0].graph.owning_module, x)
    print(f"{args.model} at {args.size} px, batch {args.batch}, {args.threads} thread(s): "
          f"{sum(seconds.values()) * 1e3:.1f} ms over {len(seconds)} nodes")
    slowest_nodes(model, x, seconds, args.top)
    costs = cost_model(pruner.original, pruner.groups, x[:1], "latency", nodes=pruner.nodes, seconds=seconds)
    rng = np.random.default_rng(0)
    settings = [(f"keep {k}", {"keep": float(k)}) for k in args.keeps.split(",") if k]
    for i in range(args.random_widths):
        widths = {g.name: int(rng.integers(max(1, g.width // 8), g.width + 1)) for g in pruner.groups}
        settings.append((f"random widths {i}", {"widths": widths}))
    models, predicted = {"dense": model}, {"dense": 1.0}
    for label, budget in settings:
        pruned, report = greedyprune.prune(model, [x[:2]], method="magnitude-norefit", streams=True, progress=False,
                                           **budget)
        models[label] = pruned
        kept = [report.widths()[g.name] for g in pruner.groups]
        predicted[label] = costs.cost(kept) / costs.cost(costs.full_widths)
    measured: dict[str, list[tuple[float, float]]] = {k: [] for k in models}  # (wall, CPU) per round
    names = list(models)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            measured[name].append(timed(models[name], x, args.repeat))
    dense_cpu = float(np.median([c for _, c in measured["dense"]]))
    dense_wall = float(np.median([w for w, _ in measured["dense"]]))
    print(f"\n{'model':<16} {'predicted':>9} {'measured CPU':>12} {'wall':>6}  (latency kept, fraction of dense)")
    for name in names:
        cpu = float(np.median([c for _, c in measured[name]])) / dense_cpu
        wall = float(np.median([w for w, _ in measured[name]])) / dense_wall
        print(f"{name:<16} {predicted[name]:>9.3f} {cpu:>12.3f} {wall:>6.3f}")


if __name__ == "__main__":
    main()
