"""Summing calibration statistics across ``torch.distributed`` ranks (gloo on CPU, NCCL on GPU).

Each rank accumulates its shard of the calibration set; the running sums are then added with one
``all_reduce`` each, so every rank holds the statistics of the whole set. Single-process runs (or no
initialised process group) are a no-op.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` unless a process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(*tensors: torch.Tensor) -> None:
    """Sum each tensor in place over all ranks."""
    if world()[1] > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def broadcast_from_first(*tensors: torch.Tensor) -> None:
    """Overwrite each tensor in place with rank 0's copy (shapes must already agree)."""
    if world()[1] > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def shard(items: list, enabled: bool = True) -> list:
    """This rank's share of ``items`` (every ``world_size``-th item, starting at its rank)."""
    rank, size = world()
    return items[rank::size] if enabled and size > 1 else items
