"""The distributed helpers in one process: no-ops without a group; torchrun's environment checked."""

import pytest
import torch

from greedyprune.cli.main import main
from greedyprune.distributed import (all_reduce_sum, barrier, broadcast_from_first, first_rank_says, init_from_env,
                                     is_main, shard, sum_over_ranks, world)
from greedyprune.errors import UserError


def test_single_process_is_rank_zero_of_one():
    assert world() == (0, 1) and is_main()
    t = torch.tensor([1.0, 2.0])
    all_reduce_sum(t)
    broadcast_from_first(t)
    barrier()
    assert t.tolist() == [1.0, 2.0] and sum_over_ranks([3.0]) == [3.0] and first_rank_says(True)
    assert shard([1, 2, 3]) == [1, 2, 3]


def test_init_from_env_without_torchrun(monkeypatch, capsys):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env("cpu") is False  # a plain process: nothing to join
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert init_from_env("cpu") is False
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UserError, match="launch with torchrun"):
        init_from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["info", "--model", "missing.pt"]) == 2
    assert capsys.readouterr().err.strip() == ("greedyprune info: error: environment variable WORLD_SIZE='two' is not "
                                               "an integer; launch with torchrun")
