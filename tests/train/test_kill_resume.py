"""A training subprocess SIGKILLed mid-run resumes from its checkpoint to the uninterrupted result."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from greedyprune.io import load_checkpoint
from greedyprune.paths import checkpoint_path

SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from torch import nn
    from greedyprune.data import get_dataset
    from greedyprune.train import TrainConfig, train

    torch.set_num_threads(1)
    run_dir, out, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

    class Slow:  # gives the test time to kill the run between checkpoints
        def after_step(self, state):
            time.sleep(delay)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 36, 5))
    data = get_dataset("random:1x12x12", n=200, num_classes=5)
    config = TrainConfig(max_steps=40, batch_size=16, lr=0.05, warmup_steps=4, label_smoothing=0.1, seed=3,
                         checkpoint_every=3)
    train(model, data, config, run_dir=run_dir, callbacks=[Slow()], progress=False)
    torch.save(model.state_dict(), out)
""")


def _run(script, run_dir, out, delay):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(run_dir), str(out), str(delay)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow  # three Python processes that import torch
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    straight = _run(script, tmp_path / "straight", tmp_path / "straight.pt", 0.0)

    victim = _run(script, tmp_path / "killed", tmp_path / "killed.pt", 0.25)
    ckpt = checkpoint_path(tmp_path / "killed")
    deadline = time.time() + 300  # importing torch can take 20 s on a loaded machine
    step = 0
    while time.time() < deadline and step < 6:
        time.sleep(0.05)
        if ckpt.exists():
            try:
                step = load_checkpoint(ckpt)["step"]
            except Exception:  # noqa: BLE001 -- only a torn read could fail; writes are atomic, so retry
                continue
    assert victim.poll() is None, victim.stderr.read().decode()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    interrupted_at = load_checkpoint(ckpt)["step"]
    assert 6 <= interrupted_at < 40 and not (tmp_path / "killed.pt").exists()

    resumed = _run(script, tmp_path / "killed", tmp_path / "killed.pt", 0.0)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert straight.wait(timeout=300) == 0, straight.stderr.read().decode()
    a = torch.load(tmp_path / "straight.pt", weights_only=True)
    b = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_checkpoint(ckpt)["step"] == 40
