"""The two decisions a distributed (DDP) run changes: which examples a process sees, and who writes files.

Single-process runs use ``rank=0, world_size=1``. A DDP mode only has to pass its rank/world size here
(and wrap the model); the loop itself stays the same.
"""

from __future__ import annotations

import torch


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` unless ``torch.distributed`` is initialised."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def data_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The order in which this process visits the ``n`` training examples in ``epoch``.

    A permutation drawn from a generator seeded by ``(seed, epoch)`` only -- so a resumed run rebuilds
    exactly the order of the interrupted one. With ``world_size > 1`` each rank takes every
    ``world_size``-th entry of the truncated permutation (as ``DistributedSampler(drop_last=True)``).
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2**63))
    order = torch.randperm(n, generator=generator)
    if world_size > 1:
        order = order[: (n // world_size) * world_size][rank::world_size]
    return order


def writes_checkpoints() -> bool:
    """Whether this process writes checkpoints and result files (rank 0 only)."""
    return world()[0] == 0
