"""What 2 gloo ranks run for ``test_ranks.py``: small LTH, RigL and GraSP baselines, logging every file written.

Launched as ``torchrun --standalone --nproc_per_node=2 -m tests.baselines.rank_job OUT`` (by the
helpers of :mod:`tests.distributed.jobs`); both ranks train into ``OUT/ranks`` and each saves
``OUT/rankR.json``: the files it wrote (through :func:`greedyprune.io.atomic_write`, which every
``save_torch`` / ``save_json`` uses) and the results it returned. The test runs :func:`run_baselines`
in one process and compares.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

import greedyprune.io as gio
from greedyprune.baselines import DynamicOptions, InitOptions, LTHOptions, load_splits, run_at_init, run_dynamic, run_lth
from greedyprune.distributed import destroy, init_from_env, world
from greedyprune.train import TrainConfig

# SGD (not Adam: its first steps are sign(g), which float summation order can flip where g ~ 0)
CONFIG = TrainConfig(max_steps=8, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.9, schedule="constant",
                     weight_decay=0.0, eval_every=4, checkpoint_every=4)
RUNS = ("lth/round_00", "lth/round_01", "lth/controls/reinit_r01", "lth/controls/random_r01", "rigl", "grasp")


@contextmanager
def logged_writes(log: list, root: Path):
    """Append to ``log`` the path (relative to ``root``) of every file written while the block runs."""
    original = gio.atomic_write

    def logging(path, *args, **kwargs):
        log.append(str(Path(path).resolve().relative_to(root.resolve())))
        return original(path, *args, **kwargs)

    gio.atomic_write = logging
    try:
        yield log
    finally:
        gio.atomic_write = original


def run_baselines(out: Path) -> dict:
    """IMP (1 round, late rewinding, reinit + random controls), RigL and GraSP, each training 8 steps."""
    splits = load_splits("random:1x28x28")
    lth = run_lth("lenet300-100", splits, CONFIG, LTHOptions(rounds=1, rewind_step=2, controls="reinit,random"),
                  out / "lth", progress=False)
    rigl = run_dynamic("rigl", "lenet300-100", splits, CONFIG, DynamicOptions(sparsity=0.9, update_interval=2),
                       out / "rigl", progress=False)
    grasp = run_at_init("grasp", "lenet300-100", splits, CONFIG, InitOptions(sparsity=0.9, samples_per_class=3),
                        out / "grasp", progress=False)
    return {"lth": [(e.get("control", "ticket"), e["round"], e["test_acc"], e["nonzero"])
                    for e in lth["rounds"] + lth["controls"]],
            "rigl": {"updates": rigl["updates"], "test_acc": rigl["test_acc"]},
            "grasp": {"test_acc": grasp["test_acc"], "nonzero": grasp["nonzero"]}}


def _rank_main(out: Path) -> None:
    torch.set_num_threads(1)
    init_from_env("cpu")
    rank, log = world()[0], []
    try:
        with logged_writes(log, out / "ranks"):
            results = run_baselines(out / "ranks")
        (out / f"rank{rank}.json").write_text(json.dumps({"writes": log, "results": results}))
    finally:
        destroy()


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
