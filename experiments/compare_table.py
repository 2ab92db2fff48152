"""Markdown tables of experiment 1 (``compare_methods.py``) for the README, from its JSON results.

One row per FLOPs target and method: FLOPs and parameters kept, top-1 without fine-tuning, after
re-estimating BatchNorm statistics on the calibration images, and after fine-tuning
(mean and, where seeds differ, ``±`` half the range over seeds: the selection seed of ``random``, the
fine-tuning seed of every method), the mean per-group reconstruction error, on how many groups
``reoptimized`` (``reoptimized+streams`` for a ``+streams`` method: the same groups) had a lower error
than this method at the same widths, and (when the fine-tunes logged
curves, ``--eval-every``) the fine-tuning steps each seed needed to come within one point of dense.

    python experiments/compare_table.py experiments/results/compare_resnet18-fmnist.json [...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean

from compare_methods import allocator


def _pct(values: list[float]) -> str:
    if not values or any(v is None for v in values):
        return "-"
    spread = f" ± {50 * (max(values) - min(values)):.2f}" if len(values) > 1 and max(values) > min(values) else ""
    return f"{100 * mean(values):.2f}{spread}"


def _steps(values: list) -> str:
    """Steps to within one point of dense per seed ("never" where a seed's curve did not get there)."""
    return " / ".join("never" if v is None else str(v) for v in values) if values else "-"


def _refit(refit: dict | None) -> str:
    """The global refit's relative feature error before -> after, and its CPU seconds (wall where not recorded)."""
    if not refit:
        return "-"
    cpu = refit.get("cpu_seconds") or 0
    cost = f"{cpu:.0f} CPU s" if cpu else f"{refit['seconds']:.0f} s wall"
    return f"{refit['error_before']:.3f} -> {refit['error_after']:.3f} ({cost})"


def table(results: dict) -> str:
    """The markdown table of one model's runs (targets in decreasing order, ``reoptimized`` first)."""
    runs = list(results["runs"].values())
    curves = any(r.get("curve") for r in runs)
    refits = any(r.get("refit") for r in runs)
    lines = [f"**{results['model']}** (dense top-1 {100 * results['dense_top1']:.2f}; {results['calibration_images']} "
             f"calibration images, {results['test_images']} test images, fine-tune {results['finetune_epochs']:g} epoch "
             f"over {results['finetune_images']} training images)", "",
             "| FLOPs target | method | FLOPs kept | params kept | top-1 pruned | + BN recalibrated | top-1 fine-tuned "
             "| mean group error | groups where reoptimized (same groups) has the lower error |" + (" steps to within 1 point of dense |"
                                                                       if curves else "")
             + (" refit: feature error before -> after (CPU s) |" if refits else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if curves else "") + ("---|" if refits else "")]
    for target in sorted({r["flops_target"] for r in runs}, reverse=True):
        at = [r for r in runs if r["flops_target"] == target]
        methods = sorted({r["method"] for r in at}, key=lambda m: (allocator(m), m != allocator(m), m))
        for method in methods:
            rs = [r for r in at if r["method"] == method]
            errors = [mean(r["group_errors"].values()) for r in rs]
            wins = "-"
            # compared with the run whose widths it was matched to: reoptimized (+streams: reoptimized+streams)
            greedy = next((r for r in at if r["method"] == allocator(method)), None)
            if greedy is not None and method != allocator(method):
                names = greedy["group_errors"]
                won = sum(all(greedy["group_errors"][n] < r["group_errors"][n] for r in rs) for n in names)
                wins = f"{won}/{len(names)}"
            lines.append(f"| {target:.0%} | `{method}` | {rs[0]['flops_after'] / rs[0]['flops_before']:.1%} | "
                         f"{rs[0]['params_after'] / rs[0]['params_before']:.1%} | {_pct([r['top1_pruned'] for r in rs])} | "
                         f"{_pct([r.get('top1_recalibrated') for r in rs])} | {_pct([r['top1_finetuned'] for r in rs])} | {mean(errors):.3f} | {wins} |"
                         + (f" {_steps([r.get('steps_within_1pt') for r in rs])} |" if curves else "")
                         + (f" {_refit(rs[0].get('refit'))} |" if refits else ""))
    return "\n".join(lines)


def pivot(results: dict, key: str = "top1_pruned") -> str:
    """One row per method, one column per FLOPs target: ``key`` (seeds averaged) -- the compact README table."""
    runs = list(results["runs"].values())
    targets = sorted({r["flops_target"] for r in runs}, reverse=True)
    methods = sorted({r["method"] for r in runs}, key=lambda m: (allocator(m), m != allocator(m), m))
    lines = [f"**{results['model']}** (dense {100 * results['dense_top1']:.2f}): `{key}`", "",
             "| method | " + " | ".join(f"{t:.0%} FLOPs" for t in targets) + " |",
             "|---|" + "---|" * len(targets)]
    for method in methods:
        cells = [_pct([r.get(key) for r in runs if r["method"] == method and r["flops_target"] == t]) for t in targets]
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    unreachable = results.get("unreachable", {})
    if unreachable:
        lines += ["", "unreachable: " + "; ".join(f"{k}: {v}" for k, v in unreachable.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="compare_<model>.json files")
    parser.add_argument("--pivot", default=None, help="print one compact table of this key per model instead "
                                                      "(e.g. top1_pruned, top1_finetuned)")
    args = parser.parse_args()
    for path in args.results:
        results = json.loads(Path(path).read_text())
        print(pivot(results, args.pivot) if args.pivot else table(results))
        print()


if __name__ == "__main__":
    main()
