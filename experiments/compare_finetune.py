"""Fine-tuning for ``compare_methods.py``: resumable runs, a top-1-vs-steps curve, steps to near-dense top-1.

A fine-tune trains the pruned model in ``run_dir`` (``greedyprune.train.train``: checkpoints every
``eval_every`` steps, so a killed run continues where it stopped and ends bit-identical). With
``eval_every = K > 0`` top-1 on a fixed test subset (the *curve set*) is logged every ``K`` steps;
step 0 is the pruned model before any training. ``steps_within(curve, dense, 0.01)`` is the first
logged step whose top-1 is within one point of the dense model's on the same subset (None: never).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from greedyprune.data import get_dataset, subset
from greedyprune.io import atomic_write
from greedyprune.train import TrainConfig, evaluate, train

ROOT = Path(__file__).resolve().parent.parent


def fine_tune(model: nn.Module, images: int, epochs: float, seed: int, *, run_dir: Path | None = None,
              eval_every: int = 0, curve_set: Dataset | None = None, lr: float = 0.01,
              batch_size: int = 64) -> list[list[float]]:
    """Fine-tune ``model`` in place (SGD, cosine, label smoothing 0.1); returns the curve ``[[step, top1], ...]``.

    ``images`` training images (a seeded subset; all 60,000 when ``images >= 60000``), ``epochs`` passes.
    """
    data = subset(get_dataset("fashion-mnist", "train"), images, seed=100 + seed)
    logging = eval_every > 0 and curve_set is not None
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=5e-5, label_smoothing=0.1,
                         seed=seed, eval_every=eval_every if logging else 0,
                         checkpoint_every=eval_every if logging else 0)
    curve = [[0, evaluate(model, curve_set)["top1"]]] if logging else []
    result = train(model, data, config, run_dir=run_dir, val_set=curve_set if logging else None, progress=False)
    model.eval()
    if logging:
        curve += [[h["step"], h["val_acc"]] for h in result.history if h["val_acc"] is not None]
    return curve


def steps_within(curve: list[list[float]], dense: float, points: float = 0.01) -> int | None:
    """First logged step with top-1 >= ``dense - points`` (None if the curve never gets there)."""
    return next((int(step) for step, top1 in curve if top1 >= dense - points), None)


def curve_set_of(images: int) -> Dataset:
    """The fixed test subset the curves are measured on (seed 1, so it differs from the main test subset)."""
    return subset(get_dataset("fashion-mnist", "test"), images, seed=1)


def run_dir_of(out: Path, key: str, runs: str | None = None) -> Path:
    """Where the fine-tune of run ``key`` of results file ``out`` checkpoints (default: the git-ignored runs/)."""
    return (Path(runs) if runs else ROOT / "runs" / "compare") / out.stem / key.replace("/", "_")


def plot_curves(results: dict, path: Path, colors: dict) -> None:
    """Top-1 on the curve set against fine-tuning steps, one panel per FLOPs target, one line per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [r for r in results["runs"].values() if r.get("curve")]
    targets = sorted({r["flops_target"] for r in runs}, reverse=True)
    if not targets:
        return
    fig, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4.2), sharey=True, squeeze=False)
    for ax, target in zip(axes[0], targets):
        shown = set()
        for run in sorted((r for r in runs if r["flops_target"] == target), key=lambda r: (r["method"], r["seed"])):
            steps, top1 = zip(*run["curve"])
            ax.plot(steps, [100 * t for t in top1], "-", color=colors.get(run["method"]), alpha=0.8,
                    label=None if run["method"] in shown else run["method"])
            shown.add(run["method"])
        dense = 100 * results["curve_dense_top1"]
        ax.axhline(dense, color="gray", ls=":", label="dense")
        ax.axhline(dense - 1, color="gray", ls="--", lw=0.8, label="dense - 1 point")
        ax.set_title(f"{target:.0%} FLOPs")
        ax.set_xlabel("fine-tuning steps")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"top-1 on {results['curve_images']} test images (%)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"{results['model']}: top-1 during fine-tuning")
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
