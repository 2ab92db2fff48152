"""Benchmark of whole-network pruning (issues 3 and 15). Prints ratios measured side by side in one run.

Part 1 (issue 3), ``--precisions``: resnet50 at ``--flops``-free ``keep=0.5``, each precision of the
statistics' products in its own fresh process: total pruning time / one forward pass of the original
model over the same calibration images (goal <= 8), peak resident memory after the forward pass alone
and after pruning, CPU speed-up at batch 8.

Part 2 (issue 15), ``--models`` x ``--flops`` x {internal groups only, internal + residual streams}:

* prune time / one calibration forward pass (goal <= 8), each configuration in a fresh process, in wall
  time and in CPU time of the process (``time.process_time``; what a loaded machine distorts least);
* FLOPs and parameters kept;
* CPU latency at batch 8 of the dense model, both greedyprune models and Torch-Pruning (L1 magnitude,
  ``uniform`` and ``global``) pruned to the same FLOPs (counted by the same counter), all measured in
  one fresh process per (model, target), interleaved rounds, median;
* the smallest reachable FLOPs fraction of each setting (every group at its minimum width).

Goals checked and printed: resnet50 at ``--flops 0.3`` with streams >= 2.5x latency speed-up;
greedyprune not slower than the faster Torch-Pruning variant at matched FLOPs on either model.

Random weights (BatchNorm statistics randomised so activations are not trivial) and random images:
the work done does not depend on the values. Results: ``--json`` (default
experiments/results/bench_pipeline.json) with the machine, threads and load average.

    python experiments/bench_pipeline.py                                       # the full benchmark (idle machine)
    python experiments/bench_pipeline.py --size 64 --images 8 --precisions '' --json /tmp/bench.json   # smoke run
    python experiments/bench_pipeline.py --precisions '' --threads 1 --skip-latency --json /tmp/r.json  # ratios only
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

import greedyprune
from greedyprune.io import save_json
from greedyprune.metrics import count_flops, count_parameters, measure_latency
from random_models import randomized
import torch_pruning_match as tpm

RESULTS = Path(__file__).resolve().parent / "results" / "bench_pipeline.json"
VARIANTS = {"internal": False, "streams": True}  # variant -> streams option


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(args, name: str | None = None, images: int | None = None) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    torch.set_num_threads(args.threads)
    model = randomized(name or args.model)
    n = images or args.images
    x = torch.randn(n, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    return model, list(x.split(args.batch))


def forward_seconds(model, batches, repeat: int = 3) -> float:
    """The fastest of ``repeat`` forward passes over all batches (the conservative side of the ratio)."""
    return forward_times(model, batches, repeat)[0]


def forward_times(model, batches, repeat: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds of one forward pass over all batches: the fastest of ``repeat``, each clock its own
    minimum. CPU time is this process's (``time.process_time``): on a loaded machine it counts what the pass
    itself costs, not the time it waited for a core."""
    walls, cpus = [], []
    with torch.no_grad():
        model(batches[0])  # warm-up
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            for b in batches:
                model(b)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
    return min(walls), min(cpus)


def streams_supported() -> bool:
    """Whether this greedyprune offers the choice of group kinds (``streams=``): a Pruner argument or option field."""
    if "streams" in inspect.signature(greedyprune.Pruner.__init__).parameters:
        return True
    try:
        from greedyprune.pipeline.options import PruneOptions
    except ImportError:
        return False
    return "streams" in {f.name for f in dataclasses.fields(PruneOptions)}


def variant_options(variant: str) -> dict:
    return {"streams": VARIANTS[variant]} if streams_supported() else {}


# ------------------------------------------------------------------------------------ part 1 (issue 3)
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


def precision_part(args, context, result: dict) -> None:
    for precision in [p for p in args.precisions.split(",") if p]:
        run = in_child(context, one_precision, args, precision)
        ratio = run["prune_s"] / run["forward_s"]
        result[precision] = {**run, "prune_over_forward": ratio}
        print(f"{args.model}, {args.images} images at {args.size}x{args.size}, {precision} products (fresh process): "
              f"forward {run['forward_s']:.2f} s, prune keep=0.5 {run['prune_s']:.1f} s = {ratio:.2f} x forward "
              f"(goal <= 8); peak RSS {run['peak_rss_after_forward_mb']:.0f} MB after the forward pass, "
              f"{run['peak_rss_after_prune_mb']:.0f} MB after pruning", flush=True)
        if "dense_latency_s" in run:
            speedup = run["dense_latency_s"] / run["pruned_latency_s"]
            result["inference_speedup"] = speedup
            print(f"params {run['params_before']:,} -> {run['params_after']:,}; FLOPs {run['flops_before']:,} -> "
                  f"{run['flops_after']:,} ({run['flops_after'] / run['flops_before']:.1%})")
            print(f"latency batch 8: dense {run['dense_latency_s'] * 1e3:.0f} ms, pruned "
                  f"{run['pruned_latency_s'] * 1e3:.0f} ms, speed-up {speedup:.2f}x", flush=True)


# ------------------------------------------------------------------------------------ part 2 (issue 15)
def prune_run(args, name: str, flops: float, variant: str, path: str, queue) -> None:
    """Fresh process: one calibration forward pass, then the prune; the pruned model goes to ``path``."""
    try:
        model, batches = setup(args, name)
        forward, forward_cpu = forward_times(model, batches)
        start, start_cpu = time.perf_counter(), time.process_time()
        pruned, report = greedyprune.prune(model, batches, flops=flops, progress=False, **variant_options(variant))
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        greedyprune.save(path, pruned, report)
        queue.put({"forward_s": forward, "prune_s": seconds, "prune_over_forward": seconds / forward,
                   "forward_cpu_s": forward_cpu, "prune_cpu_s": cpu, "prune_over_forward_cpu": cpu / forward_cpu,
                   "flops_fraction": report.flops_after / report.flops_before,
                   "params_fraction": report.params_after / report.params_before,
                   "peak_rss_mb": peak_rss_mb(), "groups": len(report.groups)})
    except Exception as err:  # a failed setting is a row with its reason
        queue.put({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"})


def floor_run(args, name: str, variant: str, queue) -> None:
    """The smallest reachable FLOPs fraction: every group at its minimum width (widths do not depend on method)."""
    try:
        model, batches = setup(args, name, images=4)
        pruned, report = greedyprune.prune(model, batches, keep=1e-9, method="magnitude-norefit", progress=False,
                                           **variant_options(variant))
        queue.put({"floor": report.flops_after / report.flops_before})
    except Exception as err:
        queue.put({"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"})


def latency_run(args, name: str, paths: dict[str, str], queue) -> None:
    """Fresh process: dense, greedyprune and Torch-Pruning (same FLOPs) latencies at batch 8, interleaved rounds."""
    model, batches = setup(args, name, images=1)
    example = batches[0][:1]
    dense_flops = count_flops(model, example)
    models, info = {"dense": model}, {}
    for variant, path in paths.items():
        models[variant] = greedyprune.load(path)
    fractions = [count_flops(m, example) / dense_flops for k, m in models.items() if k != "dense"]
    target = sum(fractions) / len(fractions)  # Torch-Pruning matched to the greedyprune models' FLOPs
    if tpm.available():
        for scope in tpm.SCOPES:
            net, info[f"tp-{scope}"] = tpm.prune_to_flops(model, example, target, scope)
            if net is not None:
                models[f"tp-{scope}"] = net
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(args.rounds):
        for key, net in models.items():
            times[key].append(measure_latency(net, example, batch=8, repeat=args.repeat))
    result = {}
    for key, net in models.items():
        latency = sorted(times[key])[len(times[key]) // 2]
        result[key] = {"latency_s": latency, "speedup": result.get("dense", {}).get("latency_s", latency) / latency,
                       "flops_fraction": count_flops(net, example) / dense_flops,
                       "params_fraction": count_parameters(net) / count_parameters(model)}
    for key, extra in info.items():
        result.setdefault(key, {}).update({k: v for k, v in extra.items() if k != "tried"})
    queue.put(result)


def in_child(context, fn, *args):
    """Run ``fn(*args, queue)`` in a fresh (spawned) process and return what it put on the queue."""
    queue = context.Queue()
    child = context.Process(target=fn, args=(*args, queue))
    child.start()
    out = queue.get()
    child.join()
    return out


def pipeline_part(args, context, result: dict) -> None:
    variants = list(VARIANTS) if streams_supported() else ["internal"]
    if not streams_supported():
        print("note: this greedyprune has no streams= option (internal groups only); the streams rows are skipped")
    if not tpm.available():
        print("note: torch_pruning is not installed (pip install 'greedyprune[bench]'); no Torch-Pruning columns")
    rows, floors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if not args.skip_latency:
                floors[name] = {v: in_child(context, floor_run, args, name, v) for v in variants}
            for flops in (float(f) for f in args.flops.split(",")):
                runs, paths = {}, {}
                for variant in variants:
                    path = str(Path(tmp) / f"{name}-{flops}-{variant}.pt")
                    runs[variant] = in_child(context, prune_run, args, name, flops, variant, path)
                    if "error" not in runs[variant]:
                        paths[variant] = path
                latency = in_child(context, latency_run, args, name, paths) if paths and not args.skip_latency else {}
                rows.append({"model": name, "flops": flops, "prune": runs, "latency": latency})
                print_rows(rows[-1:], header=len(rows) == 1)
    result["pipeline"] = {"models": args.models.split(","), "flops": args.flops, "size": args.size,
                          "images": args.images, "streams_supported": streams_supported(), "rows": rows,
                          "floors": floors}
    for name, by_variant in floors.items():
        print(f"{name}: smallest reachable FLOPs fraction: " + ", ".join(
            f"{v} {f['floor']:.2%}" if "floor" in f else f"{v} failed ({f['error']})" for v, f in by_variant.items()))
    result["goals"] = goals(rows)
    for line in result["goals"]["lines"]:
        print(line)


def print_rows(rows: list[dict], header: bool) -> None:
    if header:
        print(f"{'model':<13} {'target':>6} {'pruner':<15} {'FLOPs':>6} {'params':>6} {'prune/fwd':>9} "
              f"{'CPU p/f':>8} {'prune s':>7} {'CPU s':>6} {'latency':>9} {'speed-up':>8}")
    for row in rows:
        lat = row["latency"]
        entries = [(f"greedy {v}", row["prune"][v], lat.get(v, {})) for v in row["prune"]]
        entries += [(k.replace("tp-", "TP "), {}, v) for k, v in lat.items() if k.startswith("tp-")]
        for label, run, measured in entries:
            if not lat and "error" not in run:  # --skip-latency: sizes from the prune run, no latency
                measured = {"flops_fraction": run["flops_fraction"], "params_fraction": run["params_fraction"]}
            if "error" in run or "error" in measured or "floor" in measured:
                reason = run.get("error") or measured.get("error") or f"floor {measured['floor']:.1%} above target"
                print(f"{row['model']:<13} {row['flops']:>6.2f} {label:<15} failed: {reason}")
                continue
            ratio = f"{run['prune_over_forward']:.2f}x" if "prune_over_forward" in run else "-"
            cpu = f"{run['prune_over_forward_cpu']:.2f}x" if "prune_over_forward_cpu" in run else "-"
            seconds = (f"{run['prune_s']:>7.1f} {run['prune_cpu_s']:>6.1f}" if "prune_cpu_s" in run
                       else f"{'-':>7} {'-':>6}")
            latency = (f"{measured['latency_s'] * 1e3:>7.1f}ms {measured['speedup']:>7.2f}x" if "latency_s" in measured
                       else f"{'-':>9} {'-':>8}")
            print(f"{row['model']:<13} {row['flops']:>6.2f} {label:<15} {measured['flops_fraction']:>6.1%} "
                  f"{measured['params_fraction']:>6.1%} {ratio:>9} {cpu:>8} {seconds} {latency}", flush=True)
        if "dense" in lat:
            print(f"{row['model']:<13} {row['flops']:>6.2f} {'dense':<15} {1:>6.1%} {1:>6.1%} {'-':>9} {'-':>8} "
                  f"{'-':>7} {'-':>6} {lat['dense']['latency_s'] * 1e3:>7.1f}ms {1:>7.2f}x", flush=True)


def goals(rows: list[dict]) -> dict:
    """The issue's goals, each as measured here: prune/forward <= 8; resnet50 0.3 streams >= 2.5x; >= Torch-Pruning."""
    lines, checks = [], {}
    for row in rows:
        lat = row["latency"]
        tp = [v["speedup"] for k, v in lat.items() if k.startswith("tp-") and "speedup" in v]
        for variant, run in row["prune"].items():
            if "error" in run or (lat and variant not in lat):
                continue
            key = f"{row['model']}/{row['flops']}/{variant}"
            speedup = lat[variant]["speedup"] if lat else None
            cpu_ratio = run.get("prune_over_forward_cpu")
            checks[key] = {"prune_over_forward": run["prune_over_forward"], "prune_over_forward_cpu": cpu_ratio,
                           "speedup": speedup, "tp_best_speedup": max(tp) if tp else None}
            verdict = [f"prune {run['prune_over_forward']:.2f}x forward ({'met' if run['prune_over_forward'] <= 8 else 'NOT met'}: <= 8)"]
            if cpu_ratio is not None:
                verdict.append(f"CPU time {cpu_ratio:.2f}x ({'met' if cpu_ratio <= 8 else 'NOT met'}: <= 8)")
            if speedup is None:
                lines.append(f"goal {key}: " + "; ".join(verdict))
                continue
            if tp:
                verdict.append(f"speed-up {speedup:.2f}x vs best Torch-Pruning {max(tp):.2f}x "
                               f"({'met' if speedup >= max(tp) else 'NOT met'}: not slower)")
            if row["model"] == "resnet50" and row["flops"] == 0.3 and variant == "streams":
                verdict.append(f"{'met' if speedup >= 2.5 else 'NOT met'}: >= 2.5x")
            lines.append(f"goal {key}: " + "; ".join(verdict))
    return {"checks": checks, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", help="part 1's model")
    parser.add_argument("--models", default="resnet50,mobilenet_v2", help="part 2's models ('' to skip part 2)")
    parser.add_argument("--flops", default="0.5,0.3", help="part 2's FLOPs targets")
    parser.add_argument("--size", type=int, default=224, help="input images are SIZE x SIZE")
    parser.add_argument("--images", type=int, default=64, help="calibration images")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="latency: interleaved rounds (median taken)")
    parser.add_argument("--repeat", type=int, default=10, help="latency: timed passes per round (median taken)")
    parser.add_argument("--precisions", default="float32,float64", help="part 1's precisions ('' to skip part 1)")
    parser.add_argument("--skip-latency", action="store_true",
                        help="part 2: only the prune/forward ratios (wall and CPU time) and sizes; no latency, "
                             "Torch-Pruning or smallest-FLOPs runs")
    parser.add_argument("--json", default=str(RESULTS))
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    result = {"model": args.model, "images": args.images, "size": args.size, "threads": args.threads,
              "torch": torch.__version__, "machine": platform.machine(), "load_average_before": os.getloadavg()}
    started = time.perf_counter()
    precision_part(args, context, result)
    if args.models:
        pipeline_part(args, context, result)
    result["wall_seconds"] = time.perf_counter() - started
    result["load_average_after"] = os.getloadavg()
    print(f"load average before {result['load_average_before'][0]:.2f}, after {result['load_average_after'][0]:.2f}; "
          f"{result['wall_seconds']:.0f} s")
    if args.json:
        save_json(result, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
