"""``greedyprune baseline --method lth`` SIGKILLed mid-round, then rerun: it resumes at the round and step it
was in, and every round ends bit-identical to an uninterrupted run with the same seed.

The victim is a real CLI process whose optimizer steps are slowed (so the kill lands inside round 1, after
that round wrote a checkpoint); SIGKILL gives it no chance to clean up or flush anything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from greedyprune.io import load_checkpoint
from greedyprune.paths import checkpoint_path

# runs the greedyprune command of its arguments with every Adam step slowed by argv[1] seconds
SLOW_MAIN = """
import sys, time, torch
from greedyprune.cli.main import main
delay, step = float(sys.argv[1]), torch.optim.Adam.step
def slow(self, *args, **kwargs):
    time.sleep(delay)
    return step(self, *args, **kwargs)
torch.optim.Adam.step = slow
sys.exit(main(sys.argv[2:]))
"""
# 128 training images, batches of 32: 4 steps per epoch, 12 per round; a checkpoint after every epoch
LTH = ["baseline", "--method", "lth", "--data", "random:1x28x28", "--epochs", "3", "--batch-size", "32",
       "--eval-every", "2", "--rounds", "2", "--controls", "", "--seed", "4", "--no-progress"]
STEPS = 12


def _start(script, out, delay: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(delay), *LTH, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _step(run_dir) -> int:
    try:
        return load_checkpoint(checkpoint_path(run_dir))["step"]
    except Exception:  # noqa: BLE001 -- not there yet (writes are atomic: never a torn file)
        return 0


@pytest.mark.slow  # three Python processes that import torch
def test_sigkilled_lth_baseline_resumes_bit_identical(tmp_path):
    script = tmp_path / "slow_main.py"
    script.write_text(SLOW_MAIN)
    straight = _start(script, tmp_path / "straight", 0.0)
    victim = _start(script, tmp_path / "killed", 0.5)
    round_1 = tmp_path / "killed" / "round_01"
    deadline = time.time() + 300  # importing torch can take 20 s on a loaded machine
    while time.time() < deadline and victim.poll() is None and _step(round_1) < 4:
        time.sleep(0.05)
    assert victim.poll() is None, victim.communicate()[1][-3000:]
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    killed_at = _step(round_1)
    assert 4 <= killed_at < STEPS, killed_at  # inside round 1, after one of its checkpoints
    assert (tmp_path / "killed" / "round_00" / "result.json").exists()
    assert not (round_1 / "result.json").exists() and not (tmp_path / "killed" / "round_02").exists()

    resumed = _start(script, tmp_path / "killed", 0.0)  # the same command again
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "ticket r2" in out
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err[-3000:]

    for r in range(3):
        name = f"round_{r:02d}"
        a = load_checkpoint(checkpoint_path(tmp_path / "straight" / name))
        b = load_checkpoint(checkpoint_path(tmp_path / "killed" / name))
        assert a["step"] == b["step"] == STEPS
        assert a["model"].keys() == b["model"].keys()
        for key, value in a["model"].items():
            assert torch.equal(value, b["model"][key]), (name, key)
        if r:
            masks = [load_checkpoint(tmp_path / run / name / "mask.pt") for run in ("straight", "killed")]
            assert all(torch.equal(masks[0][k], masks[1][k]) for k in masks[0])
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("straight", "killed")]
    keys = ("test_acc", "test_acc_at_early_stop", "early_stop_step", "val_loss_min", "steps", "nonzero", "sparsity")
    assert [[r[k] for k in keys] for r in summaries[0]["rounds"]] == [[r[k] for k in keys] for r in summaries[1]["rounds"]]
    assert len(summaries[1]["rounds"]) == 3
