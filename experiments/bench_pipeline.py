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
  one fresh process per (model, target), interleaved rounds (the order rotates every round), median;
  each pass timed twice: wall clock and this thread's CPU time (``time.thread_time``: on a loaded
  machine it leaves out the time the other jobs hold the core, which wall-clock medians of a few
  rounds do not; with ``--threads 1`` all the work runs on this thread);
* ``--round-to 1,8``: the greedyprune rows again with ``round_to=8`` (kept widths multiples of 8), and
  Torch-Pruning with its own ``round_to=8``, rows ``.../r8``;
* the smallest reachable FLOPs fraction of each setting (every group at its minimum width).

Goals checked and printed: resnet50 at ``--flops 0.3`` with streams >= 2.5x latency speed-up;
greedyprune not slower than the faster Torch-Pruning variant at matched FLOPs on either model.

Every prune runs with the global refit off (``refit=None``): the ratios measure the selection (statistics,
greedy picks, surgery), as in the recorded runs; the refit's cost is its own (README "Global refit").

Random weights (BatchNorm statistics randomised so activations are not trivial) and random images:
the work done does not depend on the values. Results: ``--json`` (default
experiments/results/bench_pipeline.json) with the machine, threads and load average.

    python experiments/bench_pipeline.py                                       # the full benchmark (idle machine)
    python experiments/bench_pipeline.py --size 64 --images 8 --precisions '' --json /tmp/bench.json   # smoke run
    python experiments/bench_pipeline.py --precisions '' --models resnet50 --flops 0.3 --variants streams \
        --round-to 1,8 --threads 1 --rounds 7 --repeat 5 --json /tmp/r50.json        # the round_to comparison
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
from greedyprune.errors import UserError
from greedyprune.io import check_writable, save_json
from greedyprune.metrics import count_flops, count_parameters, measure_latency
from random_models import randomized
import torch_pruning_match as tpm

RESULTS = Path(__file__).resolve().parent / "results" / "bench_pipeline.json"
# variant -> options; "+lat": widths allocated by the measured latency they save (allocation="latency");
# "+bf16": the statistics' products in the bfloat16 math mode (precision="bfloat16", greedyprune.stats.precision)
VARIANTS = {"internal": {"streams": False}, "streams": {"streams": True},
            "internal+lat": {"streams": False, "allocation": "latency"},
            "streams+lat": {"streams": True, "allocation": "latency"},
            "internal+bf16": {"streams": False, "precision": "bfloat16"},
            "streams+bf16": {"streams": True, "precision": "bfloat16"},
            "streams+lat+bf16": {"streams": True, "allocation": "latency", "precision": "bfloat16"}}


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


def supported(option: str) -> bool:
    """Whether this greedyprune offers ``option`` (e.g. ``streams=``): a Pruner argument or option field."""
    if option in inspect.signature(greedyprune.Pruner.__init__).parameters:
        return True
    try:
        from greedyprune.pipeline.options import PruneOptions
    except ImportError:
        return False
    return option in {f.name for f in dataclasses.fields(PruneOptions)}


def streams_supported() -> bool:
    return supported("streams")


def selection_only() -> dict:
    """The global refit off: the prune/forward ratio measures selection (greedy picks, surgery), as recorded
    (issue 15) -- the refit, the default for greedy methods since issue 16, would add ~1.1 x refit_iters
    forward+backward passes. Versions without the option had no refit."""
    return {"refit": None} if supported("refit") else {}


def variant_supported(variant: str) -> bool:
    return variant in VARIANTS and all(supported(k) for k, v in VARIANTS[variant].items() if v is not False) and (
        VARIANTS[variant].get("allocation") != "latency" or supported("latency"))


def variant_options(variant: str) -> dict:
    chosen = {k: v for k, v in VARIANTS[variant].items() if supported(k)}
    return {**chosen, **selection_only()}


# ------------------------------------------------------------------------------------ part 1 (issue 3)
def one_precision(args, precision: str, queue) -> None:
    """In a fresh process: forward pass, then pruning, side by side; peak RSS of each phase is this process's own."""
    model, batches = setup(args)
    forward = forward_seconds(model, batches)
    rss_forward = peak_rss_mb()
    start = time.perf_counter()
    pruned, report = greedyprune.prune(model, batches, keep=0.5, precision=precision, progress=False,
                                       **selection_only())
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
def split_variant(key: str) -> tuple[str, int]:
    """``"streams/r8"`` -> ``("streams", 8)``; ``"streams"`` -> ``("streams", 1)`` (a Torch-Pruning row's
    ``@variants`` tag, :func:`matched_targets`, is ignored)."""
    variant, _, rounding = key.partition("@")[0].partition("/r")
    return variant, int(rounding or 1)


# greedyprune rows whose FLOPs fractions differ by less than this share one set of Torch-Pruning rows
MATCH_TOLERANCE = 0.005


def matched_targets(fractions: dict[str, float]) -> list[tuple[float, list[str]]]:
    """``(FLOPs fraction, greedyprune keys)`` to match Torch-Pruning to: rows within :data:`MATCH_TOLERANCE` of
    the lowest of a cluster share their mean; rows further apart get their own (e.g. MobileNetV2 at 0.3:
    ``streams`` 26.0%, ``streams+lat`` 29.4% -- one mean target would give ``+lat`` a Torch-Pruning with fewer
    FLOPs)."""
    clusters: list[list[str]] = []
    for key in sorted(fractions, key=fractions.get):
        if clusters and fractions[key] - fractions[clusters[-1][0]] < MATCH_TOLERANCE:
            clusters[-1].append(key)
        else:
            clusters.append([key])
    return [(sum(fractions[k] for k in c) / len(c), c) for c in clusters]


def tp_matches(tp_key: str, variant: str) -> bool:
    """Whether Torch-Pruning row ``tp_key`` was matched to greedyprune ``variant``'s FLOPs (untagged: to all)."""
    tag = tp_key.partition("@")[2]
    return not tag or variant in tag.split(",")


def variant_keys(args) -> list[str]:
    variants = [v for v in args.variants.split(",") if variant_supported(v)]
    return [v if r == 1 else f"{v}/r{r}" for r in round_tos(args) for v in variants]


def round_tos(args) -> list[int]:
    return [int(r) for r in str(args.round_to).split(",") if r]


def prune_run(args, name: str, flops: float, key: str, path: str, queue) -> None:
    """Fresh process: one calibration forward pass, then the prune; the pruned model goes to ``path``."""
    try:
        model, batches = setup(args, name)
        forward, forward_cpu = forward_times(model, batches)
        variant, round_to = split_variant(key)
        rounding = {"round_to": round_to} if round_to != 1 else {}
        start, start_cpu = time.perf_counter(), time.process_time()
        pruned, report = greedyprune.prune(model, batches, flops=flops, progress=False, **variant_options(variant),
                                           **rounding)
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


def timed_passes(model, example, batch: int, repeat: int, warmup: int = 2) -> tuple[float, float]:
    """Median wall seconds and median thread-CPU seconds of ``repeat`` forward passes at ``batch`` (after warm-up)."""
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    model.eval()
    wall, cpu = [], []
    with torch.no_grad():
        for i in range(warmup + repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            model(x)
            if i >= warmup:
                wall.append(time.perf_counter() - start)
                cpu.append(time.thread_time() - start_cpu)
    return median(wall), median(cpu)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def latency_run(args, name: str, paths: dict[str, str], queue) -> None:
    """Fresh process: dense, greedyprune and Torch-Pruning (same FLOPs) latencies at batch 8, interleaved rounds."""
    model, batches = setup(args, name, images=1)
    example = batches[0][:1]
    dense_flops = count_flops(model, example)
    models, info = {"dense": model}, {}
    for variant, path in paths.items():
        models[variant] = greedyprune.load(path)
    fractions = {k: count_flops(m, example) / dense_flops for k, m in models.items() if k != "dense"}
    if tpm.available():  # Torch-Pruning matched to the greedyprune models' FLOPs (per cluster, matched_targets)
        for round_to in round_tos(args):
            targets = matched_targets({k: f for k, f in fractions.items() if split_variant(k)[1] == round_to})
            for target, keys in targets:
                tag = "" if len(targets) == 1 else "@" + ",".join(split_variant(k)[0] for k in keys)
                for scope in tpm.SCOPES:
                    key = (f"tp-{scope}" if round_to == 1 else f"tp-{scope}/r{round_to}") + tag
                    net, info[key] = tpm.prune_to_flops(model, example, target, scope, round_to=round_to)
                    if net is not None:
                        models[key] = net
    wall: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    order = list(models)
    for round_ in range(args.rounds):
        for key in order[round_ % len(order):] + order[:round_ % len(order)]:  # rotated: no fixed position
            w, c = timed_passes(models[key], example, batch=8, repeat=args.repeat)
            wall[key].append(w)
            cpu[key].append(c)
    result = {}
    for key, net in models.items():
        latency, cpu_s = median(wall[key]), median(cpu[key])
        dense = result.get("dense", {})
        result[key] = {"latency_s": latency, "speedup": dense.get("latency_s", latency) / latency,
                       "cpu_s": cpu_s, "cpu_speedup": dense.get("cpu_s", cpu_s) / cpu_s,
                       "rounds_s": wall[key], "rounds_cpu_s": cpu[key],
                       "flops_fraction": count_flops(net, example) / dense_flops,
                       "params_fraction": count_parameters(net) / count_parameters(model)}
    for key, extra in info.items():
        result.setdefault(key, {}).update({k: v for k, v in extra.items() if k != "tried"})
    result["load_average"] = os.getloadavg()
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
    variants = variant_keys(args)
    if not streams_supported():
        print("note: this greedyprune has no streams= option (internal groups only); the streams rows are skipped")
    if not tpm.available():
        print("note: torch_pruning is not installed (pip install 'greedyprune[bench]'); no Torch-Pruning columns")
    rows, floors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if not args.skip_latency:
                floors[name] = {v: in_child(context, floor_run, args, name, v) for v in variants if "/" not in v}
            for flops in (float(f) for f in args.flops.split(",")):
                runs, paths = {}, {}
                for variant in variants:
                    path = str(Path(tmp) / f"{name}-{flops}-{variant.replace('/', '-')}.pt")
                    runs[variant] = in_child(context, prune_run, args, name, flops, variant, path)
                    if "error" not in runs[variant]:
                        paths[variant] = path
                latency = in_child(context, latency_run, args, name, paths) if paths and not args.skip_latency else {}
                rows.append({"model": name, "flops": flops, "prune": runs, "latency": latency})
                print_rows(rows[-1:], header=len(rows) == 1)
    result["pipeline"] = {"models": args.models.split(","), "flops": args.flops, "size": args.size,
                          "images": args.images, "streams_supported": streams_supported(), "rows": rows,
                          "round_to": args.round_to, "rounds": args.rounds, "repeat": args.repeat,
                          "floors": floors}
    for name, by_variant in floors.items():
        print(f"{name}: smallest reachable FLOPs fraction: " + ", ".join(
            f"{v} {f['floor']:.2%}" if "floor" in f else f"{v} failed ({f['error']})" for v, f in by_variant.items()))
    result["goals"] = goals(rows)
    for line in result["goals"]["lines"]:
        print(line)


def print_rows(rows: list[dict], header: bool) -> None:
    if header:
        print(f"{'model':<13} {'target':>6} {'pruner':<26} {'FLOPs':>6} {'params':>6} {'prune/fwd':>9} "
              f"{'CPU p/f':>8} {'latency':>9} {'speed-up':>8} {'CPU time':>9} {'speed-up':>8}")
    for row in rows:
        lat = row["latency"]
        entries = [(f"greedy {v}", row["prune"][v], lat.get(v, {})) for v in row["prune"]]
        entries += [(k.replace("tp-", "TP "), {}, v) for k, v in lat.items() if k.startswith("tp-")]
        if "load_average" in lat:
            print(f"(latency process: load average {lat['load_average'][0]:.2f} at its end)")
        for label, run, measured in entries:
            if not lat and "error" not in run:  # --skip-latency: sizes from the prune run, no latency
                measured = {"flops_fraction": run["flops_fraction"], "params_fraction": run["params_fraction"]}
            if "error" in run or "error" in measured or "floor" in measured:
                reason = (run.get("error") or measured.get("error") or measured.get("reason")
                          or f"floor {measured['floor']:.1%} above target")
                print(f"{row['model']:<13} {row['flops']:>6.2f} {label:<26} failed: {reason}")
                continue
            ratio = f"{run['prune_over_forward']:.2f}x" if "prune_over_forward" in run else "-"
            cpu = f"{run['prune_over_forward_cpu']:.2f}x" if "prune_over_forward_cpu" in run else "-"
            latency = (f"{measured['latency_s'] * 1e3:>7.1f}ms {measured['speedup']:>7.2f}x "
                       f"{measured['cpu_s'] * 1e3:>7.1f}ms {measured['cpu_speedup']:>7.2f}x" if "latency_s" in measured
                       else f"{'-':>9} {'-':>8} {'-':>9} {'-':>8}")
            print(f"{row['model']:<13} {row['flops']:>6.2f} {label:<26} {measured['flops_fraction']:>6.1%} "
                  f"{measured['params_fraction']:>6.1%} {ratio:>9} {cpu:>8} {latency}", flush=True)
        if "dense" in lat:
            print(f"{row['model']:<13} {row['flops']:>6.2f} {'dense':<26} {1:>6.1%} {1:>6.1%} {'-':>9} {'-':>8} "
                  f"{lat['dense']['latency_s'] * 1e3:>7.1f}ms {1:>7.2f}x {lat['dense']['cpu_s'] * 1e3:>7.1f}ms "
                  f"{1:>7.2f}x", flush=True)


def goals(rows: list[dict]) -> dict:
    """The issue's goals, each as measured here: prune/forward <= 8; resnet50 0.3 streams >= 2.5x; >= Torch-Pruning.

    Speed-ups by wall clock and by thread CPU time; a greedyprune row is compared with the Torch-Pruning
    rows of the same ``round_to`` (``/rN``), so neither side is given a rounding the other lacks, matched to
    its own FLOPs (:func:`matched_targets`).
    """
    lines, checks = [], {}
    for row in rows:
        lat = row["latency"]
        for key, run in row["prune"].items():
            if "error" in run or (lat and key not in lat):
                continue
            variant, round_to = split_variant(key)
            tail = "" if round_to == 1 else f"/r{round_to}"
            tp = {k: v for k, v in lat.items() if k.startswith("tp-") and "speedup" in v
                  and split_variant(k)[1] == round_to and tp_matches(k, variant)}
            name = f"{row['model']}/{row['flops']}/{key}"
            measured = lat.get(key, {})
            cpu_ratio = run.get("prune_over_forward_cpu")
            checks[name] = {"prune_over_forward": run["prune_over_forward"], "prune_over_forward_cpu": cpu_ratio,
                            "speedup": measured.get("speedup"), "cpu_speedup": measured.get("cpu_speedup"),
                            "tp_best_speedup": max((v["speedup"] for v in tp.values()), default=None),
                            "tp_best_cpu_speedup": max((v["cpu_speedup"] for v in tp.values()), default=None)}
            verdict = [f"prune {run['prune_over_forward']:.2f}x forward ({'met' if run['prune_over_forward'] <= 8 else 'NOT met'}: <= 8)"]
            if cpu_ratio is not None:
                verdict.append(f"CPU time {cpu_ratio:.2f}x ({'met' if cpu_ratio <= 8 else 'NOT met'}: <= 8)")
            if not measured:  # --skip-latency
                lines.append(f"goal {name}: " + "; ".join(verdict))
                continue
            for clock, field in (("wall", "speedup"), ("CPU time", "cpu_speedup")):
                if tp:
                    best = max(v[field] for v in tp.values())
                    verdict.append(f"{clock} speed-up {measured[field]:.2f}x vs best Torch-Pruning{tail} {best:.2f}x "
                                   f"({'met' if measured[field] >= best else 'NOT met'}: not slower)")
            if row["model"] == "resnet50" and row["flops"] == 0.3 and variant == "streams":
                verdict.append(f"{'met' if measured['speedup'] >= 2.5 else 'NOT met'}: >= 2.5x")
            lines.append(f"goal {name}: " + "; ".join(verdict))
    return {"checks": checks, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", help="part 1's model")
    parser.add_argument("--models", default="resnet50,mobilenet_v2", help="part 2's models ('' to skip part 2)")
    parser.add_argument("--flops", default="0.5,0.3", help="part 2's FLOPs targets")
    parser.add_argument("--variants", default="internal,streams", help="part 2's greedyprune variants: internal, streams, internal+lat, streams+lat, internal+bf16, "
                             "streams+bf16, streams+lat+bf16 (+lat: allocation='latency'; +bf16: precision='bfloat16')")
    parser.add_argument("--round-to", default="1", help="part 2: greedyprune round_to values (and Torch-Pruning's), "
                                                        "e.g. 1,8: every row with and without rounding")
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
    if args.json:
        try:
            check_writable(args.json)  # before minutes of runs, not after them
        except UserError as err:
            raise SystemExit(f"error: --json: {err}") from None
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
