"""Every wait ends: building the model cache under torchrun, file locks and collectives have timeouts.

The torchrun test runs the command of issue 17 on an *empty* model cache (a temporary $GREEDYPRUNE_CACHE):
one rank trains small-cnn (about a minute) while the other waits for the cache's lock, then both prune.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from greedyprune.errors import UserError

from .conftest import REPO


def test_torchrun_prune_on_an_empty_model_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GREEDYPRUNE_CACHE": str(cache), "PYTHONPATH": str(REPO),
           "GREEDYPRUNE_TIMEOUT": "900"}
    launcher = str(Path(sys.executable).with_name("torchrun"))
    command = [launcher, "--standalone", "--nproc_per_node=2", "-m", "greedyprune", "prune", "--model", "small-cnn",
               "--calib", "128", "--flops", "0.5", "--refit", "none", "--out", "p.pt"]
    try:
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun prune on an empty model cache did not finish in 15 minutes (a deadlock)")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved p.pt") == 1  # rank 0 writes and prints
    assert (tmp_path / "p.pt").exists() and (tmp_path / "p.pt.json").exists()
    entries = list(cache.glob("models/small-cnn/*/model.pt"))
    assert len(entries) == 1 and entries[0].with_name("model.pt.sha256").exists()
    assert (run.stdout + run.stderr).count("training small-cnn once for the model cache") == 1  # one builder
    assert "Traceback" not in run.stderr


def test_waiting_for_the_cache_lock_times_out_in_one_line(cli, tmp_path, monkeypatch):
    """Another process holds the lock of the entry it builds: the wait ends after $GREEDYPRUNE_LOCK_TIMEOUT
    with one line naming the holder."""
    from greedyprune.models import cached_model_path
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GREEDYPRUNE_LOCK_TIMEOUT", "2")
    folder = cached_model_path("small-cnn").parent
    folder.mkdir(parents=True)
    with open(folder / ".lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # a second open file description: conflicts even in this process
        holder.write("424242\n")
        holder.flush()
        start = time.monotonic()
        result = cli("eval", "--model", "small-cnn", "--data", "random:1x28x28")
    assert result.code == 2 and "Traceback" not in result.err
    lines = result.lines
    assert lines[0] == f"greedyprune: waiting for process 424242 to finish building the cached model small-cnn " \
                       f"({folder / '.lock'})"
    assert len(lines) == 2 and lines[1].startswith("greedyprune eval: error: waited 2 s for ")
    assert "held by process 424242, which builds the cached model small-cnn" in lines[1]
    assert "raise $GREEDYPRUNE_LOCK_TIMEOUT (seconds)" in lines[1]
    assert 2 <= time.monotonic() - start < 30
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing trained


def test_bad_timeout_variable_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("GREEDYPRUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GREEDYPRUNE_LOCK_TIMEOUT", "soon")
    result = cli("eval", "--model", "small-cnn", "--data", "random:1x28x28")
    assert result.code == 2 and result.lines == ["greedyprune eval: error: $GREEDYPRUNE_LOCK_TIMEOUT='soon' is not a "
                                                 "positive number of seconds; e.g. GREEDYPRUNE_LOCK_TIMEOUT=43200"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, out: str) -> None:
    """Joins a 2-rank group as torchrun would describe it; rank 1 never reaches the barrier."""
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "GREEDYPRUNE_TIMEOUT": "3"})
    torch.set_num_threads(1)
    from greedyprune.distributed import barrier, init_from_env, lost_ranks_error
    init_from_env("cpu")
    if rank == 1:
        time.sleep(20)
        os._exit(0)
    start = time.monotonic()
    try:
        barrier()
        message = "no error"
    except RuntimeError as err:
        error = lost_ranks_error(err, rank)
        message = f"{time.monotonic() - start:.1f} {error}"
    Path(out).write_text(message)
    os._exit(0)


def test_a_collective_waiting_for_a_missing_rank_times_out_in_one_line(tmp_path):
    """A rank that never arrives: the others' collective ends after $GREEDYPRUNE_TIMEOUT seconds and the CLI
    turns it into one line (greedyprune.distributed.lost_ranks_error)."""
    import torch.multiprocessing as mp
    port, out = _free_port(), tmp_path / "rank0.txt"
    context = mp.start_processes(_rank, args=(port, str(out)), nprocs=2, join=False, start_method="fork")
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    for process in context.processes:
        process.kill()
    assert out.exists(), "rank 0 still waits after 120 s: the collective has no timeout"
    seconds, message = out.read_text().split(" ", 1)
    assert 2.5 <= float(seconds) < 60, seconds
    assert message == ("rank 0 waited more than 3 s for the other ranks in a collective operation (another rank "
                       "stopped or hangs: see its output); raise $GREEDYPRUNE_TIMEOUT (seconds) if a step "
                       "legitimately takes longer")


def test_user_error_type_for_timeouts():
    from greedyprune.distributed import lost_ranks_error
    assert isinstance(lost_ranks_error(RuntimeError("[gloo] Timed out waiting 3000ms"), 1), UserError)
    assert lost_ranks_error(RuntimeError("CUDA out of memory"), 0) is None
