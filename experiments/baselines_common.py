"""Helpers shared by the baselines_* experiment scripts: argument parsing, the sparse LeNet-300-100 runs' seeds and
summary rows, mean/std, figure saving."""

from __future__ import annotations

import argparse
import functools
import io
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
RUNS = ROOT / "runs" / "baselines"


def parse(description: str, iterations: int | None = None, rounds: int | None = None,
          collect: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if iterations is not None:
        parser.add_argument("--iterations", type=int, default=iterations, help="training iterations T of every run")
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds, help="IMP rounds (a prefix of the full run)")
    if collect:
        parser.add_argument("--collect", action="store_true",
                            help="train nothing: gather the finished runs' results (for a call that did not finish)")
    parser.add_argument("--seeds", default="0,1", help="comma list of seeds")
    parser.add_argument("--runs", default=None, help="folder for the training runs (resumable)")
    parser.add_argument("--quick", action="store_true", help="tiny budget smoke run (results not meaningful)")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG from the saved JSON")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel (one process of 1 thread each)")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if "OMP_NUM_THREADS" not in os.environ:
        import torch
        torch.set_num_threads(1)
    return args


def _one_thread(fn, item):
    import torch
    torch.set_num_threads(1)
    return fn(item)


def map_seeds(fn, seeds: list[int], jobs: int = 1) -> dict:
    """``{seed: fn(seed)}``, with up to ``jobs`` seeds in parallel worker processes (``fn`` must be picklable)."""
    if jobs <= 1 or len(seeds) <= 1:
        return {seed: fn(seed) for seed in seeds}
    import functools
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(min(jobs, len(seeds)), mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(seeds, pool.map(functools.partial(_one_thread, fn), seeds)))


def sparse_runs(args: argparse.Namespace, one_seed) -> tuple[dict, object]:
    """Every seed's records of a sparse-training comparison (LeNet-300-100, the ``sparse`` recipe; ``--quick``:
    3 epochs): ``one_seed(seed, runs, config, quick, progress) -> {(method, sparsity): record}`` per seed,
    returned as ``({(method, sparsity, seed): record}, the recipe)``."""
    from greedyprune.baselines.recipes import RECIPES
    runs = Path(args.runs) if args.runs else RUNS / ("sparse-quick" if args.quick else "sparse")
    config = RECIPES["sparse"].replace(epochs=3, eval_every=20) if args.quick else RECIPES["sparse"]
    job = functools.partial(one_seed, runs=runs, config=config, quick=args.quick, progress=args.progress)
    return {(method, sparsity, seed): record for seed, records in map_seeds(job, args.seeds, args.jobs).items()
            for (method, sparsity), record in records.items()}, config


def dense_run(seed: int, runs: Path, config, quick: bool, progress: bool) -> tuple:
    """A seed's data splits, its recipe, and its dense reference run (resumable): ``(splits, config, records)``."""
    from greedyprune.baselines import load_splits
    from greedyprune.baselines.rigl import DynamicOptions, run_dynamic
    splits = load_splits("fashion-mnist", 3000 if quick else None)
    config = config.replace(seed=seed)
    dense = run_dynamic("dense", "lenet300-100", splits, config, DynamicOptions(), runs / f"dense-seed{seed}",
                        progress=progress)
    return splits, config, {("dense", 0.0): dense}


def summary_row(method: str, sparsity: float, records: list[dict]) -> dict:
    """What every sparse comparison reports for one method and sparsity over its seeds' records."""
    return {"method": method, "sparsity": sparsity, "nonzero": records[0]["nonzero"], "macs": records[0]["macs"],
            "test_acc": mean_std([r["test_acc"] for r in records]),
            "test_acc_at_early_stop": mean_std([r["test_acc_at_early_stop"] for r in records]),
            "train_seconds": mean_std([r["seconds"] for r in records])}


def mean_std(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values), "values": values}


def pm(stats: dict, scale: float = 100.0, digits: int = 2) -> str:
    if stats["mean"] is None:
        return "-"
    text = f"{scale * stats['mean']:.{digits}f}"
    if stats["std"] is not None:
        text += f" ± {scale * stats['std']:.{digits}f}"
    return text


def load_results(name: str) -> dict:
    import json
    return json.loads((RESULTS / f"{name}.json").read_text())


def percent_axis(ax) -> None:
    """Log x axis of 'weights remaining (%)' with plain percentage ticks, dense on the left."""
    from matplotlib.ticker import FixedLocator, NullFormatter, StrMethodFormatter
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([100, 50, 20, 10, 5, 3.6]))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_xaxis()


def save_figure(fig, path: Path) -> None:
    from greedyprune.io import atomic_write
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


class Clock:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start
