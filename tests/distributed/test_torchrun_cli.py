"""`greedyprune prune` and `greedyprune train` unchanged under `torchrun --nproc_per_node=2` (CPU, gloo).

The pruned model file of 2 ranks equals the one-process file. A 2-rank training run SIGKILLed (agent
and workers at once) and relaunched with the same command resumes from rank 0's checkpoint and ends
at the weights of one process training with the same global batch (lenet300-100: no BatchNorm, no
dropout).
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

import greedyprune
from greedyprune.cli.main import main
from greedyprune.io import load_checkpoint
from greedyprune.models import build_model
from greedyprune.paths import checkpoint_path

from .jobs import TRAIN, finish, kill, prune_command, relative_difference, torchrun

REPO = Path(__file__).resolve().parents[2]

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


def test_killed_training_under_torchrun_resumes_to_the_one_process_weights(killed_training, tmp_path, monkeypatch):
    victim, run = killed_training  # launched by the session fixture, its optimizer steps slowed
    # one thread, like each rank: otherwise main() would use every core, and BLAS sums in another order
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
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

    # the same command resumes; launched as the console script (torchrun --no-python), as docs/scaling.md shows
    printed = finish(torchrun(["--no-python", GREEDYPRUNE] + TRAIN + ["--out", str(run)]))
    assert printed.count("test accuracy") == 1 and "48 steps" in printed
    single = load_checkpoint(tmp_path / "single" / "model.pt")["state_dict"]
    _assert_same_weights(load_checkpoint(run / "model.pt")["state_dict"], single)
    assert load_checkpoint(checkpoint_path(run))["step"] == 48


def _torchrun_commands(text: str) -> list[list[str]]:
    """Every ``torchrun ...`` command of the ``sh`` blocks of ``text``, continuation lines joined, as tokens."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("torchrun "):
                commands.append(shlex.split(line))
    return commands


def _program(tokens: list[str]) -> tuple[str, int]:
    """What torchrun starts: ``("-m greedyprune", i)``, ``("--no-python greedyprune", i)`` or ``("script.py", i)``,
    with ``i`` the index of the first argument of the program."""
    no_python = False
    for i, token in enumerate(tokens[1:], 1):
        if token == "-m":
            return f"-m {tokens[i + 1]}", i + 2
        if token == "--no-python":
            no_python = True
        elif not token.startswith("-"):
            return (f"--no-python {token}" if no_python else token), i + 1
    raise AssertionError(f"no program in {' '.join(tokens)}")


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_documented_torchrun_commands_start_greedyprune_the_way_torchrun_can():
    """`torchrun ... greedyprune prune` would run `python -u greedyprune` (no such file): -m or --no-python it is."""
    documents = {"README.md": (REPO / "README.md").read_text(),
                 "docs/scaling.md": (REPO / "docs" / "scaling.md").read_text()}
    for where, text in documents.items():
        commands = _torchrun_commands(text)
        assert len(commands) >= 2, where
        for tokens in commands:
            program, _ = _program(tokens)
            assert program in ("-m greedyprune", "--no-python greedyprune") or program.endswith(".py"), \
                f"{where}: {' '.join(tokens)}"


def _readme_cpu_prune() -> list[str]:
    commands = [c for c in _torchrun_commands(_section((REPO / "README.md").read_text(), "## Scaling out"))
                if "prune" in c and "cpu" in c]
    assert len(commands) == 1, commands
    return commands[0]


def _with_values(tokens: list[str], values: dict[str, str]) -> list[str]:
    """``tokens`` with the values of the flags in ``values`` replaced (the rest exactly as written)."""
    out = list(tokens)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    return out


def test_readme_torchrun_prune_command_runs_as_written(tmp_path):
    """README's CPU command, launcher and options as printed (2 ranks), on tiny data: one model, printed once.

    Its bad-input twin (``--keep 1.5``) prints the one-line error once (rank 0), not once per rank.
    """
    tokens = _readme_cpu_prune()
    program, first = _program(tokens)
    assert program == "-m greedyprune" and "--nproc_per_node=2" in tokens[:first]
    torch.manual_seed(0)
    torch.save(build_model("small-cnn").state_dict(), tmp_path / "w.pt")
    good = _with_values(tokens, {"--weights": str(tmp_path / "w.pt"), "--data": "random:1x28x28", "--calib": "24",
                                 "--out": str(tmp_path / "pruned.pt")}) + ["--batch-size", "6", "--no-progress"]
    bad = _with_values(good, {"--keep": "1.5", "--out": str(tmp_path / "bad.pt")})
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    launcher = str(Path(sys.executable).with_name("torchrun"))
    runs = [subprocess.Popen([launcher] + args[1:], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for args in (good, bad)]
    (out, err), (bad_out, bad_err) = (run.communicate(timeout=600) for run in runs)
    assert runs[0].returncode == 0, err[-3000:]
    assert out.count("saved ") == 1 and (tmp_path / "pruned.pt").exists() and (tmp_path / "pruned.pt.json").exists()
    assert greedyprune.load(tmp_path / "pruned.pt").greedyprune_spec["name"] == "small-cnn"
    refit = json.loads((tmp_path / "pruned.pt.json").read_text())["refit"]  # the default refit, over both ranks
    assert refit["iterations"] >= 1 and refit["error_after"] <= refit["error_before"], refit
    assert runs[1].returncode != 0 and not (tmp_path / "bad.pt").exists()
    errors = [line for line in bad_err.splitlines() if line.startswith("greedyprune prune: error:")]
    assert errors == ["greedyprune prune: error: --keep must be a fraction in (0, 1], got 1.5"], bad_err[-3000:]
    assert f'File "{REPO / "greedyprune"}' not in bad_err  # no traceback of ours (torchrun prints its own summary)
    assert "exitcode  : 2" in bad_err  # every rank exited 2, as a user error does
