"""Benchmark (issue 8): calibration statistics with 1 rank vs 2 ranks (torchrun, gloo) on this machine.

Each configuration runs in fresh processes. The fair pair gets the same CPU cores in total: 1 rank
with ``cores`` torch threads vs 2 ranks with ``cores / 2`` threads each; 1 rank with ``cores / 2``
threads is run too (what one rank of the pair would do alone). Timed on rank 0, between barriers:

* ``statistics``: every channel group's statistics (``model_group_problems``: the graph walker's cuts,
  H/M/means/energy accumulated in float64 from float32 products) over this rank's shard of the
  calibration batches, split into ``accumulate`` (``add_batch``: the part the ranks share out),
  ``all_reduce`` (summing H, M, ... over ranks) and ``finalise`` (H, M -> G, b, E: every rank repeats
  it); the rest is the forward passes (also shared out);
* ``prune``: a whole ``Pruner`` run (keep 0.5): sharded statistics as above plus the selection and
  surgery, which every rank repeats (only the statistics are split).

Random weights (BatchNorm statistics randomised) and random images: the work does not depend on the
values. Configurations alternate (1, 2, 1, 2, ...) so a change in the machine's load hits both; the
1-minute load average is recorded around every run. The ratio printed is time(1 rank) / time(2 ranks)
(medians over the repeats): above 1 means 2 ranks were faster.

    python experiments/bench_distributed.py [--model resnet18] [--images 64] [--batch 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics as stats_lib
import subprocess
import sys
import time
from pathlib import Path

import torch

TAG = "BENCH-RESULT "


def _timed(cls, name: str, totals: dict) -> None:
    """Wrap method ``cls.name`` so its cumulative wall time lands in ``totals[name]``."""
    method = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - start
    setattr(cls, name, wrapper)


def worker(args: argparse.Namespace) -> None:
    """One rank (or the single process): time the statistics pass and a Pruner run; rank 0 prints JSON."""
    import greedyprune
    from greedyprune.distributed import barrier, destroy, init_from_env, shard, world
    from greedyprune.stats import ConsumerStatistics
    from greedyprune.pipeline.statistics import model_group_problems

    from random_models import randomized

    init_from_env("cpu")
    rank, size = world()
    torch.set_num_threads(args.threads)
    try:
        model = randomized(args.model)
        images = torch.randn(args.images, 3, 224, 224, generator=torch.Generator().manual_seed(0))
        batches = list(images.split(args.batch))
        with torch.no_grad():
            model(batches[0])  # warm-up (allocator, kernels)
        totals: dict[str, float] = {}
        for name in ("add_batch", "reduce", "statistics"):
            _timed(ConsumerStatistics, name, totals)
        barrier()
        start = time.perf_counter()
        groups = sum(1 for _ in model_group_problems(model, shard(batches), precision="float32"))
        barrier()
        seconds_stats = time.perf_counter() - start
        parts = {"accumulate_s": totals["add_batch"], "all_reduce_s": totals["reduce"],
                 "finalise_s": totals["statistics"] - totals["reduce"],
                 "forward_s": seconds_stats - totals["add_batch"] - totals["statistics"]}
        start = time.perf_counter()
        _, report = greedyprune.prune(model, batches, keep=0.5, precision="float32", refit=None,
                                      progress=False)  # sharded statistics + selection, as recorded: no refit
        barrier()
        seconds_prune = time.perf_counter() - start
        if rank == 0:
            print(TAG + json.dumps({"ranks": size, "threads_per_rank": torch.get_num_threads(), "groups": groups,
                                    "images_per_rank": sum(b.shape[0] for b in shard(batches)),
                                    "statistics_s": seconds_stats, **parts, "prune_s": seconds_prune,
                                    "calibration_images": report.calibration_images}), flush=True)
    finally:
        destroy()


def launch(args: argparse.Namespace, ranks: int, threads: int) -> dict:
    """Run :func:`worker` in fresh processes (``threads`` each): plain Python for 1 rank, torchrun for more."""
    script = [str(Path(__file__).resolve()), "--worker", "--model", args.model, "--images", str(args.images),
              "--batch", str(args.batch), "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if ranks == 1:
        command = [sys.executable] + script
    else:
        command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", f"--nproc_per_node={ranks}"] + script
    load_before = os.getloadavg()[0]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{ranks}-rank run failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith(TAG))
    return {**json.loads(line[len(TAG):]), "load_before": load_before, "load_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU cores shared by the ranks")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="output file (default experiments/results/bench_distributed.json)")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from greedyprune.io import save_json
    from greedyprune.paths import results_dir

    half = max(1, args.cores // 2)
    configs = {"1 rank x all cores": (1, args.cores), "2 ranks x half": (2, half), "1 rank x half": (1, half)}
    runs = []
    for repeat in range(args.repeats):
        for label, (ranks, threads) in configs.items():
            run = {"config": label, **launch(args, ranks, threads)}
            runs.append(run)
            print(f"repeat {repeat}: {ranks} rank(s) x {threads} thread(s): statistics {run['statistics_s']:.1f} s "
                  f"(forward {run['forward_s']:.1f}, accumulate {run['accumulate_s']:.1f}, all-reduce "
                  f"{run['all_reduce_s']:.1f}, finalise {run['finalise_s']:.1f}), whole prune {run['prune_s']:.1f} s "
                  f"(load {run['load_before']:.1f} -> {run['load_after']:.1f})", flush=True)
    summary = {label: {key: stats_lib.median(r[key] for r in runs if r["config"] == label)
                       for key in ("statistics_s", "forward_s", "accumulate_s", "all_reduce_s", "finalise_s", "prune_s")}
               for label in configs}
    for key in ("statistics_s", "prune_s"):
        one, two = summary["1 rank x all cores"][key], summary["2 ranks x half"][key]
        alone = summary["1 rank x half"][key]
        summary[f"ratio_{key[:-2]}"] = {"one_rank_all_cores_over_two_ranks": one / two,
                                        "one_rank_half_cores_over_two_ranks": alone / two}
        print(f"{key[:-2]}: 1 rank x {args.cores} threads {one:.1f} s, 2 ranks x {half} {two:.1f} s -> "
              f"{one / two:.2f}x ({'2 ranks faster' if one > two else '2 ranks not faster'}); "
              f"1 rank x {half} {alone:.1f} s -> {alone / two:.2f}x")
    result = {"model": args.model, "images": args.images, "batch": args.batch, "resolution": 224,
              "cores": args.cores, "os_cpu_count": os.cpu_count(), "torch": torch.__version__,
              "machine": platform.machine(), "command": " ".join(sys.argv), "summary": summary, "runs": runs}
    save_json(result, args.json or results_dir() / "bench_distributed.json")


if __name__ == "__main__":
    main()
