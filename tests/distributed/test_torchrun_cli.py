"""`greedyprune prune` and `greedyprune train` unchanged under `torchrun --nproc_per_node=2` (CPU, gloo).

The pruned model file of 2 ranks equals the one-process file. A 2-rank training run SIGKILLed (agent
and workers at once) and relaunched with the same command resumes from rank 0's checkpoint and ends
at the weights of one process training with the same global batch (lenet300-100: no BatchNorm, no
dropout).
"""

import json
import sys
import time
from pathlib import Path

import torch

from greedyprune.cli.main import main
from greedyprune.io import load_checkpoint
from greedyprune.paths import checkpoint_path

from .jobs import TRAIN, finish, kill, prune_command, relative_difference, torchrun

GREEDYPRUNE = str(Path(sys.executable).with_name("greedyprune"))


def _assert_same_weights(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key].shape == value.shape, key  # the same kept channels
        assert relative_difference(got[key], value) < 1e-6, key


def test_prune_command_under_torchrun_writes_the_one_process_model(two_ranks, monkeypatch):
    # one thread, like each rank: otherwise main() would use every core, and BLAS sums in another order
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    assert main(prune_command(two_ranks, "one.pt")) == 0
    one, two = load_checkpoint(two_ranks / "one.pt"), load_checkpoint(two_ranks / "cli-two.pt")
    _assert_same_weights(two["state_dict"], one["state_dict"])
    assert two["spec"] == one["spec"]
    assert json.loads(two["report_json"])["calibration_images"] == 24  # counted over both ranks' shards
    assert (two_ranks / "cli-stdout.txt").read_text().count("saved ") == 1  # rank 0 alone prints and writes


def test_killed_training_under_torchrun_resumes_to_the_one_process_weights(killed_training, tmp_path):
    victim, run = killed_training  # launched by the session fixture, its optimizer steps slowed
    torch.set_num_threads(1)
    assert main(TRAIN + ["--out", str(tmp_path / "single")]) == 0  # one process, meanwhile

    deadline, step = time.time() + 300, 0  # importing torch can take 20 s on a loaded machine
    while time.time() < deadline and step < 6 and victim.poll() is None:
        time.sleep(0.1)
        if checkpoint_path(run).exists():
            try:
                step = load_checkpoint(checkpoint_path(run))["step"]
            except Exception:  # noqa: BLE001 -- writes are atomic; a read racing the rename is retried
                continue
    assert victim.poll() is None, victim.communicate()[1].decode()[-3000:]
    kill(victim)  # the agent and both workers, like a lost machine
    killed_at = load_checkpoint(checkpoint_path(run))["step"]
    assert 6 <= killed_at < 48 and not (run / "model.pt").exists()

    printed = finish(torchrun([GREEDYPRUNE] + TRAIN + ["--out", str(run)]))  # the same command resumes
    assert printed.count("test accuracy") == 1 and "48 steps" in printed
    single = load_checkpoint(tmp_path / "single" / "model.pt")["state_dict"]
    _assert_same_weights(load_checkpoint(run / "model.pt")["state_dict"], single)
    assert load_checkpoint(checkpoint_path(run))["step"] == 48
