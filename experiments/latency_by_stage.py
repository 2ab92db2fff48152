"""Where a pruned model spends its time, node by node, against Torch-Pruning at the same FLOPs (issue 15).

Loads greedyprune models saved by ``greedyprune.save`` (e.g. by ``bench_pipeline.py``'s settings), builds
the dense random-weight model and Torch-Pruning L1 ``uniform`` / ``global`` matched to the first greedy
model's FLOPs (``torch_pruning_match``), then times every traced node of every model
(``greedyprune.latency.node_seconds`` at ``--batch``, this thread's wall clock -- 1 thread) in interleaved
rounds, median per node. Beside the measured times: the latency model's prediction for each model --
the dense node's time scaled by the kept fraction of its input and output channels, read off the pruned
model's own tensors (for a Conv2d / Linear the input and output channels, for any other node the
channel axis of its output): ``t_n * r_in * r_out``, the model :mod:`greedyprune.latency` uses.

Prints a per-stage table (stem conv, stem pool, layer1..4, head) and the nodes where the first greedy
model loses most time against the first Torch-Pruning model.

    python experiments/latency_by_stage.py greedy=/tmp/g50.pt --model resnet50 --threads 1 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics

import torch
from random_models import randomized
import torch_pruning_match as tpm

import greedyprune
from greedyprune.graph import trace
from greedyprune.latency import TIMED_OPS, is_product, node_seconds
from greedyprune.metrics import count_flops


def stage_of(name: str) -> str:
    """ResNet-style stage of a node name (``layer3_2_conv1`` -> ``layer3``; ``maxpool`` -> ``stem pool``)."""
    if name.startswith("layer"):
        return name.split("_")[0]
    if name in ("maxpool",):
        return "stem pool"
    if name in ("conv1", "bn1", "relu"):
        return "stem conv"
    if name.startswith("features_"):  # MobileNetV2: features_<i>_...
        i = int(name.split("_")[1])
        return f"features {i // 4 * 4}-{i // 4 * 4 + 3}"
    return "head"


def channels(value) -> int:
    return value.shape[1] if isinstance(value, torch.Tensor) and value.dim() > 1 else 0


def predicted(dense, pruned, seconds: dict[str, float]) -> dict[str, float]:
    """Per node: dense seconds times the kept fraction of its input and output channels (the latency model)."""
    out = {}
    dense_modules, pruned_modules = dict(dense.graph_module.named_modules()), dict(pruned.graph_module.named_modules())
    for node in dense.nodes:
        if node.op not in TIMED_OPS:
            continue
        t = seconds[node.name]
        module = dense_modules.get(node.target) if node.op == "call_module" else None
        if module is not None and is_product(module):
            small = pruned_modules[node.target]
            w, v = module.weight, small.weight
            r_in = (v.shape[1] * (small.groups if isinstance(small, torch.nn.Conv2d) else 1)) / \
                (w.shape[1] * (module.groups if isinstance(module, torch.nn.Conv2d) else 1))
            out[node.name] = t * r_in * v.shape[0] / w.shape[0]
        else:
            full, kept = channels(dense.values[node.name]), channels(pruned.values[node.name])
            out[node.name] = t * (kept / full if full else 1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="label=path.pt of greedyprune.save files")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dense = randomized(args.model)
    x = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    xb = x.expand(args.batch, -1, -1, -1).contiguous()
    models = {"dense": dense}
    for item in args.models:
        label, path = item.split("=", 1)
        models[label] = greedyprune.load(path)
    first = list(models)[1]
    target = count_flops(models[first], x) / count_flops(dense, x)
    for scope in tpm.SCOPES:
        net, info = tpm.prune_to_flops(dense, x, target, scope)
        if net is not None:
            models[f"tp-{scope}"] = net
    traced = {k: trace(m, x) for k, m in models.items()}
    runs: dict[str, dict[str, list[float]]] = {k: {} for k in models}
    order = list(models)
    for r in range(args.rounds):
        for key in order[r % len(order):] + order[:r % len(order)]:
            for name, t in node_seconds(traced[key].graph_module, xb, repeat=args.repeat).items():
                runs[key].setdefault(name, []).append(t)
    seconds = {k: {n: statistics.median(v) for n, v in by.items()} for k, by in runs.items()}
    pred = {k: predicted(traced["dense"], traced[k], seconds["dense"]) for k in models}
    flops = {k: count_flops(m, x) / count_flops(dense, x) for k, m in models.items()}
    stage: dict[str, str] = {}  # a function node (e.g. a residual add) goes with the module node before it
    for node in traced["dense"].nodes:
        stage[node.name] = stage_of(node.name) if node.op == "call_module" or not stage else list(stage.values())[-1]
    stages = list(dict.fromkeys(stage[n] for n in seconds["dense"]))
    print(f"{args.model} {args.size} px batch {args.batch}, {args.threads} thread(s), node times (ms, median of "
          f"{args.rounds} rounds x {args.repeat}); 'pred' = latency model at the model's own widths")
    header = f"{'stage':<12} {'dense':>7}" + "".join(f" {k:>9} {'pred':>7}" for k in order[1:])
    print(header)
    for part in stages + ["total"]:
        def total(d):
            return 1e3 * sum(t for n, t in d.items() if part == "total" or stage[n] == part)
        print(f"{part:<12} {total(seconds['dense']):>7.1f}" +
              "".join(f" {total(seconds[k]):>9.1f} {total(pred[k]):>7.1f}" for k in order[1:]))
    print("FLOPs kept: " + ", ".join(f"{k} {v:.1%}" for k, v in flops.items()))
    tp = next((k for k in order if k.startswith("tp-")), None)
    if tp:
        print(f"\nnodes where {first} loses most against {tp} (ms; measured, predicted; channels out)")
        diff = sorted(seconds["dense"], key=lambda n: -(seconds[first][n] - seconds[tp][n]))
        for n in diff[:args.top] + ["..."] + diff[-5:]:
            if n == "...":
                print("...")
                continue
            print(f"{n:<24} {first} {seconds[first][n] * 1e3:6.2f} ({pred[first][n] * 1e3:6.2f}, "
                  f"{channels(traced[first].values[n]):4d})  {tp} {seconds[tp][n] * 1e3:6.2f} "
                  f"({pred[tp][n] * 1e3:6.2f}, {channels(traced[tp].values[n]):4d})")


if __name__ == "__main__":
    main()
