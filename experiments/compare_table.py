"""Markdown tables of experiment 1 (``compare_methods.py``) for the README, from its JSON results.

One row per FLOPs target and method: FLOPs and parameters kept, top-1 without fine-tuning, after
re-estimating BatchNorm statistics on the calibration images, and after fine-tuning
(mean and, where seeds differ, ``±`` half the range over seeds: the selection seed of ``random``, the
fine-tuning seed of every method), the mean per-group reconstruction error, and on
how many groups ``reoptimized`` had a lower error than this method at the same widths.

    python experiments/compare_table.py experiments/results/compare_resnet18-fmnist.json [...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from statistics import mean


def _pct(values: list[float]) -> str:
    if not values or any(v is None for v in values):
        return "-"
    spread = f" ± {50 * (max(values) - min(values)):.2f}" if len(values) > 1 and max(values) > min(values) else ""
    return f"{100 * mean(values):.2f}{spread}"


def table(results: dict) -> str:
    """The markdown table of one model's runs (targets in decreasing order, ``reoptimized`` first)."""
    runs = list(results["runs"].values())
    lines = [f"**{results['model']}** (dense top-1 {100 * results['dense_top1']:.2f}; {results['calibration_images']} "
             f"calibration images, {results['test_images']} test images, fine-tune {results['finetune_epochs']:g} epoch "
             f"over {results['finetune_images']} training images)", "",
             "| FLOPs target | method | FLOPs kept | params kept | top-1 pruned | + BN recalibrated | top-1 fine-tuned "
             "| mean group error | groups where reoptimized error is lower |", "|---|---|---|---|---|---|---|---|---|"]
    for target in sorted({r["flops_target"] for r in runs}, reverse=True):
        at = [r for r in runs if r["flops_target"] == target]
        greedy = next((r for r in at if r["method"] == "reoptimized"), None)
        methods = sorted({r["method"] for r in at}, key=lambda m: (m != "reoptimized", m))
        for method in methods:
            rs = [r for r in at if r["method"] == method]
            errors = [mean(r["group_errors"].values()) for r in rs]
            wins = "-"
            if greedy is not None and method != "reoptimized":
                names = greedy["group_errors"]
                won = sum(all(greedy["group_errors"][n] < r["group_errors"][n] for r in rs) for n in names)
                wins = f"{won}/{len(names)}"
            lines.append(f"| {target:.0%} | `{method}` | {rs[0]['flops_after'] / rs[0]['flops_before']:.1%} | "
                         f"{rs[0]['params_after'] / rs[0]['params_before']:.1%} | {_pct([r['top1_pruned'] for r in rs])} | "
                         f"{_pct([r.get('top1_recalibrated') for r in rs])} | {_pct([r['top1_finetuned'] for r in rs])} | {mean(errors):.3f} | {wins} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="compare_<model>.json files")
    for path in parser.parse_args().results:
        print(table(json.loads(Path(path).read_text())))
        print()


if __name__ == "__main__":
    main()
