"""What the 2 gloo ranks run, once per test session: every library-level job in one spawn.

Starting two Python processes that import torch, torchvision and greedyprune costs far more than the
jobs themselves on a small machine, so :func:`run_two_ranks` spawns the ranks once and each runs every
job in :data:`JOBS`, saving its results as ``OUT/JOB-rankR.pt``. The tests compare those files to the
same job run in the test process (``world_size = 1``). The single-process side uses the same functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import greedyprune
from greedyprune.data import get_dataset
from greedyprune.train import TrainConfig, train

from ..pipeline.conftest import mlp, tv_model

# --- pruning: 4 batches of 6 images, sharded 2 + 2 ------------------------------------------------
DAMPING = 1e-3  # see test_prune_ranks.py
PRUNE_MODELS = {"mlp": (mlp, (1, 8, 8), {"flops": 0.6}),
                "mobilenet_v3_small": (lambda: tv_model("mobilenet_v3_small"), (3, 40, 40), {"keep": 0.5})}


def calibration(name: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, *PRUNE_MODELS[name][1], generator=g) for _ in range(4)]


def prune_job(name: str):
    build, _, budget = PRUNE_MODELS[name]
    return greedyprune.prune(build(), calibration(name), "reoptimized", **budget, progress=False, damping=DAMPING)


# --- training: an MLP without BatchNorm or dropout ------------------------------------------------
TRAIN_DATA = get_dataset("random:1x8x8", n=100, num_classes=4)  # 100 % 16 != 0: the partial batch is dropped
VAL_DATA = get_dataset("random:1x8x8", "val", n=37, num_classes=4)  # odd: the ranks score 19 and 18 images
# 3 epochs of 6 steps (the permutation changes twice); momentum, warm-up, cosine, decay, smoothing
TRAIN_CONFIG = TrainConfig(max_steps=17, batch_size=16, lr=0.05, momentum=0.9, warmup_steps=3, weight_decay=1e-3,
                           label_smoothing=0.1, seed=5, eval_every=6, checkpoint_every=4)
CRASH_AT = 10  # the interrupted run stops after this step; its last checkpoint is step 8


def train_model() -> nn.Module:
    torch.manual_seed(11)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 4))


class Crash:
    """Stops the run after step ``at`` on every rank, as a kill would (after the step-8 checkpoint)."""

    def __init__(self, at: int):
        self.at = at

    def after_step(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt("simulated kill")


def train_job(run_dir: Path) -> dict:
    model = train_model()
    result = train(model, TRAIN_DATA, TRAIN_CONFIG, run_dir=run_dir, val_set=VAL_DATA, progress=False)
    return {"state": model.state_dict(), "history": result.history, "steps": result.steps}


def interrupted_train_job(run_dir: Path) -> dict:
    try:
        train(train_model(), TRAIN_DATA, TRAIN_CONFIG, run_dir=run_dir, val_set=VAL_DATA, callbacks=[Crash(CRASH_AT)],
              progress=False)
    except KeyboardInterrupt:
        pass
    model = train_model()  # a fresh process would start from fresh weights; the checkpoint replaces them
    result = train(model, TRAIN_DATA, TRAIN_CONFIG, run_dir=run_dir, val_set=VAL_DATA, progress=False)
    return {"state": model.state_dict(), "history": result.history, "steps": result.steps}


def _rank(rank: int, world_size: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(out_dir, 'init')}", rank=rank,
                            world_size=world_size)
    out = Path(out_dir)
    try:
        for name in PRUNE_MODELS:
            pruned, report = prune_job(name)
            torch.save({"state": {k: v.clone() for k, v in pruned.state_dict().items()},
                        "images": report.calibration_images}, out / f"prune-{name}-rank{rank}.pt")
        torch.save(train_job(out / "ddp"), out / f"train-rank{rank}.pt")
        torch.save(interrupted_train_job(out / "ddp-interrupted"), out / f"interrupted-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def run_two_ranks(out_dir: Path) -> Path:
    mp.spawn(_rank, args=(2, str(out_dir)), nprocs=2, join=True)
    return out_dir


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|``."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))
