"""CPU time of one prune by phase, in calibration forwards (issue 15): where the prune/forward ratio goes.

One fresh process: the fastest of 3 no-grad forward passes over the calibration batches (as in
bench_pipeline.py), then ``greedyprune.prune`` with timers wrapped around its parts (CPU time,
``time.process_time``: a loaded machine distorts it least). Phases overlap: the two passes contain the
statistics, layer runs and selections. Peak resident memory at the end.

    python experiments/prune_phases.py resnet50 --flops 0.5 --streams --images 64 --threads 1
    python experiments/prune_phases.py resnet50 --flops 0.5 --streams --precision bfloat16   # the bfloat16 math mode
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import resource
import time

import torch

import greedyprune
from greedyprune.stats.consumer import ConsumerStatistics
from greedyprune.stats.own_output import OwnOutputStatistics
from random_models import randomized

TIMED = [  # (module or class, attribute, label)
    (ConsumerStatistics, "add_batch", "statistics: add_batch"),
    (ConsumerStatistics, "statistics", "statistics: finalise (G, b, E)"),
    (OwnOutputStatistics, "add_batch", "statistics: add_batch"),  # the error curves' (b = G 1): its own methods
    (OwnOutputStatistics, "statistics", "statistics: finalise (G, b, E)"),
    ("greedyprune.walk.execute", "run_node", "layer runs (walker)"),
    ("greedyprune.prune", "check_on_every_rank", "checked forward"),
    ("greedyprune.prune", "count_flops", "FLOP counting"),
    ("greedyprune.prune", "cost_model", "cost model"),
    ("greedyprune.pipeline.networks", "trace_groups", "tracing"),
    ("greedyprune.prune", "greedy_select_gram", "selection (error curves)"),
    ("greedyprune.pipeline.group_step", "greedy_select_gram", "selection (pruning)"),
    ("greedyprune.pipeline.group_step", "apply_selection", "surgery"),
    (greedyprune.Pruner, "error_curves", "PASS error curves"),
    (greedyprune.Pruner, "run", "PASS pruning + finish"),
]


def wrap(spent: collections.Counter, owner, attribute: str, label: str) -> None:
    owner = importlib.import_module(owner) if isinstance(owner, str) else owner
    original = getattr(owner, attribute)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - start

    setattr(owner, attribute, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet50")
    parser.add_argument("--flops", type=float, default=0.5)
    parser.add_argument("--streams", action="store_true")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--refit", default="none", choices=["none", "auto", "global"],
                        help="the global refit after selection (default none: the selection's cost, as bench_pipeline "
                             "measures; auto = the library default, whose L-BFGS passes show as 'PASS pruning + finish')")
    parser.add_argument("--precision", default="float32", choices=["float32", "float64", "bfloat16"],
                        help="the statistics' products (greedyprune.stats.precision)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spent: collections.Counter = collections.Counter()
    for owner, attribute, label in TIMED:
        wrap(spent, owner, attribute, label)
    model = randomized(args.model)
    x = torch.randn(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    batches = list(x.split(args.batch))
    with torch.no_grad():
        model(batches[0])
        passes = []
        for _ in range(3):
            start = time.process_time()
            for b in batches:
                model(b)
            passes.append(time.process_time() - start)
    forward = min(passes)
    start = time.process_time()
    _, report = greedyprune.prune(model, batches, flops=args.flops, streams=args.streams, progress=False,
                                  refit=None if args.refit == "none" else args.refit, precision=args.precision)
    seconds = time.process_time() - start
    kind = ("streams" if args.streams else "internal") + ("" if args.refit == "none" else f", refit {args.refit}") \
        + f", {args.precision} products ({report.options['products']})"
    print(f"{args.model} flops {args.flops} {kind}, {args.images} images at {args.size} px, {args.threads} thread(s): "
          f"forward {forward:.2f} s CPU, prune {seconds:.1f} s CPU = {seconds / forward:.2f} forwards "
          f"(FLOPs kept {report.flops_after / report.flops_before:.3f})")
    for label, value in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:32s} {value:7.2f} s  {value / forward:5.2f} forwards")
    print(f"  peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
