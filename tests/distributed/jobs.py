"""What 2 gloo ranks run, once per test session, under ``torchrun --standalone --nproc_per_node=2``.

Starting two Python processes that import torch, torchvision and greedyprune costs far more than the
jobs themselves on a small machine, so :func:`run_two_ranks` launches the ranks once (``torchrun ...
-m tests.distributed.jobs OUT``) and each rank runs every job, saving its
results as ``OUT/JOB-rankR.pt``, and last ``greedyprune prune`` through the CLI's ``main`` (rank 0
writes ``OUT/cli-two.pt``). The tests compare those files to the same job run in the test process
(``world_size = 1``) with the same functions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

import greedyprune
from greedyprune.cli.main import main
from greedyprune.data import get_dataset
from greedyprune.distributed import destroy, init_from_env, world
from greedyprune.models import build_model
from greedyprune.train import TrainConfig, train

from ..pipeline.conftest import mlp, tv_model

# --- pruning: 4 batches of 6 images, sharded 2 + 2 ------------------------------------------------
DAMPING = 1e-3  # see test_prune_ranks.py
PRUNE_MODELS = {"mlp": (mlp, (1, 8, 8), {"flops": 0.6}),
                "mobilenet_v3_small": (lambda: tv_model("mobilenet_v3_small"), (3, 40, 40),
                                       {"keep": 0.5, "recalibrate_bn": True})}  # BN statistics combined over ranks


def calibration(name: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(6, *PRUNE_MODELS[name][1], generator=g) for _ in range(4)]


def latency_job() -> dict:
    """A latency target: every rank times the nodes itself; rank 0's times must decide the widths on all ranks."""
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(6, 3, 32, 32, generator=g) for _ in range(4)]
    _, report = greedyprune.prune(tv_model("resnet18"), batches, latency=0.6, streams=True, refit=None, progress=False)
    return {"widths": report.widths(), "seconds": report.options["latency_seconds"]}


def prune_job(name: str):
    build, _, budget = PRUNE_MODELS[name]
    return greedyprune.prune(build(), calibration(name), "reoptimized", **budget, progress=False, damping=DAMPING,
                             refit=None)  # the sharded selection; the refit under torchrun: test_torchrun_cli


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


# --- the command line: a registered model with a weights file, random calibration images ----------
def prune_command(folder: Path, out: str) -> list[str]:
    """``greedyprune prune`` arguments; :func:`run_two_ranks` writes ``folder/w.pt`` first."""
    return ["prune", "--model", "small-cnn", "--weights", str(folder / "w.pt"), "--data", "random:1x28x28",
            "--calib", "24", "--batch-size", "6", "--keep", "0.5", "--refit", "none", "--device", "cpu", "--no-progress",
            "--out", str(folder / out)]


def torchrun(args: list[str], **popen) -> subprocess.Popen:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (gloo, one thread per rank) in its own process group."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.Popen([str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node=2"]
                            + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            **popen)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
    return found


def kill(process: subprocess.Popen) -> None:
    """SIGKILL a launch at once: torchrun's workers (each leads its own session) and then the agent."""
    for worker in _children(process.pid):
        try:
            os.killpg(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finish(process: subprocess.Popen) -> str:
    """Wait for a launch; its stdout (the test fails with its stderr when it fails)."""
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode()


TRAIN = ["train", "--model", "lenet300-100", "--data", "random:1x28x28", "--epochs", "3", "--batch-size", "32",
         "--lr", "0.05", "--checkpoint-every", "2"]  # 512 images: 16 steps per epoch, 48 in all
# runs the command of its arguments with every optimizer step slowed (so a test can kill it mid-run)
SLOW_MAIN = """
import sys, time, torch
from greedyprune.cli.main import main
delay, step = float(sys.argv[1]), torch.optim.SGD.step
def slow(self, *args, **kwargs):
    time.sleep(delay)
    return step(self, *args, **kwargs)
torch.optim.SGD.step = slow
sys.exit(main(sys.argv[2:]))
"""


def start_slow_training(folder: Path, delay: float = 1.0) -> tuple[subprocess.Popen, Path]:
    """``greedyprune train`` on 2 ranks, ``delay`` seconds per step, into ``folder/killed`` (not waited for)."""
    (folder / "slow_main.py").write_text(SLOW_MAIN)
    run = folder / "killed"
    return torchrun([str(folder / "slow_main.py"), str(delay)] + TRAIN + ["--out", str(run)]), run


def run_two_ranks(out_dir: Path) -> Path:
    torch.manual_seed(0)
    torch.save(build_model("small-cnn").state_dict(), out_dir / "w.pt")
    root = Path(__file__).resolve().parents[2]
    (out_dir / "cli-stdout.txt").write_text(finish(torchrun(["-m", "tests.distributed.jobs", str(out_dir)], cwd=root)))
    return out_dir


def _rank_main(out: Path) -> None:
    torch.set_num_threads(1)
    init_from_env("cpu")
    rank = world()[0]
    try:
        for name in PRUNE_MODELS:
            pruned, report = prune_job(name)
            torch.save({"state": {k: v.clone() for k, v in pruned.state_dict().items()},
                        "images": report.calibration_images}, out / f"prune-{name}-rank{rank}.pt")
        torch.save(latency_job(), out / f"latency-rank{rank}.pt")
        torch.save(train_job(out / "ddp"), out / f"train-rank{rank}.pt")
        torch.save(interrupted_train_job(out / "ddp-interrupted"), out / f"interrupted-rank{rank}.pt")
        assert main(prune_command(out, "cli-two.pt")) == 0  # the group exists already: main leaves it alone
    finally:
        destroy()


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|``."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
