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


def _fake_torchrun(monkeypatch, *, cuda: bool, gpus: int = 2, local_rank: int = 1) -> dict:
    """torchrun's environment for rank ``local_rank`` of 2, with CUDA faked; records what init_from_env calls."""
    import torch.distributed as dist
    calls: dict = {"set_device": [], "init_process_group": []}
    for name, value in {"WORLD_SIZE": "2", "RANK": str(local_rank), "LOCAL_RANK": str(local_rank),
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, *a, **k: calls["init_process_group"].append(backend))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls["set_device"].append(index))
    return calls


@pytest.mark.parametrize("device", ["cuda", torch.device("cuda"), None])  # None: cuda when available
def test_cuda_device_joins_with_nccl_on_the_local_gpu(monkeypatch, device):
    calls = _fake_torchrun(monkeypatch, cuda=True)
    assert init_from_env(device) is True
    assert calls == {"set_device": [1], "init_process_group": ["nccl"]}  # GPU LOCAL_RANK before the group starts


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), None])
def test_cpu_device_joins_with_gloo_and_leaves_the_gpus_alone(monkeypatch, device):
    calls = _fake_torchrun(monkeypatch, cuda=False) if device is None else _fake_torchrun(monkeypatch, cuda=True)
    assert init_from_env(device) is True
    assert calls == {"set_device": [], "init_process_group": ["gloo"]}


def test_more_local_ranks_than_gpus(monkeypatch):
    calls = _fake_torchrun(monkeypatch, cuda=True, gpus=1, local_rank=1)
    with pytest.raises(UserError, match=r"LOCAL_RANK 1 but only 1 CUDA device\(s\) here; use --nproc_per_node at most"):
        init_from_env("cuda")
    assert calls == {"set_device": [], "init_process_group": []}
